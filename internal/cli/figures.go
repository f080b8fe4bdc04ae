package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/figures"
	"github.com/llem/llem/plots"
)

func figuresCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "figures",
		Usage:     "regenerate a paper's figures and tables from a manifest, with provenance",
		ArgsUsage: "MANIFEST.toml",
		Description: `Reads a TOML manifest that names figures (the kinds of llem plot) and tables
(llem analyze or llem compare output), the runs or globs of runs each uses
(relative to the manifest), the methodology settings ([settings]: any key of
docs/results.md "Settings", or settings_file) and the output paths, makes
every one of them, and writes provenance.json next to them (or at the
manifest's provenance path): the sha256 of every input file and output, the
llem version and the resolved settings with their hash and seed.

The same manifest and runs give byte-identical outputs and provenance. A bad
manifest (unknown key, missing run, a glob matching nothing, a bad kind)
exits with status 2 and names its line. docs/figures.md documents the format.

Example:
   llem figures examples/figures.toml`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
		},
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("figures: %v", err)
		},
		Action: runFigures,
	}
}

func runFigures(c *ucli.Context) error {
	if c.NArg() != 1 {
		return usagef("figures: want one manifest, got %d; usage: llem figures [-q] MANIFEST.toml", c.NArg())
	}
	m, err := figures.Load(c.Args().First())
	var fe *figures.Error
	if errors.As(err, &fe) {
		return usagef("figures: %v", err)
	}
	if err != nil {
		return err
	}
	var log io.Writer = c.App.ErrWriter
	if c.Bool("quiet") {
		log = nil
	}
	_, err = figures.Generate(m, version(), log)
	if errors.As(err, &fe) {
		return usagef("figures: %v", err)
	}
	return err
}

// drawPlotSet draws llem analyze --plots' standard set into dir: a
// timeline of each run (<run-base>-timeline), and across the runs the
// latency, efficiency, pareto and power figures, each as SVG and PNG. A
// figure the runs cannot give (latency without requests) is skipped with
// a note. It says on log where the figures are.
func drawPlotSet(dir string, runs []*analyze.Run, log io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--plots: %w", err)
	}
	var wrote []string
	write := func(base string, kind plots.Kind, rs []*analyze.Run) error {
		fig, err := plots.Draw(kind, rs, plots.Single)
		if err != nil {
			fmt.Fprintf(log, "llem: --plots: %s skipped: %v\n", base, err)
			return nil
		}
		for _, n := range fig.Notes {
			fmt.Fprintf(log, "llem: --plots: %s\n", n)
		}
		for _, ext := range []string{".svg", ".png"} {
			p := filepath.Join(dir, base+ext)
			if err := fig.WriteFile(p, plots.DefaultDPI); err != nil {
				return fmt.Errorf("--plots: %w", err)
			}
			wrote = append(wrote, p)
		}
		return nil
	}
	// Runs with the same directory name (a/run, b/run) are numbered.
	count := map[string]int{}
	for _, r := range runs {
		count[filepath.Base(filepath.Clean(r.Dir))]++
	}
	seen := map[string]int{}
	for i, r := range runs {
		base := filepath.Base(filepath.Clean(r.Dir))
		if count[base] > 1 {
			seen[base]++
			base = fmt.Sprintf("%s-%d", base, seen[base])
		}
		if err := write(base+"-timeline", plots.Timeline, runs[i:i+1]); err != nil {
			return err
		}
	}
	for _, k := range []plots.Kind{plots.Latency, plots.Efficiency, plots.Pareto, plots.Power} {
		if err := write(string(k), k, runs); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "llem: --plots: wrote %d figures to %s:\n", len(wrote), dir)
	for _, p := range wrote {
		fmt.Fprintf(log, "  %s\n", p)
	}
	return nil
}
