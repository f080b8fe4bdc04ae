package cli

import (
	"bytes"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/htmlreport"
	"github.com/llem/llem/plots"
)

const reportUsage = "usage: llem report RUN_DIR|DIR... -o FILE.html [--config FILE] [--measure-phase NAME]"

// reportFlags are llem report's flags; all take a value, and may come
// before or after the runs.
var reportFlags = valueFlags{
	{"out", "o", "the HTML `FILE` to write (- for standard output)", ""},
	{"config", "", "JSON `FILE` of methodology settings, as for llem analyze", ""},
	{"measure-phase", "", "the client phase `NAME` that is the measurement, as for llem analyze", analyze.DefaultSettings().MeasurePhase},
}

func reportCommand() *ucli.Command {
	flags := reportFlags.ucli()
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

func runReport(c *ucli.Context) error {
	args, after, help, err := reportFlags.split(c.Args().Slice())
	if help {
		ucli.HelpPrinter(c.App.Writer, ucli.CommandHelpTemplate, c.Command)
		return nil
	}
	if err != nil {
		return usagef("report: %v; %s", err, reportUsage)
	}
	get, err := reportFlags.values(c, after)
	if err != nil {
		return usagef("report: %v", err)
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
