// Package ptdaemon imports SPEC PTDaemon power-analyzer logs, with the
// MLPerf loadgen logs of the same run, into llem runs (llem import
// ptdaemon).
//
// PTDaemon reads a wall-power analyzer (Yokogawa, ...) about once a
// second and logs one line per reading: the total active power (Watts),
// Volts, Amps and power factor, then the same per channel of a
// multi-channel analyzer. MLPerf Power runs it on a "director" machine
// while loadgen runs the benchmark on the system under test; the run's
// spl.txt is the PTDaemon log of the measured run.
//
// The total Watts is whole-system AC power: every sample becomes one
// device_state row of device 0 (instant_power_mw, rounded to 1 mW), which
// meta.json describes as "whole-system AC power (SPEC PTDaemon)", not a
// GPU. The log has no GPU energy counter, no driver power samples and no
// per-GPU power. Volts, Amps, PF and the per-channel values have no column
// in llem's trace: they are listed in source.unknown as not imported, and
// the channels' Watts are checked against the total.
//
// With loadgen's detail log, power_begin and power_end become the phase
// "mlperf_power" (events phase_start and phase_end, source "import"), the
// window MLPerf averages over: the mean of the samples strictly inside it
// is MLPerf's power figure. With loadgen's summary, the throughput is kept
// in source.notes (mlperf_tokens_per_s, mlperf_samples_per_s).
//
// Time: PTDaemon and loadgen print local time with no zone, in the same
// layout (loadgen's DateTimeStringForPower was written to match PTDaemon's
// log). Both are read as UTC and compared as they are, as MLPerf's
// submission checker does (it adds the client's UTC offset to loadgen's
// times and the server's to PTDaemon's, the same offset when both machines
// share a zone). Options.LoadgenOffset shifts loadgen's times for machines
// in different zones.
package ptdaemon

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
)

// Format is the importer's name on the command line and in meta.json
// (device "import:ptdaemon"); llem analyze reads a run of this format as
// a whole-system analyzer.
const Format = trace.FormatPTDaemon

// PhaseName is the phase that loadgen's power_begin and power_end open
// and close.
const PhaseName = trace.PhaseMLPerfPower

// EventSource is the source of the events an import writes.
const EventSource = "import"

// Options are the loadgen logs of the run and how to align them.
type Options struct {
	Loadgen string // loadgen's mlperf_log_detail.txt, "" for none
	Summary string // loadgen's mlperf_log_summary.txt, "" for none
	// LoadgenOffset is added to loadgen's times to put them on PTDaemon's
	// clock: the client's minus the server's UTC offset, 0 when both
	// machines are in the same time zone.
	LoadgenOffset time.Duration
}

