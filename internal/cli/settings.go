package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/internal/gcroom"
	"github.com/llem/llem/internal/progress"
	"github.com/llem/llem/trace"
)

type flagKey struct{ flag, key string }

// settingFlags pairs each flag that sets an analysis setting with the
// setting's key: flags become analyze.Overrides by key, and an error about
// a key names the flag.
var settingFlags = []flagKey{
	{"window", "windows"},
	{"measure-phase", "measure_phase"},
	{"resamples", "resamples"},
	{"confidence", "confidence"},
	{"seed", "seed"},
	{"steady", "steady"},
}

// optionFlags are llem compare's options (compare.Options), by key.
var optionFlags = []flagKey{{"alpha", "alpha"}, {"group-by", "group_by"}, {"baseline", "baseline"}}

// methodologyFlags are the settings flags of every command that analyses
// runs (analyze, compare, plot, report, replay): read by readSettings.
// The defaults are the flags' Values so that --help shows them; only
// flags that are set override --config, so the Values do not mask the
// file.
func methodologyFlags() []ucli.Flag {
	def := analyze.DefaultSettings()
	return []ucli.Flag{
		&ucli.StringFlag{Name: "config", Usage: "JSON `FILE` of methodology settings (any subset; see docs/results.md)"},
		&ucli.StringSliceFlag{Name: "window", Usage: "a measured window: a phase `NAME` or START..END in seconds from the first sample (repeatable)"},
		&ucli.StringFlag{Name: "measure-phase", Value: def.MeasurePhase, Usage: "the client phase that is the measurement"},
		&ucli.StringFlag{Name: "steady", Value: string(def.Steady), Usage: "steady-state method: pelt or mser5"},
		&ucli.IntFlag{Name: "resamples", Value: def.Resamples, Usage: "bootstrap resamples"},
		&ucli.Float64Flag{Name: "confidence", Value: def.Confidence, Usage: "confidence level of every interval, in (0, 1)"},
		&ucli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "seed of every resampling, recorded in the output"},
	}
}

// readSettings is how every command reads the analysis settings: the
// defaults, then --config, then the settings flags that are set
// (analyze.ReadSettings). Its errors are usage errors naming the flag or
// the file.
func readSettings(c *ucli.Context) (analyze.Settings, error) {
	o := analyze.Overrides{}
	for _, f := range settingFlags {
		if !c.IsSet(f.flag) {
			continue
		}
		switch v := c.Value(f.flag).(type) {
		case ucli.StringSlice:
			o[f.key] = v.Value()
		default:
			o[f.key] = v
		}
	}
	s, err := analyze.ReadSettings(c.String("config"), o)
	if err != nil {
		return s, settingsError(c, err)
	}
	return s, nil
}

// settingsError words an error about settings for the command line: a
// setting given by a flag is named by its flag, one from --config by the
// file and its key.
func settingsError(c *ucli.Context, err error) error {
	var fe *analyze.FileError
	if errors.As(err, &fe) {
		return usagef("%s: --config %v", c.Command.Name, fe)
	}
	var msgs []string
	for _, e := range unjoin(err) {
		var se *analyze.SettingError
		if !errors.As(e, &se) {
			msgs = append(msgs, e.Error())
			continue
		}
		where := se.Key
		for _, f := range append(settingFlags, optionFlags...) {
			if f.key == se.Key && c.IsSet(f.flag) {
				where = "--" + f.flag
			}
		}
		if where == se.Key && c.String("config") != "" {
			where = "--config " + c.String("config") + ": " + se.Key
		}
		msgs = append(msgs, where+": "+se.Msg)
	}
	return usagef("%s: %s", c.Command.Name, strings.Join(msgs, "; "))
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// hoistFlags moves the flags given after a command's arguments in front
// of them, so that `llem analyze RUN --json` reads as `llem analyze --json
// RUN`: urfave/cli stops reading flags at the first argument. Arguments
// after "--" stay where they are. llem record and llem mark keep their
// arguments as given: what follows them is a command line, or key=value
// pairs. A flag given twice (other than a repeatable one) or a flag whose
// value is missing at the end is an error: urfave/cli would let the last
// win, or read the next argument as the value.
func hoistFlags(app *ucli.App, args []string) ([]string, error) {
	var cmd *ucli.Command
	var path []string // the command's names: "import", "nvidia-smi"
	cmds, at := app.Commands, 0
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args, nil
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if !strings.Contains(a, "=") && cmd != nil && takesValue(cmd, a) {
				i++
			}
			continue
		}
		sub := findCommand(cmds, a)
		if sub == nil {
			break
		}
		cmd, cmds, at = sub, sub.Subcommands, i
		path = append(path, sub.Name)
	}
	if cmd == nil || cmd.Name == "record" || cmd.Name == "mark" || slices.Contains(args, "--generate-bash-completion") {
		return args, nil
	}
	name := strings.Join(path, " ")
	var flags, rest []string
	seen := map[string]bool{}
	for j := at + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--":
			if j >= i {
				rest = append(rest, args[j:]...)
			}
			j = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			f := flagName(cmd, a)
			if f != "help" && f != "h" && lookupFlag(cmd, f) == nil {
				return nil, usagef("%s: unknown flag %s (llem %s --help lists them)", name, a, name)
			}
			if seen[f] && !repeatable(cmd, f) {
				return nil, usagef("%s: --%s given twice", name, f)
			}
			seen[f] = true
			var value []string
			if !strings.Contains(a, "=") && takesValue(cmd, a) {
				if j+1 >= len(args) {
					return nil, usagef("%s: %s needs a value", name, a)
				}
				j++
				value = args[j : j+1]
			}
			if j >= i { // after the first argument: moved before it
				flags = append(append(flags, a), value...)
			}
		default:
			rest = append(rest, a)
		}
	}
	if seen["help"] || seen["h"] { // urfave/cli would take an argument for a help topic
		return append(append([]string{}, args[:at+1]...), "--help"), nil
	}
	out := append([]string{}, args[:i]...)
	return append(append(out, flags...), rest...), nil
}

