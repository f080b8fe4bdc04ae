package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/trace/imports"
	"github.com/llem/llem/trace/imports/nvsmi"
)

// importer reads one format's files into an imports.Writer.
type importer struct {
	name  string
	usage string
	help  string
	run   func(w *imports.Writer, files []string) (importResult, error)
}

type importResult struct {
	skipped, lines int
}

// importers lists the formats of llem import, in the order listed to users.
var importers = []importer{
	{
		name:  nvsmi.Format,
		usage: "CSV from nvidia-smi --query-gpu=timestamp,power.draw,... --format=csv",
		help:  nvsmi.Help,
		run: func(w *imports.Writer, files []string) (importResult, error) {
			res, err := nvsmi.ImportFiles(w, files)
			return importResult{skipped: res.Skipped, lines: res.DataLines}, err
		},
	},
}

func importFormats() string {
	var names []string
	for _, im := range importers {
		names = append(names, im.name)
	}
	return strings.Join(names, ", ")
}

var outFlag = &ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the run to `RUN`, a new or empty directory (required)"}

func importCommand() *ucli.Command {
	var subs []*ucli.Command
	for _, im := range importers {
		subs = append(subs, importFormatCommand(im))
	}
	return &ucli.Command{
		Name:      "import",
		Usage:     "convert another tool's GPU log into an llem run (formats: " + importFormats() + ")",
		ArgsUsage: "FORMAT FILE... -o RUN",
		Description: `Reads logs written by another tool and writes an llem run that llem info and
llem analyze read like a recorded one. meta.json keeps the input files' SHA-256,
what the format could not tell (source.unknown) and every value that was
absent or line that was skipped (warnings). Importing the same files again
gives a byte-identical run. RUN must not exist or be empty.

Formats: ` + importFormats() + ` (llem import FORMAT --help describes each).

Exit status: 0 imported; 1 a file cannot be read or holds nothing to import,
or RUN is not empty; 2 a bad command line.

Examples:
   llem import nvidia-smi gpu.csv -o run
   llem import nvidia-smi gpu0.csv gpu1.csv -o run && llem analyze run`,
		HideHelpCommand: true,
		Flags:           []ucli.Flag{outFlag},
		Subcommands:     subs,
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("import: %v", err)
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usagef("import: no format given; usage: llem import FORMAT FILE... -o RUN (formats: %s)", importFormats())
			}
			return usagef("import: unknown format %q; known formats: %s", c.Args().First(), importFormats())
		},
	}
}

func importFormatCommand(im importer) *ucli.Command {
	return &ucli.Command{
		Name:        im.name,
		Usage:       im.usage,
		ArgsUsage:   "FILE... -o RUN",
		Description: im.help,
		Flags:       []ucli.Flag{outFlag},
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("import %s: %v", im.name, err)
		},
		Action: func(c *ucli.Context) error { return runImport(c, im) },
	}
}

func runImport(c *ucli.Context, im importer) error {
	usage := fmt.Sprintf("usage: llem import %s FILE... -o RUN", im.name)
	out := ""
	for _, cc := range c.Lineage() { // -o given before the format counts too
		if cc.Command != nil && cc.IsSet("out") {
			out = cc.String("out")
			break
		}
	}
	// urfave/cli stops reading flags at the first file: take -o after it.
	files, after, err := splitOut(c.Args().Slice())
	if errors.Is(err, errHelp) {
		ucli.HelpPrinter(c.App.Writer, ucli.CommandHelpTemplate, c.Command)
		return nil
	}
	if err != nil {
		return usagef("import %s: %v; %s", im.name, err, usage)
	}
	if after != "" {
		if out != "" && out != after {
			return usagef("import %s: -o given twice (%s and %s)", im.name, out, after)
		}
		out = after
	}
	if len(files) == 0 {
		return usagef("import %s: no input file; %s", im.name, usage)
	}
	if out == "" {
		return usagef("import %s: no output directory: give -o RUN (a new or empty directory); %s", im.name, usage)
	}
	w, err := imports.Create(out, im.name, files)
	if err != nil {
		return err
	}
	w.LlemVersion = version()
	res, err := im.run(w, files)
	if err != nil {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	printImport(c.App.Writer, c.App.ErrWriter, w.Summary(), res, len(files))
	return nil
}

var errHelp = errors.New("help asked for")

// splitOut separates the files from a -o/--out flag written after them.
func splitOut(args []string) (files []string, out string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(files, args[i+1:]...), out, nil
		case a == "-h" || a == "--help" || a == "-help":
			return nil, "", errHelp
		case a == "-o" || a == "--out" || a == "-out":
			if i+1 >= len(args) {
				return nil, "", fmt.Errorf("%s needs a directory", a)
			}
			if out != "" {
				return nil, "", fmt.Errorf("-o given twice")
			}
			out = args[i+1]
			i++
		case strings.HasPrefix(a, "-o=") || strings.HasPrefix(a, "--out=") || strings.HasPrefix(a, "-out="):
			if out != "" {
				return nil, "", fmt.Errorf("-o given twice")
			}
			_, out, _ = strings.Cut(a, "=")
		case len(a) > 1 && a[0] == '-':
			return nil, "", fmt.Errorf("unknown flag %s (flags: -o RUN)", a)
		default:
			files = append(files, a)
		}
	}
	return files, out, nil
}

// printImport writes the one-line summary and the next step.
func printImport(w, errw io.Writer, s imports.Summary, res importResult, nfiles int) {
	span := time.Duration(s.EndNs - s.StartNs)
	start := time.Unix(0, s.StartNs).UTC().Format("2006-01-02 15:04:05.000")
	fmt.Fprintf(w, "imported %d rows from %d file(s): %d GPU(s), %.1f s from %s (time zone unknown), %d of %d lines skipped -> %s\n",
		s.TotalRows(), nfiles, s.GPUs, span.Seconds(), start, res.skipped, res.lines, s.Dir)
	for _, wn := range s.Warnings {
		fmt.Fprintf(errw, "llem: import: warning: %s\n", wn.Message)
	}
	fmt.Fprintf(w, "see: llem analyze %s\n", s.Dir)
}
