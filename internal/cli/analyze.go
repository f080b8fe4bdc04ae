package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/report"
	"github.com/llem/llem/plots"
)

func analyzeCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "analyze",
		Usage:       "apply the methodology to recorded runs: energy per token with CIs, steady state, drift, baselines",
		ArgsUsage:   "RUN_DIR|DIR...",
		Description: helpText("analyze"),
		Flags: append(methodologyFlags(), []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "write one JSON document (schema: docs/results.md)"},
			&ucli.BoolFlag{Name: "csv", Usage: "write one CSV row per run and window, for sweeps"},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write to `FILE` instead of standard output"},
			&ucli.StringFlag{Name: "parquet", Usage: "also write the CSV's rows, typed, to the Parquet file `FILE` (for DuckDB, pandas, Polars)"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
			&ucli.StringFlag{Name: "plots", Usage: "also draw the standard figures into `DIR` (SVG and PNG): each run's timeline, and the runs' latency, efficiency, pareto and power"},
			&ucli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a Go CPU profile to this file (for llem's own benchmarks)"},
		}...),
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("analyze: %v", err)
		},
		Action: runAnalyze,
	}
}

func runAnalyze(c *ucli.Context) error {
	if c.Bool("json") && c.Bool("csv") {
		return usagef("analyze: --json and --csv exclude each other")
	}
	if p := c.String("parquet"); p != "" && p == c.String("out") {
		return usagef("analyze: --parquet and --out name the same file %s", p)
	}
	s, err := readSettings(c)
	if err != nil {
		return err
	}
	stop, err := startCPUProfile(c.String("cpuprofile"))
	if err != nil {
		return err
	}
	defer stop()
	// Without figures only the results are kept: a directory of hundreds
	// of runs needs the memory of the few analysed at once. The collector's
	// headroom is set for analysing (analyze.GCRoom).
	runs, err := openRunsWith(c, s, c.String("plots") == "", true)
	var sweep *analyze.SweepError
	if err != nil && !(errors.As(err, &sweep) && len(runs) > 0) {
		return err
	}
	// A sweep with unreadable runs reports the others, then fails naming
	// them (sweep).
	res := analyze.Document(runs, s, version())
	if p := c.String("parquet"); p != "" {
		if err := writeFileAtomic(p, func(w io.Writer) error { return report.Parquet(w, res) }); err != nil {
			return fmt.Errorf("--parquet %s: %w", p, err)
		}
	}
	err = writeOut(c, func(w io.Writer) error {
		switch {
		case c.Bool("json"):
			return writeJSON(w, res)
		case c.Bool("csv"):
			return report.CSV(w, res)
		}
		return report.Table(w, res)
	})
	if err == nil && c.String("plots") != "" {
		err = plots.WriteSet(c.String("plots"), runs, c.App.ErrWriter)
	}
	if err == nil && sweep != nil {
		return sweep
	}
	return err
}

// writeOut writes through a buffer to --out's file, or to standard output
// without --out.
func writeOut(c *ucli.Context, write func(io.Writer) error) error {
	out := c.App.Writer
	var f *os.File
	if p := c.String("out"); p != "" {
		var err error
		if f, err = os.Create(p); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		out = f
	}
	bw := bufio.NewWriter(out)
	err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// writeFileAtomic writes path through a temporary file beside it, renamed
// over path once complete: a reader never sees half a file, and a failure
// leaves an earlier file of that name as it was.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	bw := bufio.NewWriter(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
