package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/plots"
)

func plotCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "plot",
		Usage:     "draw publication figures of recorded runs: PDF, SVG or PNG",
		ArgsUsage: "RUN_DIR|DIR... --kind KIND -o FILE",
		Description: `Draws a figure from runs, every number computed as llem analyze computes it
(the same settings flags and --config). A DIR that is not a run is
searched for runs, as by llem analyze. Flags may come before or after the runs.

Kinds:
  timeline    one run over time: power (the driver's 50 Hz samples, instant
              power, the 1 s average and the energy counter's steps), then
              temperature and SM clock; phases and cycles shaded and
              labelled, the steady window, idle and P0 baselines, request
              starts
  latency     CDFs of time to first token and inter-token latency over the
              measured windows' requests, a line per run
  efficiency  energy per output token and output tokens/s per run, with 95%
              BCa intervals over cycles (runs with fewer than 5 cycles: the
              measured windows' values, without intervals)
  pareto      energy per output token against tokens/s across runs (a sweep),
              the Pareto front joined, each point labelled (batch=8)
  power       the distribution (ECDF) of the power samples in each run's
              steady window

Runs are named by the labels that differ between them (llem record --label).
The -o extension picks the format: .pdf and .svg for papers (vector, fonts
embedded), .png for slides and the web (--dpi, default 300). --width single
is 3.5 in wide, double 7 in; text is at least 7 pt at that size and the colours
are the Okabe-Ito palette, distinct to colour-blind readers. The same runs
give byte-identical files. docs/figures.md shows each kind.

Examples:
   llem plot testdata/runs/h100-bs8-cycles --kind timeline -o timeline.pdf
   llem plot sweep/ --kind pareto -o pareto.pdf --width double
   llem plot --kind latency -o latency.png runs/bs8 runs/bs32
   llem plot runs/ --kind efficiency -o efficiency.svg`,
		Flags: append(methodologyFlags(),
			&ucli.StringFlag{Name: "kind", Aliases: []string{"k"}, Usage: "the `KIND` of figure: timeline, latency, efficiency, pareto or power"},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "the `FILE` to write; its extension (.pdf, .svg, .png) picks the format"},
			&ucli.StringFlag{Name: "width", Value: "single", Usage: "the figure's `WIDTH`: single (3.5 in, one column of a two-column paper) or double (7 in, the page)"},
			&ucli.IntFlag{Name: "dpi", Value: plots.DefaultDPI, Usage: "a PNG's resolution: `N` dots per inch"},
		),
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("plot: %v", err)
		},
		Action: runPlot,
	}
}

func runPlot(c *ucli.Context) error {
	if c.String("kind") == "" {
		return usagef("plot: no --kind: want one of timeline, latency, efficiency, pareto, power")
	}
	kind, err := plots.ParseKind(c.String("kind"))
	if err != nil {
		return usagef("plot: --kind: %v", err)
	}
	out := c.String("out")
	if out == "" {
		return usagef("plot: no output file: give -o FILE.pdf, .svg or .png")
	}
	if _, err := plots.FormatOf(out); err != nil {
		return usagef("plot: -o %v", err)
	}
	width, err := plots.ParseWidth(c.String("width"))
	if err != nil {
		return usagef("plot: --width: %v", err)
	}
	if dpi := c.Int("dpi"); dpi < 10 || dpi > 2400 {
		return usagef("plot: --dpi %d: want a whole number of dots per inch from 10 to 2400", dpi)
	}
	s, err := readSettings(c)
	if err != nil {
		return err
	}
	runs, err := openRuns(c, s)
	if err != nil {
		return err
	}
	if kind == plots.Timeline && len(runs) != 1 {
		var dirs []string
		for _, r := range runs {
			dirs = append(dirs, r.Dir)
		}
		return usagef("plot: --kind timeline draws one run, and %d were given (%s): plot each on its own", len(runs), strings.Join(dirs, ", "))
	}
	fig, err := plots.Draw(kind, runs, width)
	if err != nil {
		return usagef("plot: %v", err)
	}
	for _, n := range fig.Notes {
		fmt.Fprintf(c.App.ErrWriter, "llem: plot: %s\n", n)
	}
	if err := fig.WriteFile(out, c.Int("dpi")); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
