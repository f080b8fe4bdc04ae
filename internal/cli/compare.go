package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze/compare"
)

func compareCommand() *ucli.Command {
	def := compare.DefaultSettings()
	return &ucli.Command{
		Name:      "compare",
		Usage:     "compare configurations benchstat-style: each run's estimate with its CI, the change against the baseline with a CI, and a U test",
		ArgsUsage: "RUN_A RUN_B [RUN|DIR...]",
		Description: `Analyses each run as llem analyze does and, per metric (energy per output
token, output tokens/s, mean power, TTFT, ITL, energy per request), prints a
table: one row per configuration with the mean and its BCa CI, the change of
the mean against the baseline (the first configuration) with a two-sample
BCa bootstrap CI of the ratio of means, and the p-value of a two-sided
Mann-Whitney U test. As in benchstat, the change reads "~" when p >= --alpha.

Samples: energy per output token, tokens/s, mean power and energy per request
are per cycle (llem record --cycles N): the measured windows of one cycle are
one sample. A run without cycles is one sample: it has an estimate, no CI and
no test. TTFT and ITL are per request, over the measured windows.

--group-by KEY pools the runs that share the value of the label KEY
(llem record --label KEY=VALUE) into one configuration; configurations are in
order of first appearance, and --baseline VALUE picks another baseline.

The same inputs, settings and seed give byte-identical output. docs/compare.md
documents the statistics and their sources.

Exit status: 0 with a comparison, 1 when a run cannot be read, 2 for bad
input (fewer than two configurations, a run without the --group-by label, an
unknown --baseline, a flag out of range).

Examples:
   llem compare testdata/runs/h100-bs8-cycles testdata/runs/h100-bs32-cycles
   llem compare --group-by batch --baseline 32 sweep/
   llem compare --json --seed 7 RUN_A RUN_B > compare.json`,
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
	cs := compare.DefaultSettings()
	cs.Alpha, cs.GroupBy, cs.Baseline = c.Float64("alpha"), c.String("group-by"), c.String("baseline")
	s, err := settingsFromFlags(c)
	if err != nil {
		return usagef("compare: %v", err)
	}
	// One set of bootstrap settings for the runs' own analysis and the
	// comparison: --config's, overridden by the flags.
	cs.Resamples, cs.Confidence, cs.Seed = s.Resamples, s.Confidence, s.Seed
	if err := cs.Validate(); err != nil {
		return usagef("compare: %v", err)
	}
	if err := s.Validate(); err != nil {
		return usagef("compare: %v", err)
	}
	if c.IsSet("baseline") && cs.Baseline == "" {
		return usagef("compare: --baseline is empty")
	}
	if c.IsSet("group-by") && cs.GroupBy == "" {
		return usagef("compare: --group-by is empty")
	}
	if c.NArg() == 0 {
		return usagef("compare: no runs given; usage: llem compare [flags] RUN_A RUN_B [RUN|DIR...]")
	}
	for _, a := range c.Args().Slice() {
		if len(a) > 1 && a[0] == '-' {
			return usagef("compare: %s: flags go before the runs: llem compare [flags] RUN_A RUN_B [RUN|DIR...]", a)
		}
	}
	dirs, err := findRuns(c.Args().Slice())
	if err != nil {
		return usagef("compare: %v", err)
	}
	if len(dirs) < 2 {
		return usagef("compare: %d run found (%s); a comparison needs at least two", len(dirs), dirs[0])
	}
	var runs []compare.Run
	for i, dir := range dirs {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "llem: analysing %s (%d of %d)\n", dir, i+1, len(dirs))
		}
		r, err := compare.Load(dir, s)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	res, err := compare.Compare(runs, cs)
	if err != nil {
		return usagef("compare: %v", err)
	}
	res.LlemVersion, res.Analysis, res.AnalysisHash = version(), s, s.Hash()

	out := c.App.Writer
	var f *os.File
	if p := c.String("out"); p != "" {
		if f, err = os.Create(p); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		out = f
	}
	err = writeComparison(out, res, c.Bool("json"), c.Bool("csv"))
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func writeComparison(w io.Writer, res *compare.Result, asJSON, asCSV bool) error {
	bw := bufio.NewWriter(w)
	var err error
	switch {
	case asJSON:
		err = compare.JSON(bw, res)
	case asCSV:
		err = compare.CSV(bw, res)
	default:
		err = compare.Table(bw, res)
	}
	if err == nil {
		err = bw.Flush()
	}
	return err
}
