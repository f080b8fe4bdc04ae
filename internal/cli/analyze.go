package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/report"
	"github.com/llem/llem/trace"
)

func analyzeCommand() *ucli.Command {
	def := analyze.DefaultSettings()
	return &ucli.Command{
		Name:      "analyze",
		Usage:     "apply the methodology to recorded runs: energy per token with CIs, steady state, drift, baselines",
		ArgsUsage: "RUN_DIR|DIR...",
		Description: `Re-computes every number from the stored trace, so old runs can be re-analysed
with new settings. A DIR that is not a run is searched (one level deep, then
two) for runs. For each run and each window (the whole run, every cycle and
phase from the events, the detected steady state, --window spans) it reports:

  energy per output token (the primary metric), output tokens, tokens/s,
  energy from the counter and from integrated driver power (they must agree),
  mean/p5/p95/max power, and the measurement uncertainty (NVML's +/-5 W and
  the counter's edges);

and per run: BCa confidence intervals over cycles (energy, energy per token;
at least 5 cycles) and over requests (TTFT, inter-token and end-to-end
latency), the steady state (PELT, or --steady mser5) with the ML.ENERGY event
window, thermal drift and conditioning of each measured window, idle and
loaded-idle (P0) baselines, the power sensors' update periods, and every
warning. docs/results.md documents each field and default.

The measured windows are the --window ones if given, else every phase named
--measure-phase ("measure"), else the cycles, else the whole run.

The same inputs, settings and seed give byte-identical output.

Examples:
   llem analyze testdata/runs/h100-bs8-cycles
   llem analyze --json runs/ > results.json
   llem analyze --csv --measure-phase decode sweep/ > sweep.csv
   llem analyze --window 30..90 --window measure RUN
   llem analyze --config methodology.json RUN
   llem analyze --plots figs/ sweep/      # and figs/*.svg, *.png`,
		Flags: append(methodologyFlags(), []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "write one JSON document (schema: docs/results.md)"},
			&ucli.BoolFlag{Name: "csv", Usage: "write one CSV row per run and window, for sweeps"},
			&ucli.StringFlag{Name: "steady", Value: def.Steady, Usage: "steady-state method: pelt or mser5"},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write to `FILE` instead of standard output"},
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
	if c.NArg() == 0 {
		return usagef("analyze: no run given; usage: llem analyze [flags] RUN_DIR|DIR...")
	}
	if c.Bool("json") && c.Bool("csv") {
		return usagef("analyze: --json and --csv exclude each other")
	}
	s, err := settingsFromFlags(c)
	if err != nil {
		return usagef("analyze: %v", err)
	}
	if err := s.Validate(); err != nil {
		return usagef("analyze: %v", err)
	}
	dirs, err := findRuns(c.Args().Slice())
	if err != nil {
		return usagef("analyze: %v", err)
	}
	var progress io.Writer = c.App.ErrWriter
	if c.Bool("quiet") {
		progress = nil
	}
	stop, err := startCPUProfile(c.String("cpuprofile"))
	if err != nil {
		return err
	}
	defer stop()
	// Half the Go default heap growth: on the 1-hour 8-GPU benchmark run
	// this cuts peak memory from 447 to 336 MB at no cost in time
	// (docs/performance.md). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	res, err := analyze.Analyze(dirs, s, version(), progress)
	if err != nil {
		return err
	}

	out := c.App.Writer
	var f *os.File
	if p := c.String("out"); p != "" {
		if f, err = os.Create(p); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		out = f
	}
	bw := bufio.NewWriter(out)
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	case c.Bool("csv"):
		err = report.CSV(bw, res)
	default:
		err = report.Table(bw, res)
	}
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil && c.String("plots") != "" {
		err = drawPlotSet(c.String("plots"), dirs, s, c.App.ErrWriter)
	}
	return err
}

// findRuns expands the arguments: a run directory (it has meta.json) is
// itself; any other directory is searched one level deep, then two, for
// runs, in name order. An argument that yields no run is an error.
func findRuns(args []string) ([]string, error) {
	var dirs []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			return nil, fmt.Errorf("%s: flags go before the runs: llem analyze [flags] RUN_DIR|DIR...", a)
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s: not a directory (give a run directory or a directory of runs)", a)
		}
		if isRun(a) {
			dirs = append(dirs, a)
			continue
		}
		var found []string
		for _, pattern := range []string{"*", filepath.Join("*", "*")} {
			m, _ := filepath.Glob(filepath.Join(a, pattern, trace.MetaFile))
			for _, p := range m {
				found = append(found, filepath.Dir(p))
			}
			if len(found) > 0 {
				break
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: not an llem run (no %s) and no runs inside it", a, trace.MetaFile)
		}
		sort.Strings(found)
		dirs = append(dirs, found...)
	}
	return dirs, nil
}

func isRun(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, trace.MetaFile))
	return err == nil
}

// settingsFromFlags reads --config (if the command has it and it is
// given), then applies the methodology flags the command has and the user
// set: flags override the file. Shared by analyze and compare.
func settingsFromFlags(c *ucli.Context) (analyze.Settings, error) {
	s := analyze.DefaultSettings()
	if p := c.String("config"); p != "" {
		var err error
		if s, err = analyze.LoadSettings(p); err != nil {
			return s, err
		}
	}
	if c.IsSet("window") {
		s.Windows = c.StringSlice("window")
	}
	if c.IsSet("measure-phase") {
		s.MeasurePhase = c.String("measure-phase")
	}
	if c.IsSet("resamples") {
		s.Resamples = c.Int("resamples")
	}
	if c.IsSet("confidence") {
		s.Confidence = c.Float64("confidence")
	}
	if c.IsSet("seed") {
		s.Seed = c.Uint64("seed")
	}
	if c.IsSet("steady") {
		s.Steady = c.String("steady")
	}
	return s, nil
}

// methodologyFlags are the settings flags analyze and compare share: they
// feed settingsFromFlags. The defaults are the flags' Values so that --help
// shows them once (a default in Usage was followed by urfave's
// "(default: 0)" of an unset Value); only flags that are set (IsSet)
// override --config, so the Values do not mask the file.
func methodologyFlags() []ucli.Flag {
	def := analyze.DefaultSettings()
	return []ucli.Flag{
		&ucli.StringFlag{Name: "config", Usage: "JSON file of methodology settings (any subset; see docs/results.md)"},
		&ucli.StringSliceFlag{Name: "window", Usage: "a measured window: a phase `NAME` or START..END in seconds from the first sample (repeatable)"},
		&ucli.StringFlag{Name: "measure-phase", Value: def.MeasurePhase, Usage: "the client phase that is the measurement"},
		&ucli.IntFlag{Name: "resamples", Value: def.Resamples, Usage: "bootstrap resamples"},
		&ucli.Float64Flag{Name: "confidence", Value: def.Confidence, Usage: "confidence level of every interval, in (0, 1)"},
		&ucli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "seed of every resampling, recorded in the output"},
	}
}
