package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze/methods"
	"github.com/llem/llem/analyze/report"
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
		Flags: append(methodologyFlags(),
			&ucli.StringFlag{Name: "as", Usage: "comma-separated `METHODS` (" + methods.Forms + ")"},
			&ucli.BoolFlag{Name: "json", Usage: "write one JSON document: {runs: [{run, windows: [{name, kind, cycle, start_s, end_s, duration_s, llem_energy_j, methods: [{method, energy_j, mean_power_w, error_pct}]}]}]}"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
			&ucli.StringFlag{Name: "plot", Usage: "also draw each method's error against the window length into `FILE` (.pdf, .svg or .png)"},
			&ucli.StringFlag{Name: "width", Value: "double", Usage: "figure width for --plot: single (3.5 in) or double (7 in)"},
		),
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("replay: %v", err)
		},
		Action: runReplay,
	}
}

func runReplay(c *ucli.Context) error {
	if strings.TrimSpace(c.String("as")) == "" {
		return usagef("replay: --as is required: the methods to replay, comma-separated (%s); usage: llem replay [--json] --as METHODS RUN_DIR|DIR...", methods.Forms)
	}
	ms, err := methods.ParseList(c.String("as"))
	if err != nil {
		return usagef("replay: --as: %v", err)
	}
	width, err := plots.ParseWidth(c.String("width"))
	if err != nil {
		return usagef("replay: --width: %v", err)
	}
	var format plots.Format
	if p := c.String("plot"); p != "" {
		if format, err = plots.FormatOf(p); err != nil {
			return usagef("replay: --plot: %v", err)
		}
	}
	s, err := readSettings(c)
	if err != nil {
		return err
	}
	runs, err := openRuns(c, s)
	if err != nil {
		return err
	}
	doc := methods.Doc{Runs: []methods.RunReplay{}}
	for _, r := range runs {
		doc.Runs = append(doc.Runs, methods.Replay(r, ms))
	}
	err = writeOut(c, func(w io.Writer) error {
		if c.Bool("json") {
			return writeJSON(w, doc)
		}
		return report.ReplayTable(w, doc)
	})
	if err != nil || c.String("plot") == "" {
		return err
	}
	fig, err := plots.ReplayErrorsOf(doc, width)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := fig.Render(&buf, format, 0); err != nil {
		return err
	}
	if err := os.WriteFile(c.String("plot"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "llem: wrote %s\n", c.String("plot"))
	}
	return nil
}
