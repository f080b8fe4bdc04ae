package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/htmlreport"
	"github.com/llem/llem/plots"
)

const reportUsage = "usage: llem report RUN_DIR|DIR... -o FILE.html [--config FILE] [--measure-phase NAME]"

// reportFlags are llem report's flags; all take a value, and may come
// before or after the runs.
var reportFlags = []struct {
	name, alias, usage, def string
}{
	{"out", "o", "the HTML `FILE` to write (- for standard output)", ""},
	{"config", "", "JSON `FILE` of methodology settings, as for llem analyze", ""},
	{"measure-phase", "", "the client phase `NAME` that is the measurement, as for llem analyze", analyze.DefaultSettings().MeasurePhase},
}

func reportCommand() *ucli.Command {
	var flags []ucli.Flag
	for _, f := range reportFlags {
		sf := &ucli.StringFlag{Name: f.name, Usage: f.usage, Value: f.def}
		if f.alias != "" {
			sf.Aliases = []string{f.alias}
		}
		flags = append(flags, sf)
	}
	return &ucli.Command{
		Name:      "report",
		Usage:     "write one self-contained HTML page of a run or a sweep: tables, warnings, figures, environment",
		ArgsUsage: "RUN_DIR|DIR... -o FILE.html",
		Description: `Writes one HTML page for the runs given (a DIR that is not a run is searched
for runs, as by llem analyze): for each run the windows with energy per output
token first, the cycles' BCa intervals, steady state, baselines, latency and
thermal checks, every warning, the timeline figure and the environment
snapshot of meta.json (GPUs, driver, persistence, power limit, ECC, MIG,
clocks, CPU governor, host, command, llem version, settings hash). Several
runs add a sweep summary and the efficiency, Pareto, latency and power
figures. Every number is computed as llem analyze computes it (--config,
--measure-phase).

The page is self-contained: inline CSS, figures as inline SVG, no script, no
font, nothing fetched. The same runs give a byte-identical page.
docs/report.md shows one.

Examples:
   llem report testdata/runs/h100-bs8-cycles -o report.html
   llem report sweep/ -o sweep.html`,
		Flags: flags,
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("report: %v; %s", err, reportUsage)
		},
		Action: runReport,
	}
}

// splitReportArgs separates the runs from the flags given after them
// (urfave/cli stops reading flags at the first run).
func splitReportArgs(args []string) (runs []string, vals map[string]string, help bool, err error) {
	vals = map[string]string{}
	lookup := func(name string) string {
		for _, f := range reportFlags {
			if name == f.name || (f.alias != "" && name == f.alias) {
				return f.name
			}
		}
		return ""
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(runs, args[i+1:]...), vals, false, nil
		case a == "-h" || a == "--help" || a == "-help":
			return nil, nil, true, nil
		case len(a) > 1 && a[0] == '-':
			raw, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			name := lookup(raw)
			if name == "" {
				return nil, nil, false, fmt.Errorf("unknown flag %s (flags: -o, --config, --measure-phase)", a)
			}
			if !hasValue {
				if i+1 >= len(args) {
					return nil, nil, false, fmt.Errorf("%s needs a value", a)
				}
				value = args[i+1]
				i++
			}
			if _, dup := vals[name]; dup {
				return nil, nil, false, fmt.Errorf("--%s given twice", name)
			}
			vals[name] = value
		default:
			runs = append(runs, a)
		}
	}
	return runs, vals, false, nil
}

func runReport(c *ucli.Context) error {
	args, after, help, err := splitReportArgs(c.Args().Slice())
	if help {
		ucli.HelpPrinter(c.App.Writer, ucli.CommandHelpTemplate, c.Command)
		return nil
	}
	if err != nil {
		return usagef("report: %v; %s", err, reportUsage)
	}
	get := map[string]string{}
	for _, f := range reportFlags {
		v, ok := after[f.name]
		switch {
		case c.IsSet(f.name) && ok && v != c.String(f.name):
			return usagef("report: --%s given twice (%s and %s)", f.name, c.String(f.name), v)
		case ok:
			get[f.name] = v
		default:
			get[f.name] = c.String(f.name)
		}
	}
	if get["out"] == "" {
		return usagef("report: no output file: give -o FILE.html (- for standard output); %s", reportUsage)
	}
	if len(args) == 0 {
		return usagef("report: no run given; %s", reportUsage)
	}
	s := analyze.DefaultSettings()
	if p := get["config"]; p != "" {
		if s, err = analyze.LoadSettings(p); err != nil {
			return usagef("report: %v", err)
		}
	}
	if c.IsSet("measure-phase") || after["measure-phase"] != "" {
		s.MeasurePhase = get["measure-phase"]
	}
	if err := s.Validate(); err != nil {
		return usagef("report: %v", err)
	}
	dirs, err := findRuns(args)
	if err != nil {
		return usagef("report: %v", err)
	}
	runs, err := plots.Load(dirs, s)
	if err != nil {
		return err
	}
	// Written in memory first: a failed report leaves no partial file.
	var buf bytes.Buffer
	if err := htmlreport.Write(&buf, runs, s, version()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if get["out"] == "-" {
		_, err = c.App.Writer.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(get["out"], buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