// flagName is the main name of the flag arg ("-o", "--out=x": "out").
func flagName(cmd *ucli.Command, arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if f := lookupFlag(cmd, name); f != nil {
		return f.Names()[0]
	}
	return name
}

func lookupFlag(cmd *ucli.Command, name string) ucli.Flag {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func repeatable(cmd *ucli.Command, name string) bool {
	_, ok := lookupFlag(cmd, name).(*ucli.StringSliceFlag)
	return ok
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the flag arg (-x or --name) of cmd takes a
// value.
func takesValue(cmd *ucli.Command, arg string) bool {
	df, ok := lookupFlag(cmd, strings.TrimLeft(arg, "-")).(ucli.DocGenerationFlag)
	return ok && df.TakesValue()
}

// findRuns expands the arguments into run directories (trace.FindRuns).
func findRuns(args []string) ([]string, error) {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			return nil, fmt.Errorf("%s: not a run (flags go before a --)", a)
		}
	}
	return trace.FindRuns(args)
}

// openRuns finds the runs of the arguments and analyses them with the
// command's settings, keeping each run's data for figures and
// comparisons (openRunsWith).
func openRuns(c *ucli.Context, s analyze.Settings) ([]*analyze.Run, error) {
	return openRunsWith(c, s, false, false)
}

// openRunsWith finds the runs of the arguments and analyses them with the
// command's settings, as many at once as there are CPUs (the results do
// not depend on it). Unless --quiet, progress goes to stderr: a meter
// redrawn in place on a terminal, a line per run otherwise (logs).
// resultsOnly drops each run's trace once its results are computed;
// tuneGC sets the collector's headroom for the runs found.
func openRunsWith(c *ucli.Context, s analyze.Settings, resultsOnly, tuneGC bool) ([]*analyze.Run, error) {
	if c.NArg() == 0 {
		return nil, usagef("%s: no run given; usage: llem %s %s", c.Command.Name, c.Command.Name, c.Command.ArgsUsage)
	}
	dirs, err := findRuns(c.Args().Slice())
	if err != nil {
		return nil, usagef("%s: %v", c.Command.Name, err)
	}
	if tuneGC && os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" { // the environment's settings win
		// For the rest of the command, not only this function: the
		// figures drawn afterwards (--plots) hold every run's trace.
		gcroom.Set(analyze.GCRoom())
	}
	opt := analyze.OpenOptions{Workers: runtime.GOMAXPROCS(0), ResultsOnly: resultsOnly}
	if lookupFlag(c.Command, "quiet") != nil && !c.Bool("quiet") { // commands with --quiet show progress
		f, ok := c.App.ErrWriter.(*os.File)
		var finish func()
		opt.Progress, finish = progress.For(c.App.ErrWriter, ok && isTerminal(f), dirs)
		defer finish()
	}
	runs, err := analyze.OpenWith(dirs, s, opt)
	if err != nil {
		return runs, err
	}
	if err := analyze.WindowsFound(runs, s); err != nil {
		return nil, usagef("--window: %v", err)
	}
	if f := lookupFlag(c.Command, "measure-phase"); f != nil && c.IsSet("measure-phase") && len(s.Windows) == 0 {
		if err := analyze.MeasurePhaseFound(runs, s); err != nil {
			return nil, usagef("--measure-phase: %v", err)
		}
	}
	return runs, nil
}
