// Package cli turns llem's command line into calls of the record, trace and
// analyze packages. It is the only package that knows about flags; it
// returns exit codes and never calls os.Exit itself.
package cli

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/record"
)

// Version is set at build time with -ldflags "-X github.com/llem/llem/internal/cli.Version=...";
// otherwise it comes from the module's build info.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "devel+" + s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				v += "-dirty"
			}
		}
		if v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}

// exitError carries an exit code through urfave/cli without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// usageError marks bad input from the user: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main runs llem with args (args[0] is the program name) and returns the
// process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	args, err := hoistFlags(app, args)
	if err == nil {
		err = app.Run(args)
	}
	var ee exitError
	var ue usageError
	var ce *record.CommandError // as a shell: 127 not found, 126 not executable
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "llem: %v\n", ce)
		return ce.ExitCode
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "llem: %s\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "llem: %v\n", err)
		return 1
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *ucli.App {
	app := &ucli.App{
		Name:                   "llem",
		Usage:                  "measure the energy of LLM inference with the rigour a paper needs",
		Version:                version(),
		Description:            helpText("llem"),
		Reader:                 stdin,
		Writer:                 stdout,
		ErrWriter:              stderr,
		EnableBashCompletion:   true,
		UseShortOptionHandling: false,
		ExitErrHandler:         func(*ucli.Context, error) {}, // Main prints errors
		OnUsageError: func(c *ucli.Context, err error, isSubcommand bool) error {
			return usageError{err.Error()}
		},
		Commands: []*ucli.Command{
			recordCommand(),
			markCommand(),
			loadCommand(),
			infoCommand(),
			checkCommand(),
			analyzeCommand(),
			bootstrapCommand(),
			replayCommand(),
			importCommand(),
			compareCommand(),
			plotCommand(),
			figuresCommand(),
			reportCommand(),
			versionCommand(),
			completionCommand(),
			manCommand(),
		},
	}
	// No "help" subcommand under each command (llem help CMD and
	// llem CMD --help stay): it was all that completion offered after a
	// command, in place of the files the command takes.
	var noHelpCommand func([]*ucli.Command)
	noHelpCommand = func(cmds []*ucli.Command) {
		for _, c := range cmds {
			c.HideHelpCommand = true
			noHelpCommand(c.Subcommands)
		}
	}
	noHelpCommand(app.Commands)
	return app
}

// helpFiles hold each command's manual (its --help description): text,
// not code, so they are files, embedded at build time.
//
//go:embed help/*.txt
var helpFiles embed.FS

// helpText is the manual of help/name.txt.
func helpText(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic(err) // a missing file is a build mistake: TestHelpTexts reads every one
	}
	return strings.TrimRight(string(b), "\n")
}

// startCPUProfile writes a Go CPU profile to path until stop is called
// (the hidden --cpuprofile flags, for llem's own benchmarks). An empty
// path does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
