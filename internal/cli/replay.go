package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/methods"
	"github.com/llem/llem/plots"
)

func replayCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "replay",
		Usage:     "re-measure each window of a run as other tools would have (nvidia-smi, Zeus, CodeCarbon, MLPerf, ...) and compare",
		ArgsUsage: "RUN_DIR|DIR...",
		Description: `Shows what another tool's method would have said about each window of a
recorded run. The high-rate trace is read back as that tool would have read
the GPU: a read at time t returns what the recorder last saw at or before t
(the latest power sample, the latest counter read; nothing interpolated, as
a real tool cannot look ahead). Each result is compared with llem's own
energy of the window (energy_j of llem analyze: the energy counter, with the
edge intervals split by the ~50 Hz driver power).

--as takes a comma-separated list of methods:

  poll:INTERVAL:FIELD
      A poller that reads FIELD every INTERVAL from the window start (and once
      at its end) and integrates the reads by trapezoids, as perun does
      (np.trapz of polled nvmlDeviceGetPowerUsage). FIELD is instant
      (FI_DEV_POWER_INSTANT, the 100 ms sensor), average
      (nvmlDeviceGetPowerUsage, a 1 s moving average on Ampere and newer) or
      driver (the driver's ~50 Hz buffer).
  nvidia-smi:INTERVAL
      poll:INTERVAL:average: nvidia-smi --query-gpu=power.draw --loop-ms=N,
      whose power.draw is that 1 s average.
  codecarbon[:INTERVAL]
      CodeCarbon's EmissionsTracker on Volta and newer: the energy counter
      (nvmlDeviceGetTotalEnergyConsumption) read at start, every
      measure_power_secs (default 15 s) and at stop, the deltas summed.
  counter
      Zeus's ZeusMonitor on Volta and newer: the counter read in begin_window
      and in end_window, the difference.
  mlperf
      MLPerf Power: the mean of 1 Hz samples strictly between power_begin and
      power_end, times the duration (the samples: instant power on a 1 s clock
      running from the start of the recording).
  yang4
      Yang et al. (arXiv:2312.02741, SC24): instant power polled at 100 ms
      with offsets 0, 25, 50 and 75 ms, the four trapezoid integrals averaged.
      A recorded window happened once, so only the poll can be shifted, not
      the workload: the sensor's unobserved time is not recovered.

A replayed poller sees no faster than the recording: instant and average
power are stored at 10 Hz, the driver buffer at ~50 Hz, counter reads at
~1 Hz plus one at every phase and cycle boundary the recorder makes (idle,
cooldown, cycles). The counter methods are therefore within a few ms of the
truth at those boundaries, and up to one read interval's energy off elsewhere
(a steady window, a phase your program marks).

For each run and window it prints the window, its cycle and duration, llem's
energy, and per method the energy, its error against llem
(method - llem) / llem in %, and the mean power it implies. docs/replay.md
explains each method with its source and shows a real H100 table.

Exit status: 0 with results, 1 when a run cannot be read, 2 for bad input (no
--as, a bad method spec, no run).

Examples:
   llem replay --as nvidia-smi:1s,counter,mlperf testdata/runs/h100-matmul-cycles
   llem replay --as poll:100ms:instant,poll:1s:average,codecarbon,yang4 RUN
   llem replay --json --as counter,codecarbon:1s runs/ > replay.json`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "as", Usage: "comma-separated `METHODS` (" + methods.Forms + ")"},
			&ucli.BoolFlag{Name: "json", Usage: "write one JSON document: {runs: [{run, windows: [{name, kind, cycle, start_s, end_s, duration_s, llem_energy_j, methods: [{method, energy_j, mean_power_w, error_pct}]}]}]}"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
			&ucli.StringFlag{Name: "plot", Usage: "also draw each method's error against the window length into `FILE` (.pdf, .svg or .png)"},
			&ucli.StringFlag{Name: "width", Value: "double", Usage: "figure width for --plot: single (3.5 in) or double (7 in)"},
		},
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("replay: %v", err)
		},
		Action: runReplay,
	}
}

