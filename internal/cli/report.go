package cli

import (
	"bytes"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/htmlreport"
)

func reportCommand() *ucli.Command {
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
figures. Every number is computed as llem analyze computes it (the same
settings flags and --config).

The page is self-contained: inline CSS, figures as inline SVG, no script, no
font, nothing fetched. The same runs give a byte-identical page.
docs/report.md shows one.

Examples:
   llem report testdata/runs/h100-bs8-cycles -o report.html
   llem report sweep/ -o sweep.html`,
		Flags: append(methodologyFlags(),
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "the HTML `FILE` to write (- for standard output)"},
		),
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("report: %v", err)
		},
		Action: runReport,
	}
}

func runReport(c *ucli.Context) error {
	out := c.String("out")
	if out == "" {
		return usagef("report: no output file: give -o FILE.html (- for standard output)")
	}
	s, err := readSettings(c)
	if err != nil {
		return err
	}
	runs, err := openRuns(c, s)
	if err != nil {
		return err
	}
	// Written in memory first: a failed report leaves no partial file.
	var buf bytes.Buffer
	if err := htmlreport.Write(&buf, runs, s, version()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if out == "-" {
		_, err = c.App.Writer.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
