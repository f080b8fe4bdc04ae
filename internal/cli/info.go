package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze/report"
	"github.com/llem/llem/trace"
)

func infoCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "info",
		Usage:       "summarise recorded runs: duration, GPUs, sample rates, counter energy, events, warnings",
		ArgsUsage:   "RUN_DIR...",
		Description: helpText("info"),
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON array, one object per run"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usagef("info: no run given; usage: llem info RUN_DIR...")
			}
			var all []*trace.Summary
			for _, dir := range c.Args().Slice() {
				r, err := trace.Open(dir)
				if err != nil {
					return err
				}
				s, err := trace.Summarize(r)
				if err != nil {
					return err
				}
				all = append(all, s)
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, all)
			}
			for i, s := range all {
				if i > 0 {
					fmt.Fprintln(c.App.Writer)
				}
				report.Info(c.App.Writer, s)
			}
			return nil
		},
	}
}