// replayDoc is the document `llem replay --json` writes.
type replayDoc struct {
	Runs []replayRun `json:"runs"`
}

type replayRun struct {
	Run     string         `json:"run"`
	Windows []replayWindow `json:"windows"`
}

type replayWindow struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Cycle     int     `json:"cycle"`
	StartS    float64 `json:"start_s"`
	EndS      float64 `json:"end_s"`
	DurationS float64 `json:"duration_s"`
	// LlemEnergyJ is energy_j of llem analyze (the counter, edges split
	// by the driver power), else its integrated power where the counter
	// does not cover the window.
	LlemEnergyJ analyze.Num    `json:"llem_energy_j"`
	Methods     []replayResult `json:"methods"`
}

type replayResult struct {
	Method     string      `json:"method"`
	EnergyJ    analyze.Num `json:"energy_j"`
	MeanPowerW analyze.Num `json:"mean_power_w"`
	ErrorPct   analyze.Num `json:"error_pct"`
}

// replayUsage is the synopsis usage errors repeat.
const replayUsage = "usage: llem replay [--json] --as METHODS RUN_DIR|DIR..."

func runReplay(c *ucli.Context) error {
	// The issue wrote `llem replay RUN --as METHOD`: flags after the runs
	// are taken too (urfave/cli stops at the first argument).
	opts := replayOptions{as: c.String("as"), json: c.Bool("json"), quiet: c.Bool("quiet"), plot: c.String("plot"), width: c.String("width")}
	args, err := opts.trailing(c.Args().Slice())
	if err != nil {
		return err
	}
	if strings.TrimSpace(opts.as) == "" {
		return usagef("replay: --as is required: the methods to replay, comma-separated (%s); %s", methods.Forms, replayUsage)
	}
	ms, err := methods.ParseList(opts.as)
	if err != nil {
		return usagef("replay: --as: %v", err)
	}
	if len(args) == 0 {
		return usagef("replay: no run given; %s", replayUsage)
	}
	var format plots.Format
	width, err := plots.ParseWidth(opts.width)
	if err != nil {
		return usagef("replay: --width: %v", err)
	}
	if opts.plot != "" {
		if format, err = plots.FormatOf(opts.plot); err != nil {
			return usagef("replay: --plot: %v", err)
		}
	}
	dirs, err := findRuns(args)
	if err != nil {
		return usagef("replay: %v", err)
	}
	doc := replayDoc{Runs: []replayRun{}}
	for i, dir := range dirs {
		if !opts.quiet {
			fmt.Fprintf(c.App.ErrWriter, "llem: replaying %s (%d of %d)\n", dir, i+1, len(dirs))
		}
		run, err := replayRunDir(dir, ms)
		if err != nil {
			return err
		}
		doc.Runs = append(doc.Runs, run)
	}
	bw := bufio.NewWriter(c.App.Writer)
	if opts.json {
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		err = enc.Encode(doc)
	} else {
		err = replayTable(bw, doc)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if opts.plot != "" {
		return replayPlot(doc, opts.plot, format, width, c.App.ErrWriter, opts.quiet)
	}
	return nil
}

// replayPlot draws the error of every method on every window against the
// window's length: the figure issue 5 asks for.
func replayPlot(doc replayDoc, path string, format plots.Format, width plots.Width, log io.Writer, quiet bool) error {
	var pts []plots.ReplayPoint
	for _, r := range doc.Runs {
		for _, w := range r.Windows {
			for _, m := range w.Methods {
				pts = append(pts, plots.ReplayPoint{Method: m.Method, DurationS: w.DurationS, ErrorPct: float64(m.ErrorPct)})
			}
		}
	}
	fig, err := plots.ReplayErrors(pts, width)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := fig.Render(&buf, format, 0); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if !quiet {
		fmt.Fprintf(log, "llem: wrote %s\n", path)
	}
	return nil
}

type replayOptions struct {
	as          string
	json, quiet bool
	plot, width string
}

// trailing takes the flags given after the first run out of args and
// returns the runs.
func (o *replayOptions) trailing(args []string) ([]string, error) {
	var runs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "-" || !strings.HasPrefix(a, "-"):
			runs = append(runs, a)
		case name == "as":
			if !hasValue {
				if i+1 >= len(args) {
					return nil, usagef("replay: flag needs an argument: %s", a)
				}
				i++
				value = args[i]
			}
			o.as = value
		case name == "plot" || name == "width":
			if !hasValue {
				if i+1 >= len(args) {
					return nil, usagef("replay: flag needs an argument: %s", a)
				}
				i++
				value = args[i]
			}
			if name == "plot" {
				o.plot = value
			} else {
				o.width = value
			}
		case (name == "json" || name == "quiet" || name == "q") && !hasValue:
			if name == "json" {
				o.json = true
			} else {
				o.quiet = true
			}
		default:
			return nil, usagef("replay: flag provided but not defined: %s; %s", a, replayUsage)
		}
	}
	return runs, nil
}

