package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/plots"
)

func plotCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "plot",
		Usage:       "draw publication figures of recorded runs: PDF, SVG or PNG",
		ArgsUsage:   "RUN_DIR|DIR... --kind KIND -o FILE",
		Description: helpText("plot"),
		Flags: append(methodologyFlags(),
			&ucli.StringFlag{Name: "kind", Aliases: []string{"k"}, Usage: "the `KIND` of figure: timeline, latency, efficiency, pareto, power or nodes"},
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
		return usagef("plot: no --kind: want one of timeline, latency, efficiency, pareto, power, nodes")
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
