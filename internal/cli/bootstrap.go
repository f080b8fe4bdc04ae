package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze/bootstrap"
	"github.com/llem/llem/analyze/report"
)

func bootstrapCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "bootstrap",
		Usage:       "confidence interval of the mean or median of a column of numbers (BCa bootstrap)",
		ArgsUsage:   "[FILE|-]",
		Description: helpText("bootstrap"),
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "stat", Value: "mean", Usage: "statistic: mean or median (the median of an even count averages the middle two)"},
			&ucli.Float64Flag{Name: "confidence", Value: bootstrap.DefaultConfidence, Usage: "confidence level, in (0, 1)"},
			&ucli.IntFlag{Name: "resamples", Value: bootstrap.DefaultResamples, Usage: "number of bootstrap resamples B (at least 1; 2,000 suits a 95% interval, use more for 99% or for more stable bounds)"},
			&ucli.Uint64Flag{Name: "seed", Value: 0, Usage: "seed of the resampling generator, printed with the result: same data, flags and seed give the same interval"},
			&ucli.StringFlag{Name: "method", Value: bootstrap.MethodBCa, Usage: "interval: bca (bias-corrected and accelerated, corrects for skew), percentile or basic"},
			&ucli.BoolFlag{Name: "json", Usage: "print the interval as one JSON object: estimate, ci_low, ci_high, confidence, method, n, resamples, seed, degenerate, note"},
		},
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("bootstrap: %v", err)
		},
		Action: runBootstrap,
	}
}

func runBootstrap(c *ucli.Context) error {
	if c.NArg() > 1 {
		return usagef("bootstrap: one input at most, got %d (%s); usage: llem bootstrap [flags] [FILE|-]",
			c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	stat, ok := bootstrap.StatNamed(c.String("stat"))
	if !ok {
		return usagef("--stat %q: want mean or median", c.String("stat"))
	}
	interval, ok := bootstrap.MethodNamed(c.String("method"))
	if !ok {
		return usagef("--method %q: want bca, percentile or basic", c.String("method"))
	}
	// Checked here, not left to bootstrap.Options: there 0 means "default",
	// but a user who typed --confidence 0 or --resamples 0 made a mistake.
	conf := c.Float64("confidence")
	if !(conf > 0 && conf < 1) { // also rejects NaN
		return usagef("--confidence must be in (0, 1), got %g (e.g. 0.95 for a 95%% interval)", conf)
	}
	resamples := c.Int("resamples")
	if resamples < 1 {
		return usagef("--resamples must be at least 1, got %d", resamples)
	}

	name := "-"
	if c.NArg() == 1 {
		name = c.Args().First()
	}
	x, err := readValues(c.App.Reader, name)
	if err != nil {
		return err
	}

	opts := bootstrap.Options{Resamples: resamples, Confidence: conf, Seed: c.Uint64("seed")}
	iv, err := interval(x, stat, opts)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		return writeJSON(w, iv)
	}
	report.Interval(w, stat.Name, iv)
	return nil
}

// readValues reads the column from the file name, or from stdin for "-".
// Content errors are usage errors that name the input and the line.
func readValues(stdin io.Reader, name string) ([]float64, error) {
	r, label := stdin, "stdin"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err) // names the file
		}
		defer f.Close()
		r, label = f, name
	}
	x, err := bootstrap.ReadColumn(r)
	if err != nil {
		return nil, usagef("bootstrap: %s: %v", label, err)
	}
	if len(x) == 0 {
		return nil, usagef("bootstrap: %s: no numbers to bootstrap (want one number per line; blank lines and # comments are skipped)", label)
	}
	return x, nil
}
