package cli

import (
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze/compare"
)

func compareCommand() *ucli.Command {
	def := compare.DefaultOptions()
	return &ucli.Command{
		Name:        "compare",
		Usage:       "compare configurations benchstat-style: each run's estimate with its CI, the change against the baseline with a CI, and a U test",
		ArgsUsage:   "RUN_A RUN_B [RUN|DIR...]",
		Description: helpText("compare"),
		Flags: append(methodologyFlags(), []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "write one JSON document with every number and the settings"},
			&ucli.BoolFlag{Name: "csv", Usage: "write one CSV row per metric and configuration"},
			&ucli.StringFlag{Name: "group-by", Usage: "pool the runs sharing the value of this run label `KEY` into one configuration"},
			&ucli.StringFlag{Name: "baseline", Usage: "the baseline configuration: a label `VALUE` with --group-by, else a run as given (default: the first)"},
			&ucli.Float64Flag{Name: "alpha", Value: def.Alpha, Usage: "significance level of the U test: p >= alpha prints ~"},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write to `FILE` instead of standard output"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
		}...),
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("compare: %v", err)
		},
		Action: runCompare,
	}
}

func runCompare(c *ucli.Context) error {
	if c.Bool("json") && c.Bool("csv") {
		return usagef("compare: --json and --csv exclude each other")
	}
	o := compare.DefaultOptions()
	o.Alpha, o.GroupBy, o.Baseline = c.Float64("alpha"), c.String("group-by"), c.String("baseline")
	if c.IsSet("baseline") && o.Baseline == "" {
		return usagef("compare: --baseline is empty")
	}
	if c.IsSet("group-by") && o.GroupBy == "" {
		return usagef("compare: --group-by is empty")
	}
	if err := o.Validate(); err != nil {
		return settingsError(c, err)
	}
	s, err := readSettings(c)
	if err != nil {
		return err
	}
	runs, err := openRuns(c, s)
	if err != nil {
		return err
	}
	if len(runs) < 2 {
		return usagef("compare: %d run found (%s); a comparison needs at least two", len(runs), runs[0].Dir)
	}
	res, err := compare.Compare(runs, s, o)
	if err != nil {
		return settingsError(c, err)
	}
	res.LlemVersion = version()
	return writeOut(c, func(w io.Writer) error {
		switch {
		case c.Bool("json"):
			return compare.JSON(w, res)
		case c.Bool("csv"):
			return compare.CSV(w, res)
		}
		return compare.Table(w, res)
	})
}
