package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/trace/imports"
	"github.com/llem/llem/trace/imports/dcgm"
	"github.com/llem/llem/trace/imports/nvsmi"
	"github.com/llem/llem/trace/imports/ptdaemon"
)

// importer reads one format's files into an imports.Writer.
type importer struct {
	name  string
	usage string
	args  string // the arguments after the format ["FILE..."]
	help  string
	// flags are the format's own flags, given before or after the files.
	flags []importFlag
	// maxFiles bounds the input files; 0 for any number.
	maxFiles int
	// check validates the flags' values before anything is read: its
	// error is a bad command line.
	check func(opts importOpts) error
	// sources lists the files to hash into meta.json: the inputs and the
	// files named by flags [files].
	sources func(files []string, opts importOpts) []string
	run     func(w *imports.Writer, files []string, opts importOpts) (imports.Outcome, error)
}

// importFlag is a format's flag that takes a value.
type importFlag struct {
	name  string // without dashes
	value string // the value's placeholder in the usage: FILE
	usage string
}

// importOpts holds the format flags' values by name ("" when not given).
type importOpts map[string]string

// importers lists the formats of llem import, in the order listed to users.
var importers = []importer{
	{
		name:  nvsmi.Format,
		usage: "CSV from nvidia-smi --query-gpu=timestamp,power.draw,... --format=csv",
		help:  strings.ReplaceAll(helpText("import-nvidia-smi"), "{{query}}", nvsmi.Query),
		run: func(w *imports.Writer, files []string, _ importOpts) (imports.Outcome, error) {
			res, err := nvsmi.ImportFiles(w, files)
			return imports.Outcome{Skipped: res.Skipped, Lines: res.DataLines}, err
		},
	},
	ptdaemonImporter,
	dcgmImporter,
}

var ptdaemonImporter = importer{
	name:  ptdaemon.Format,
	usage: "SPEC PTDaemon power-analyzer log (MLPerf Power's spl.txt), with loadgen's logs",
	args:  "SPL_FILE [--loadgen mlperf_log_detail.txt] [--summary mlperf_log_summary.txt]",
	help:  helpText("import-ptdaemon"),
	flags: []importFlag{
		{name: "loadgen", value: "FILE", usage: "loadgen's mlperf_log_detail.txt: its power_begin..power_end become the phase " + ptdaemon.PhaseName},
		{name: "summary", value: "FILE", usage: "loadgen's mlperf_log_summary.txt: its tokens/s and samples/s go to meta.json"},
		{name: "loadgen-offset", value: "DURATION", usage: "added to loadgen's times when the SUT and the director are in different time zones (client's minus server's timezone of power/client.json and server.json)"},
	},
	maxFiles: 1,
	check: func(opts importOpts) error {
		_, err := ptdaemonOptions(opts)
		return err
	},
	sources: func(files []string, opts importOpts) []string {
		o, _ := ptdaemonOptions(opts)
		return ptdaemon.Files(files[0], o)
	},
	run: func(w *imports.Writer, files []string, opts importOpts) (imports.Outcome, error) {
		o, _ := ptdaemonOptions(opts)
		res, err := ptdaemon.ImportFiles(w, files[0], o)
		out := imports.Outcome{Skipped: res.Skipped, Lines: res.DataLines, Devices: "whole-system power analyzer"}
		if err != nil {
			return out, err
		}
		out.Extra = res.Describe()
		return out, nil
	},
}

func ptdaemonOptions(opts importOpts) (ptdaemon.Options, error) {
	o := ptdaemon.Options{Loadgen: opts["loadgen"], Summary: opts["summary"]}
	if v := opts["loadgen-offset"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("--loadgen-offset %q is not a duration such as 3600s or -7h", v)
		}
		if opts["loadgen"] == "" {
			return o, errors.New("--loadgen-offset without --loadgen: give the loadgen detail log whose times it shifts")
		}
		o.LoadgenOffset = d
	}
	return o, nil
}

