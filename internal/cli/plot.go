package cli

import (
	"fmt"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/plots"
)

const plotUsage = "usage: llem plot RUN_DIR|DIR... --kind KIND -o FILE.pdf|.svg|.png [--width single|double]"

// plotFlags are llem plot's flags; all take a value, and may come before
// or after the runs.
var plotFlags = valueFlags{
	{"kind", "k", "the `KIND` of figure: timeline, latency, efficiency, pareto or power", ""},
	{"out", "o", "the `FILE` to write; its extension (.pdf, .svg, .png) picks the format", ""},
	{"width", "", "the figure's `WIDTH`: single (3.5 in, one column of a two-column paper) or double (7 in, the page)", "single"},
	{"dpi", "", "a PNG's resolution: `N` dots per inch", strconv.Itoa(plots.DefaultDPI)},
	{"config", "", "JSON `FILE` of methodology settings, as for llem analyze", ""},
	{"measure-phase", "", "the client phase `NAME` that is the measurement, as for llem analyze", analyze.DefaultSettings().MeasurePhase},
}

func plotCommand() *ucli.Command {
	flags := plotFlags.ucli()
	return &ucli.Command{
		Name:      "plot",
		Usage:     "draw publication figures of recorded runs: PDF, SVG or PNG",
		ArgsUsage: "RUN_DIR|DIR... --kind KIND -o FILE",
		Description: `Draws a figure from runs, every number computed as llem analyze computes it
(the same settings: --config, --measure-phase). A DIR that is not a run is
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
		Flags: flags,
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("plot: %v; %s", err, plotUsage)
		},
		Action: runPlot,
	}
}

func runPlot(c *ucli.Context) error {
	args, after, help, err := plotFlags.split(c.Args().Slice())
	if help {
		ucli.HelpPrinter(c.App.Writer, ucli.CommandHelpTemplate, c.Command)
		return nil
	}
	if err != nil {
		return usagef("plot: %v; %s", err, plotUsage)
	}
	// A flag given before the runs and again after them must agree.
	get, err := plotFlags.values(c, after)
	if err != nil {
		return usagef("plot: %v", err)
	}

	if get["kind"] == "" {
		return usagef("plot: no --kind: want one of timeline, latency, efficiency, pareto, power; %s", plotUsage)
	}
	kind, err := plots.ParseKind(get["kind"])
	if err != nil {
		return usagef("plot: --kind: %v", err)
	}
	if get["out"] == "" {
		return usagef("plot: no output file: give -o FILE.pdf, .svg or .png; %s", plotUsage)
	}
	if _, err := plots.FormatOf(get["out"]); err != nil {
		return usagef("plot: -o %v", err)
	}
	width, err := plots.ParseWidth(get["width"])
	if err != nil {
		return usagef("plot: --width: %v", err)
	}
	dpi, err := strconv.Atoi(get["dpi"])
	if err != nil || dpi < 10 || dpi > 2400 {
		return usagef("plot: --dpi %q: want a whole number of dots per inch from 10 to 2400", get["dpi"])
	}
	if len(args) == 0 {
		return usagef("plot: no run given; %s", plotUsage)
	}

	s := analyze.DefaultSettings()
	if p := get["config"]; p != "" {
		if s, err = analyze.LoadSettings(p); err != nil {
			return usagef("plot: %v", err)
		}
	}
	if c.IsSet("measure-phase") || after["measure-phase"] != "" {
		s.MeasurePhase = get["measure-phase"]
	}
	if err := s.Validate(); err != nil {
		return usagef("plot: %v", err)
	}
	dirs, err := findRuns(args)
	if err != nil {
		return usagef("plot: %v", err)
	}
	if kind == plots.Timeline && len(dirs) != 1 {
		return usagef("plot: --kind timeline draws one run, and %d were given (%s): plot each on its own", len(dirs), strings.Join(dirs, ", "))
	}
	runs, err := plots.Load(dirs, s)
	if err != nil {
		return err
	}
	fig, err := plots.Draw(kind, runs, width)
	if err != nil {
		return usagef("plot: %v", err)
	}
	for _, n := range fig.Notes {
		fmt.Fprintf(c.App.ErrWriter, "llem: plot: %s\n", n)
	}
	if err := fig.WriteFile(get["out"], dpi); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