// Files lists the input files of an import, to hash: the PTDaemon log,
// then the loadgen logs given.
func Files(spl string, o Options) []string {
	files := []string{spl}
	for _, f := range []string{o.Loadgen, o.Summary} {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// Window is the loadgen window of the power measurement on PTDaemon's clock.
type Window struct {
	Begin, End     string // as loadgen wrote them
	BeginNs, EndNs int64  // with the offset
	// Samples counts the valid samples strictly inside (BeginNs, EndNs);
	// MeanW is their mean, from the stored (rounded) values: MLPerf's figure.
	Samples int
	MeanW   float64
}

// Result counts what an import read.
type Result struct {
	Rows      int // device_state rows
	DataLines int // non-blank lines of the PTDaemon log
	Skipped   int // lines of it skipped
	Reasons   []LineError
	Invalid   int // samples PTDaemon marked invalid, not stored
	Window    *Window
	Summary   *Summary
}

// ImportFiles parses the PTDaemon log spl and the loadgen logs of o and
// adds their rows, notes and warnings to w. A file that cannot be read,
// or holds nothing llem can use, is an error naming it.
func ImportFiles(w *imports.Writer, spl string, o Options) (Result, error) {
	s, err := parseFile(spl, ParseSPL)
	if err != nil {
		return Result{}, err
	}
	var lg *Loadgen
	if o.Loadgen != "" {
		if lg, err = parseFile(o.Loadgen, ParseLoadgen); err != nil {
			return Result{}, err
		}
	}
	var sum *Summary
	if o.Summary != "" {
		if sum, err = parseFile(o.Summary, ParseSummary); err != nil {
			return Result{}, err
		}
	}
	return Import(w, s, lg, sum, o.LoadgenOffset), nil
}

func parseFile[T any](path string, parse func(r io.Reader, name string) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return parse(f, path)
}

// Import adds a parsed PTDaemon log, and the loadgen logs when not nil, to
// w. offset is added to loadgen's times.
func Import(w *imports.Writer, s *SPL, lg *Loadgen, sum *Summary, offset time.Duration) Result {
	res := Result{DataLines: s.DataLines, Skipped: s.Skipped, Reasons: slices.Clone(s.Reasons), Summary: sum}
	rows := make([]trace.DeviceState, 0, len(s.Samples))
	var ts []int64
	maxDiff, checked := 0.0, 0
	for _, smp := range s.Samples {
		if !smp.Valid {
			res.Invalid++
			continue
		}
		mw := int64(math.Round(smp.Watts * 1000))
		rows = append(rows, trace.DeviceState{GPU: 0, TimestampNs: smp.TimeNs, InstantPowerMw: &mw})
		ts = append(ts, smp.TimeNs)
		if smp.Channels > 0 {
			maxDiff = max(maxDiff, math.Abs(smp.ChannelWatts-smp.Watts))
			checked++
		}
	}
	w.State(rows...)
	res.Rows = len(rows)

	uuid := "ptdaemon"
	if files := w.Files(); len(files) > 0 {
		uuid += "-" + files[0].SHA256[:16]
	}
	w.SetGPUs([]trace.GPUInfo{{Index: 0, Name: "whole-system AC power (SPEC PTDaemon)", UUID: uuid}})

	// What the log cannot tell, and what llem does not import.
	for _, u := range []string{"GPU energy counter", "driver power samples", "per-GPU power",
		"GPU temperature, clocks and utilisation", "power analyzer model", "host", "command", "time zone"} {
		w.Unknown(u)
	}
	if len(s.TotalKeys) > 0 {
		w.Unknown(fmt.Sprintf("total %s: not imported (llem's trace has no column for them)", strings.Join(s.TotalKeys, ", ")))
	}
	if len(s.Channels) > 0 {
		w.Unknown(fmt.Sprintf("channels %s (%s each): not imported (device_state holds one power per device; their sum, the total Watts, is imported)",
			strings.Join(s.Channels, ", "), strings.Join(s.ChannelKeys, ", ")))
	}
	if lg == nil {
		w.Unknown("MLPerf power window (give loadgen's mlperf_log_detail.txt)")
	}
	if sum == nil {
		w.Unknown("MLPerf throughput (give loadgen's mlperf_log_summary.txt)")
	}

	w.Note("power", "whole-system AC active power: PTDaemon's total Watts (all channels), one sample per line, stored as instant_power_mw of device 0 (rounded to 1 mW); it includes CPUs, fans and power-supply losses and is not GPU power")
	w.Note("time_zone", "unknown: PTDaemon prints local time with no zone; times were read as UTC, so durations are right and clock times are off by the director's UTC offset")
	if p := medianGap(ts); p > 0 {
		w.Note("sample_period", fmt.Sprintf("%.3f s (median gap between samples)", p.Seconds()))
	}
	if len(s.Marks) > 0 {
		w.Note("ptdaemon_mark", strings.Join(s.Marks, ", "))
	}
	if checked > 0 {
		w.Note("channel_sum", fmt.Sprintf("the %d channels' Watts sum to the total Watts within %.3f W on all %d samples", len(s.Channels), maxDiff, checked))
		if maxDiff > 1 && maxDiff > 0.001*maxWatts(s) {
			w.Warn(trace.Warning{Code: "import_channel_sum", Message: fmt.Sprintf(
				"the channels' Watts differ from the total Watts by up to %.3f W: the total is imported as logged", maxDiff)})
		}
	}

	if res.Invalid > 0 {
		w.Warn(trace.Warning{Code: "import_absent_values", Message: fmt.Sprintf(
			"Watts: %d of %d samples are marked invalid by PTDaemon (<= 0 W) and were left out, as MLPerf's checker leaves them out",
			res.Invalid, len(s.Samples))})
		w.Note("invalid_samples", strconv.Itoa(res.Invalid))
	}
	if back, rep := order(ts); back > 0 || rep > 0 {
		w.Warn(trace.Warning{Code: "import_repeated_timestamps", Message: fmt.Sprintf(
			"%d samples go back in time and %d repeat the previous time: several logs appended, or the director's clock was changed", back, rep)})
	}
	imports.SkippedLines(w, res.Skipped, res.DataLines, res.Reasons)

	if lg != nil {
		res.Window = window(w, rows, lg, offset)
	}
	if sum != nil {
		summaryNotes(w, sum)
	}
	return res
}

// window adds the mlperf_power phase and describes it.
func window(w *imports.Writer, rows []trace.DeviceState, lg *Loadgen, offset time.Duration) *Window {
	win := &Window{Begin: lg.Begin, End: lg.End, BeginNs: lg.BeginNs + int64(offset), EndNs: lg.EndNs + int64(offset)}
	var sum int64
	for _, r := range rows {
		if r.TimestampNs > win.BeginNs && r.TimestampNs < win.EndNs {
			sum += *r.InstantPowerMw
			win.Samples++
		}
	}
	if win.Samples > 0 {
		win.MeanW = float64(sum) / float64(win.Samples) / 1000
	}
	attrs := func(key, value string, line int) string {
		b, _ := json.Marshal(map[string]any{"loadgen_key": key, "loadgen_value": value, "loadgen_line": line, "offset_s": offset.Seconds()})
		return string(b)
	}
	w.Events(
		trace.Event{TimestampNs: win.BeginNs, GPU: trace.GPUAll, Kind: "phase_start", Name: PhaseName, Source: EventSource,
			Attrs: attrs("power_begin", lg.Begin, lg.BeginLine)},
		trace.Event{TimestampNs: win.EndNs, GPU: trace.GPUAll, Kind: "phase_end", Name: PhaseName, Source: EventSource,
			Attrs: attrs("power_end", lg.End, lg.EndLine)},
	)
	w.Note("mlperf_power_begin", lg.Begin)
	w.Note("mlperf_power_end", lg.End)
	w.Note("alignment", fmt.Sprintf("loadgen's power_begin and power_end (%s) were read as UTC like PTDaemon's times and shifted by %s onto PTDaemon's clock; MLPerf's checker compares the two logs' times the same way (each plus its machine's UTC offset)",
		lg.File, offset))
	w.Note("mlperf_power_rule", "MLPerf's power is the mean of the samples strictly inside power_begin..power_end")
	if lg.BadMLLines > 0 {
		w.Warn(trace.Warning{Code: "import_skipped_lines", Message: fmt.Sprintf(
			"%s: %d of %d %s lines are not JSON and were ignored (first: %v)", lg.File, lg.BadMLLines, lg.MLLogLines, mllogPrefix, lg.Reasons[0])})
	}
	if len(rows) > 0 && (win.BeginNs < rows[0].TimestampNs || win.EndNs > rows[len(rows)-1].TimestampNs) {
		first := time.Unix(0, rows[0].TimestampNs).UTC().Format(TimeLayout)
		last := time.Unix(0, rows[len(rows)-1].TimestampNs).UTC().Format(TimeLayout)
		w.Warn(trace.Warning{Code: "import_window_outside_log", Message: fmt.Sprintf(
			"loadgen's power window %s to %s (offset %s) is not inside the PTDaemon log's %s to %s: wrong files, or the two machines' clocks or time zones differ (give loadgen's offset)",
			lg.Begin, lg.End, offset, first, last)})
	}
	if win.Samples == 0 {
		w.Warn(trace.Warning{Code: "import_window_empty", Message: fmt.Sprintf(
			"no PTDaemon sample lies strictly inside loadgen's power window %s to %s: MLPerf's power is undefined", lg.Begin, lg.End)})
	}
	return win
}

func summaryNotes(w *imports.Writer, s *Summary) {
	note := func(key, field string) {
		if v := s.Fields[field]; v != "" {
			w.Note(key, v)
		}
	}
	note("mlperf_sut", "SUT name")
	note("mlperf_scenario", "Scenario")
	note("mlperf_mode", "Mode")
	note("mlperf_result", "Result is")
	if s.TokensPerS != "" {
		w.Note(trace.NoteMLPerfTokensPerS, s.TokensPerS)
		w.Note("mlperf_tokens_per_s_field", s.TokensKey)
	}
	if s.SamplesPerS != "" {
		w.Note("mlperf_samples_per_s", s.SamplesPerS)
		w.Note("mlperf_samples_per_s_field", s.SamplesKey)
	}
	if s.TokensPerS == "" && s.SamplesPerS == "" {
		w.Unknown("MLPerf throughput: the summary has no tokens or samples per second (SingleStream and MultiStream report latency)")
	}
	if r := s.Fields["Result is"]; r != "" && r != "VALID" {
		w.Warn(trace.Warning{Code: "import_mlperf_invalid", Message: fmt.Sprintf("%s: loadgen says the result is %s", s.File, r)})
	}
}

func medianGap(ts []int64) time.Duration {
	if len(ts) < 2 {
		return 0
	}
	gaps := make([]int64, 0, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; d > 0 {
			gaps = append(gaps, d)
		}
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return time.Duration(gaps[len(gaps)/2])
}

// order counts times that go back and times that repeat the previous one.
func order(ts []int64) (back, rep int) {
	for i := 1; i < len(ts); i++ {
		switch {
		case ts[i] < ts[i-1]:
			back++
		case ts[i] == ts[i-1]:
			rep++
		}
	}
	return back, rep
}

func maxWatts(s *SPL) float64 {
	m := 0.0
	for _, smp := range s.Samples {
		m = max(m, smp.Watts)
	}
	return m
}

// Describe says in lines what the import found beyond its rows: loadgen's
// power window with MLPerf's mean power, and the summary's throughput.
func (r Result) Describe() []string {
	var lines []string
	if win := r.Window; win != nil {
		lines = append(lines, fmt.Sprintf("%s: power_begin %s to power_end %s (%.1f s): %d samples strictly inside, mean %.2f W (MLPerf's rule)",
			PhaseName, win.Begin, win.End, float64(win.EndNs-win.BeginNs)/1e9, win.Samples, win.MeanW))
	}
	if s := r.Summary; s != nil {
		var parts []string
		if s.TokensPerS != "" {
			parts = append(parts, fmt.Sprintf("%s tokens/s (%s)", s.TokensPerS, s.TokensKey))
		}
		if s.SamplesPerS != "" {
			parts = append(parts, fmt.Sprintf("%s samples/s (%s)", s.SamplesPerS, s.SamplesKey))
		}
		if len(parts) == 0 {
			parts = append(parts, "no tokens or samples per second in the summary")
		}
		lines = append(lines, "mlperf summary: "+strings.Join(parts, ", "))
	}
	return lines
}