// replayRunDir analyses one run with the default settings (for its
// windows and llem's energy) and measures every window with every method.
func replayRunDir(dir string, ms []methods.Method) (replayRun, error) {
	d, err := analyze.Load(dir)
	if err != nil {
		return replayRun{}, err
	}
	rr := analyze.AnalyzeRun(d, dir, analyze.DefaultSettings())
	out := replayRun{Run: dir, Windows: []replayWindow{}}
	abs := func(s float64) int64 { return d.Origin + int64(math.Round(s*1e9)) }
	for _, w := range rr.Windows {
		llem := w.EnergyJ
		if !llem.Valid() {
			llem = w.EnergyIntegratedJ
		}
		rw := replayWindow{Name: w.Name, Kind: w.Kind, Cycle: w.Cycle, StartS: w.StartS, EndS: w.EndS,
			DurationS: w.DurationS, LlemEnergyJ: llem, Methods: []replayResult{}}
		start, end := abs(w.StartS), abs(w.EndS)
		for _, m := range ms {
			e, p, ok := m.Measure(d, start, end)
			res := replayResult{Method: m.String(), EnergyJ: analyze.NaN, MeanPowerW: analyze.NaN, ErrorPct: analyze.NaN}
			if ok {
				res.EnergyJ, res.MeanPowerW = analyze.Num(e), analyze.Num(p)
				if llem.Valid() && llem != 0 {
					res.ErrorPct = (res.EnergyJ - llem) / llem * 100
				}
			}
			rw.Methods = append(rw.Methods, res)
		}
		out.Windows = append(out.Windows, rw)
	}
	return out, nil
}

// replayTable writes one block per run, one line per window and method;
// a window's own columns are printed on its first line only.
func replayTable(w io.Writer, doc replayDoc) error {
	num := func(v analyze.Num, format string) string {
		if !v.Valid() {
			return "-"
		}
		return fmt.Sprintf(format, float64(v))
	}
	for i, r := range doc.Runs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "run  %s\n\n", r.Run)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "window\tcycle\tstart s\tdur s\tllem J\t  %s\tmethod J\terror %%\tmean W\t\n", padRight("method"))
		for _, win := range r.Windows {
			cycle := "-"
			if win.Cycle > 0 {
				cycle = fmt.Sprint(win.Cycle)
			}
			for k, m := range win.Methods {
				cols := []string{"", "", "", "", ""}
				if k == 0 {
					cols = []string{win.Name, cycle, fmt.Sprintf("%.1f", win.StartS), fmt.Sprintf("%.1f", win.DurationS),
						num(win.LlemEnergyJ, "%.1f")}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t  %s\t%s\t%s\t%s\t\n", cols[0], cols[1], cols[2], cols[3], cols[4],
					padRight(m.Method), num(m.EnergyJ, "%.1f"), num(m.ErrorPct, "%+.2f"), num(m.MeanPowerW, "%.1f"))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "(error % = (method - llem) / llem; llem J: the energy counter with the edge intervals split by the ~50 Hz driver power; - : the method cannot measure the window)")
	return nil
}

// padRight left-aligns a method name inside the right-aligned table.
func padRight(s string) string {
	const width = 20
	if len(s) >= width {
		return s
	}
	return s + strings.Repeat(" ", width-len(s))
}
