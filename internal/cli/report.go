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
		Name:        "report",
		Usage:       "write one self-contained HTML page of a run or a sweep: tables, warnings, figures, environment",
		ArgsUsage:   "RUN_DIR|DIR... -o FILE.html",
		Description: helpText("report"),
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