var dcgmImporter = importer{
	name:  dcgm.Format,
	usage: "text output of NVIDIA DCGM's dcgmi dmon (-e 155,156,...)",
	args:  "FILE --interval DURATION [--start RFC3339]",
	help:  helpText("import-dcgm"),
	flags: []importFlag{
		{name: "interval", value: "DURATION", usage: "the -d given to dcgmi dmon, e.g. 100ms (a bare number is milliseconds); required unless the lines have timestamps"},
		{name: "start", value: "RFC3339", usage: "the time of the first sample, e.g. 2024-05-02T10:00:00Z [the file's modification time, taken as the last sample's]"},
	},
	maxFiles: 1,
	check: func(opts importOpts) error {
		_, err := dcgmOptions(opts)
		return err
	},
	run: func(w *imports.Writer, files []string, opts importOpts) (imports.Outcome, error) {
		o, _ := dcgmOptions(opts)
		res, err := dcgm.ImportFiles(w, files[0], o)
		if errors.Is(err, dcgm.ErrNoInterval) {
			return imports.Outcome{}, usagef("import dcgm: %v; usage: llem import dcgm FILE --interval DURATION [--start RFC3339] -o RUN", err)
		}
		out := imports.Outcome{Skipped: res.Skipped, Lines: res.DataLines}
		if err != nil {
			return out, err
		}
		switch res.StartFrom {
		case dcgm.StartFromOption:
			out.Zone = "UTC"
		case dcgm.StartFromModTime:
			out.Zone = "assumed"
		}
		out.Extra = res.Describe(o)
		return out, nil
	},
}

func dcgmOptions(opts importOpts) (dcgm.Options, error) {
	var o dcgm.Options
	if v := opts["interval"]; v != "" {
		d, err := time.ParseDuration(v)
		if ms, e := strconv.ParseFloat(v, 64); e == nil {
			d, err = time.Duration(ms*float64(time.Millisecond)), nil // dcgmi dmon -d is in milliseconds
		}
		if err != nil || d <= 0 || d > 24*time.Hour {
			return o, fmt.Errorf("--interval %q is not a positive duration such as 100ms (dcgmi dmon's -d)", v)
		}
		o.Interval = d
	}
	if v := opts["start"]; v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return o, fmt.Errorf("--start %q is not an RFC 3339 time such as 2024-05-02T10:00:00Z or 2024-05-02T12:00:00.5+02:00", v)
		}
		o.Start = t
	}
	return o, nil
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
		Name:            "import",
		Usage:           "convert another tool's GPU log into an llem run (formats: " + importFormats() + ")",
		ArgsUsage:       "FORMAT FILE... -o RUN",
		Description:     strings.ReplaceAll(helpText("import"), "{{formats}}", importFormats()),
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
	flags := []ucli.Flag{outFlag}
	for _, f := range im.flags {
		flags = append(flags, &ucli.StringFlag{Name: f.name, Usage: f.usage + " (`" + f.value + "`)"})
	}
	args := im.args
	if args == "" {
		args = "FILE..."
	}
	return &ucli.Command{
		Name:        im.name,
		Usage:       im.usage,
		ArgsUsage:   args + " -o RUN",
		Description: im.help,
		Flags:       flags,
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("import %s: %v", im.name, err)
		},
		Action: func(c *ucli.Context) error { return runImport(c, im) },
	}
}

func runImport(c *ucli.Context, im importer) error {
	// An import holds every row of the log until it writes them sorted; the
	// collector's default lets the process grow to twice that (a 206 MB
	// nvidia-smi log: 887 MB peak at 100, 578 MB at 25, and no slower).
	// GOGC, when set, is the user's choice.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(25))
	}
	args := im.args
	if args == "" {
		args = "FILE..."
	}
	usage := fmt.Sprintf("usage: llem import %s %s -o RUN", im.name, args)
	out := ""
	for _, cc := range c.Lineage() { // -o given before the format counts too
		if cc.Command != nil && cc.IsSet("out") {
			out = cc.String("out")
			break
		}
	}
	opts := importOpts{}
	for _, f := range im.flags {
		if c.IsSet(f.name) {
			opts[f.name] = c.String(f.name)
		}
	}
	files := c.Args().Slice()
	if len(files) == 0 {
		return usagef("import %s: no input file; %s", im.name, usage)
	}
	if im.maxFiles > 0 && len(files) > im.maxFiles {
		return usagef("import %s: %d input files, it reads %d at a time; %s", im.name, len(files), im.maxFiles, usage)
	}
	if out == "" {
		return usagef("import %s: no output directory: give -o RUN (a new or empty directory); %s", im.name, usage)
	}
	if im.check != nil {
		if err := im.check(opts); err != nil {
			return usagef("import %s: %v; %s", im.name, err, usage)
		}
	}
	sources := files
	if im.sources != nil {
		sources = im.sources(files, opts)
	}
	w, err := imports.Create(out, im.name, sources)
	if err != nil {
		return err
	}
	w.LlemVersion = version()
	res, err := im.run(w, files, opts)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	w.Summary().Print(c.App.Writer, c.App.ErrWriter, res, len(sources))
	return nil
}
