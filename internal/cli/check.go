package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/trace"
)

func checkCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "check",
		Usage:       "verify runs or an archive of runs: checksums, every segment decodes, row counts, time order",
		ArgsUsage:   "RUN_DIR|DIR...",
		Description: helpText("check"),
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON array, one report per run"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the runs that are not intact"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usagef("check: no run given; usage: llem check RUN_DIR|DIR...")
			}
			var dirs []string
			for _, a := range c.Args().Slice() {
				if strings.HasPrefix(a, "-") {
					return usagef("check: %s: flags go before the runs: llem check [--json] RUN_DIR|DIR...", a)
				}
				found, err := trace.ArchiveRuns(a)
				if err != nil {
					return err
				}
				dirs = append(dirs, found...)
			}
			var reports []*trace.CheckReport
			bad := 0
			for _, dir := range dirs {
				rep, err := trace.Check(dir)
				if err != nil {
					return fmt.Errorf("check: %w", err)
				}
				reports = append(reports, rep)
				if !rep.OK() {
					bad++
				}
			}
			if c.Bool("json") {
				if err := writeJSON(c.App.Writer, reports); err != nil {
					return err
				}
			} else {
				trace.WriteChecks(c.App.Writer, reports, c.Bool("quiet"))
			}
			if bad > 0 {
				return exitError{1}
			}
			return nil
		},
	}
}
