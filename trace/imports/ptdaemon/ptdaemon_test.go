package ptdaemon

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
	"github.com/llem/llem/trace/imports/importtest"
)

// The real logs of an MLPerf Inference v4.1 power run (see the README.md
// beside them for provenance).
const (
	realDir     = "../../../testdata/imports/mlperf-v4.1-h200x8/"
	realSPL     = realDir + "performance_run_1_spl.txt"
	realLoadgen = realDir + "performance_run_1_mlperf_log_detail.txt"
	realSummary = realDir + "performance_run_1_mlperf_log_summary.txt"
)

var realOptions = Options{Loadgen: realLoadgen, Summary: realSummary}

type imported struct {
	dir    string
	meta   *trace.Meta
	res    Result
	states []trace.DeviceState
	events []trace.Event
}

// importFiles imports into a new run and reads it back.
func importFiles(t *testing.T, spl string, o Options) imported {
	t.Helper()
	run, res := importtest.Import(t, Format, Files(spl, o), func(w *imports.Writer) (Result, error) { return ImportFiles(w, spl, o) })
	return imported{run.Dir, run.Meta, res, run.States, run.Events}
}

var (
	writeFile = importtest.WriteFile
	warning   = importtest.Warning
)

// phase finds the mlperf_power phase among the events.
func phase(t *testing.T, events []trace.Event) (start, end int64) {
	t.Helper()
	for _, e := range events {
		if e.Name != PhaseName || e.Source != EventSource || e.GPU != trace.GPUAll {
			continue
		}
		switch e.Kind {
		case "phase_start":
			start = e.TimestampNs
		case "phase_end":
			end = e.TimestampNs
		}
	}
	if start == 0 || end == 0 {
		t.Fatalf("no %s phase in %+v", PhaseName, events)
	}
	return start, end
}

// TestMLPerfH200Power imports the real PTDaemon and loadgen logs of an
// MLPerf Inference v4.1 gptj-99 Offline power run and recomputes, from the
// written run only, MLPerf's power figure: the mean of the total-Watts
// samples strictly inside power_begin..power_end, 4775.27 W over 1,056
// samples (recomputed independently from the same logs).
func TestMLPerfH200Power(t *testing.T) {
	im := importFiles(t, realSPL, realOptions)
	if im.res.Rows != 1158 || len(im.states) != 1158 || im.res.Skipped != 0 || im.res.Invalid != 0 {
		t.Fatalf("rows %d, stored %d, skipped %d, invalid %d; want 1158, 1158, 0, 0", im.res.Rows, len(im.states), im.res.Skipped, im.res.Invalid)
	}
	// Time,07-17-2024 07:02:47.866,Watts,2381.800000,...
	first := im.states[0]
	if first.GPU != 0 || first.TimestampNs != time.Date(2024, 7, 17, 7, 2, 47, 866e6, time.UTC).UnixNano() ||
		first.InstantPowerMw == nil || *first.InstantPowerMw != 2381800 || first.AveragePowerMw != nil {
		t.Errorf("first row %+v", first)
	}

	// The window, from the events as written: power_begin 07:04:02.134 and
	// power_end 07:21:38.582, on PTDaemon's clock.
	start, end := phase(t, im.events)
	if want := time.Date(2024, 7, 17, 7, 4, 2, 134e6, time.UTC).UnixNano(); start != want {
		t.Errorf("phase_start %s, want 07:04:02.134", time.Unix(0, start).UTC())
	}
	if want := time.Date(2024, 7, 17, 7, 21, 38, 582e6, time.UTC).UnixNano(); end != want {
		t.Errorf("phase_end %s, want 07:21:38.582", time.Unix(0, end).UTC())
	}

	// MLPerf's rule, from the run's columns.
	r, err := trace.Open(im.dir)
	if err != nil {
		t.Fatal(err)
	}
	var sumMw int64
	n := 0
	err = trace.ScanColumns(r, trace.TableState, []string{"timestamp_ns", "instant_power_mw"}, 256, func(c *trace.Columns) error {
		for i := range c.Len() {
			ts, _ := c.Int(0, i)
			p, ok := c.Int(1, i)
			if ok && ts > start && ts < end {
				sumMw += p
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mean := float64(sumMw) / float64(n) / 1000
	if n != 1056 || math.Abs(mean-4775.27) > 0.005 {
		t.Errorf("%d samples strictly inside, mean %.4f W; want 1056 and 4775.27 W (MLPerf's figure)", n, mean)
	}
	if w := im.res.Window; w == nil || w.Samples != n || w.MeanW != mean {
		t.Errorf("result window %+v, want %d samples, mean %v", w, n, mean)
	}

	// llem analyze gives the same figure for the phase.
	d, err := analyze.Load(im.dir)
	if err != nil {
		t.Fatal(err)
	}
	s := analyze.DefaultSettings()
	s.Windows = []string{PhaseName}
	rr := analyze.New(d, "mlperf", s).Result
	found := false
	for _, wr := range rr.Windows {
		if wr.Name == PhaseName && wr.Measured {
			found = true
			if got := float64(wr.MeanPowerW); math.Abs(got-4775.27) > 0.005 {
				t.Errorf("llem analyze: mean_power_w %.4f for %s, want 4775.27", got, PhaseName)
			}
		}
	}
	if !found {
		t.Errorf("llem analyze: no measured %s window in %+v", PhaseName, rr.Windows)
	}

	// The description of the device, the notes and what is unknown.
	m := im.meta
	if m.Device != "import:ptdaemon" || m.Source.Format != Format || len(m.Source.Files) != 3 {
		t.Errorf("device %q, source %+v", m.Device, m.Source)
	}
	if g := m.GPUs; len(g) != 1 || g[0].Index != 0 || g[0].Name != "whole-system AC power (SPEC PTDaemon)" ||
		!strings.HasPrefix(g[0].UUID, "ptdaemon-") || g[0].UUID != "ptdaemon-"+m.Source.Files[0].SHA256[:16] {
		t.Errorf("gpus %+v", g)
	}
	notes := m.Source.Notes
	for k, v := range map[string]string{
		"mlperf_tokens_per_s":       "13096.6",
		"mlperf_tokens_per_s_field": "Tokens per second (inferred)",
		"mlperf_samples_per_s":      "189.806",
		"mlperf_scenario":           "Offline",
		"mlperf_result":             "VALID",
		"mlperf_power_begin":        "07-17-2024 07:04:02.134",
		"mlperf_power_end":          "07-17-2024 07:21:38.582",
		"ptdaemon_mark":             "2024-07-16_23-42-03_testing",
		"sample_period":             "1.000 s (median gap between samples)",
	} {
		if notes[k] != v {
			t.Errorf("notes[%q] = %q, want %q", k, notes[k], v)
		}
	}
	if !strings.HasPrefix(notes["channel_sum"], "the 3 channels' Watts sum to the total Watts within ") || notes["alignment"] == "" {
		t.Errorf("notes %v", notes)
	}
	for _, u := range []string{"GPU energy counter", "driver power samples", "per-GPU power", "time zone",
		"total Volts, Amps, PF: not imported (llem's trace has no column for them)"} {
		if !slices.Contains(m.Source.Unknown, u) {
			t.Errorf("unknown %v: want %q", m.Source.Unknown, u)
		}
	}
	if !slices.ContainsFunc(m.Source.Unknown, func(u string) bool {
		return strings.HasPrefix(u, "channels Ch1, Ch2, Ch3 (Watts, Volts, Amps, PF each): not imported")
	}) {
		t.Errorf("unknown %v: want the channels", m.Source.Unknown)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("warnings %+v", m.Warnings)
	}
}

// TestWithoutLoadgen: the log alone gives the samples and says what is missing.
func TestWithoutLoadgen(t *testing.T) {
	im := importFiles(t, realSPL, Options{})
	if len(im.states) != 1158 || len(im.events) != 0 || im.res.Window != nil {
		t.Fatalf("%d rows, %d events", len(im.states), len(im.events))
	}
	if !slices.Contains(im.meta.Source.Unknown, "MLPerf power window (give loadgen's mlperf_log_detail.txt)") {
		t.Errorf("unknown %v", im.meta.Source.Unknown)
	}
}

// TestLoadgenOffset: --loadgen-offset moves the window onto PTDaemon's
// clock; a window outside the log is warned about.
func TestLoadgenOffset(t *testing.T) {
	o := realOptions
	o.LoadgenOffset = -2 * time.Second
	im := importFiles(t, realSPL, o)
	start, end := phase(t, im.events)
	if want := time.Date(2024, 7, 17, 7, 4, 0, 134e6, time.UTC).UnixNano(); start != want || end-start != 1056448*int64(time.Millisecond) {
		t.Errorf("phase %s to %s", time.Unix(0, start).UTC(), time.Unix(0, end).UTC())
	}
	if im.res.Window.Samples != 1056 {
		t.Errorf("%d samples inside", im.res.Window.Samples)
	}
	o.LoadgenOffset = 7 * time.Hour // e.g. the two machines' zones confused
	im = importFiles(t, realSPL, o)
	if warning(im.meta, "import_window_outside_log", "is not inside the PTDaemon log's") == nil ||
		warning(im.meta, "import_window_empty", "no PTDaemon sample lies strictly inside") == nil {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
}

const goodLine = "Time,07-17-2024 07:02:47.866,Watts,2381.800000,Volts,239.206667,Amps,3.441000,PF,0.964608,Mark,m,Ch1,Watts,1190.900000,Volts,239.4,Ch2,Watts,1190.900000,Volts,238.8"

func TestBadLinesSkipped(t *testing.T) {
	spl := writeFile(t, "spl.txt", strings.Join([]string{
		goodLine,
		"Time,07-17-2024 07:02:48.866,Watts,-1.000000,Volts,-1.000000,Amps,-1.000000,PF,-1.000000,Mark,m", // invalid reading
		"Time,07-17-2024 07:02:49.866,Watts,abc,Volts,239.2",                                              // 3
		"Time,yesterday,Watts,2390.1",                                                                     // 4
		"Error,PTDaemon lost the analyzer",                                                                // 5
		"Time,07-17-2024 07:02:50.866,Volts,239.2,Amps,3.4",                                               // 6
		"",
		"Time,07-17-2024 07:02:51.866,Watts,2400.25,Volts",                                // 8
		"Time,07-17-2024 07:02:52.866,Watts,2400.25,Volts,239.0,Amps,3.4,PF,0.96,Mark,m,", // trailing comma
		"Time,07-17-2024 07:02:53.8,Watts,2401.0004",
	}, "\n")+"\n")
	im := importFiles(t, spl, Options{})
	if im.res.DataLines != 9 || im.res.Skipped != 5 || im.res.Invalid != 1 || len(im.states) != 3 {
		t.Fatalf("%d lines, %d skipped, %d invalid, %d rows (%v)", im.res.DataLines, im.res.Skipped, im.res.Invalid, len(im.states), im.res.Reasons)
	}
	want := []string{
		`spl.txt:3: Watts "abc" is not a number`,
		`spl.txt:4: time "yesterday" is not of the form "07-17-2024 07:02:47.866"`,
		`spl.txt:5: not a PTDaemon sample line (it does not start with "Time,")`,
		`spl.txt:6: no Watts field before the first channel`,
		`spl.txt:8: field "Volts" has no value`,
	}
	for i, r := range im.res.Reasons {
		if !strings.Contains(r.Error(), want[i]) {
			t.Errorf("reason %d: %q, want %q", i, r.Error(), want[i])
		}
	}
	if got := []int64{*im.states[0].InstantPowerMw, *im.states[1].InstantPowerMw, *im.states[2].InstantPowerMw}; !slices.Equal(got, []int64{2381800, 2400250, 2401000}) {
		t.Errorf("power %v", got)
	}
	if w := warning(im.meta, "import_skipped_lines", "5 of 9 data lines could not be read"); w == nil || !strings.Contains(w.Message, "spl.txt:3:") {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
	if warning(im.meta, "import_absent_values", "1 of 4 samples are marked invalid") == nil || im.meta.Source.Notes["skipped_lines"] != "5" {
		t.Errorf("warnings %+v, notes %v", im.meta.Warnings, im.meta.Source.Notes)
	}
	if n := im.meta.Source.Notes["channel_sum"]; n != "the 2 channels' Watts sum to the total Watts within 0.000 W on all 1 samples" {
		t.Errorf("channel_sum %q", n)
	}
}

// TestFileErrors: a file llem cannot import is an error naming the file,
// the line and what was expected.
func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, content, want string }{
		{"empty.txt", "", "empty.txt:1: empty file: expected PTDaemon sample lines such as \"Time,"},
		{"blank.txt", "\n\n", "blank.txt:2: empty file"},
		{"csv.txt", "timestamp, power.draw [W]\n2023/12/18 17:01:44.300, 46.19 W\n",
			`csv.txt: none of the 2 lines could be read; the first: csv.txt:1: not a PTDaemon sample line (it does not start with "Time,"): "timestamp, power.draw [W]"`},
	} {
		_, err := ParseSPL(strings.NewReader(tc.content), tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
	for _, tc := range []struct{ file, content, want string }{
		{"detail.txt", "", "detail.txt:1: no :::MLLOG line: not a loadgen detail log"},
		{"detail.txt", ":::MLLOG {\"key\": \"sut_name\", \"value\": \"x\"}\n", "detail.txt: no power_begin or power_end in 1 :::MLLOG lines"},
		{"detail.txt", ":::MLLOG {\"key\": \"power_begin\", \"value\": \"07-17-2024 07:04:02.134\"}\n",
			"detail.txt: power_begin (line 1) but no power_end"},
		{"detail.txt", ":::MLLOG {\"key\": \"power_begin\", \"value\": 12}\n", "detail.txt:1: power_begin value 12 is not a string"},
		{"detail.txt", ":::MLLOG {\"key\": \"power_begin\", \"value\": \"2024-07-17 07:04:02\"}\n",
			`detail.txt:1: power_begin: time "2024-07-17 07:04:02" is not of the form "07-17-2024 07:02:47.866"`},
		{"detail.txt", ":::MLLOG {\"key\": \"power_begin\", \"value\": \"07-17-2024 07:04:02.134\"}\n" +
			":::MLLOG {\"key\": \"power_end\", \"value\": \"07-17-2024 07:04:01.000\"}\n",
			`detail.txt:2: power_end "07-17-2024 07:04:01.000" is not after power_begin "07-17-2024 07:04:02.134" (line 1)`},
		{"detail.txt", ":::MLLOG {\"key\": \"power_begin\", \"value\": \"07-17-2024 07:04:02.134\"}\n" +
			":::MLLOG {\"key\": \"power_begin\", \"value\": \"07-17-2024 07:05:02.134\"}\n",
			"detail.txt:2: a second power_begin (the first is on line 1)"},
	} {
		_, err := ParseLoadgen(strings.NewReader(tc.content), tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadgen %q: err = %v, want %q", tc.content, err, tc.want)
		}
	}
	for _, tc := range []struct{ content, want string }{
		{"", "summary.txt:1: not a loadgen summary"},
		{"Samples per second: 189.806\n", "summary.txt:1: not a loadgen summary"},
		{"MLPerf Results Summary\nSamples per second: fast\n", `summary.txt: "Samples per second" is "fast", not a number`},
	} {
		_, err := ParseSummary(strings.NewReader(tc.content), "summary.txt")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("summary %q: err = %v, want %q", tc.content, err, tc.want)
		}
	}
	// Through the whole import: the path is named.
	bad := writeFile(t, "detail.txt", "no mllog here\n")
	w, err := imports.Create(filepath.Join(t.TempDir(), "run"), Format, Files(realSPL, Options{Loadgen: bad}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportFiles(w, realSPL, Options{Loadgen: bad}); err == nil || !strings.Contains(err.Error(), bad+":1: no :::MLLOG line") {
		t.Errorf("err = %v", err)
	}
}

func TestSummaryServer(t *testing.T) {
	s, err := ParseSummary(strings.NewReader(`================================================
MLPerf Results Summary
================================================
SUT name : llama2-70b-Server-SUT-LoadGen
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 162.66
Completed tokens per second: 47849.04
Result is : INVALID
`), "summary.txt")
	if err != nil {
		t.Fatal(err)
	}
	if s.TokensPerS != "47849.04" || s.TokensKey != "Completed tokens per second" || s.SamplesPerS != "162.66" || s.Fields["Scenario"] != "Server" {
		t.Errorf("%+v", s)
	}
}

// TestReproducible: importing the same files twice gives identical bytes.
func TestReproducible(t *testing.T) {
	var trees []map[string][]byte
	for range 2 {
		im := importFiles(t, realSPL, realOptions)
		trees = append(trees, importtest.Tree(t, im.dir))
	}
	if len(trees[0]) != 3 { // meta.json, device_state and events
		t.Errorf("%d files", len(trees[0]))
	}
	for name, a := range trees[0] {
		if !bytes.Equal(a, trees[1][name]) {
			t.Errorf("%s differs between two imports of the same files", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{realSPL, realSummary} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 1024)])
	}
	b, err := os.ReadFile(realLoadgen)
	if err != nil {
		f.Fatal(err)
	}
	var power []byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.Contains(l, []byte(`"power_`)) {
			power = append(power, l...)
		}
	}
	f.Add(power)
	f.Add([]byte(goodLine + "\nTime,07-17-2024 07:02:48.866,Watts,-1\nTime,x\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSPL(bytes.NewReader(data), "fuzz.txt")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.txt") {
				t.Errorf("error %q does not name the file", err)
			}
		} else if len(s.Samples) == 0 || s.Skipped+len(s.Samples) != s.DataLines || len(s.Reasons) > MaxReasons {
			t.Errorf("%d samples, %d skipped, %d lines, %d reasons", len(s.Samples), s.Skipped, s.DataLines, len(s.Reasons))
		}
		if lg, err := ParseLoadgen(bytes.NewReader(data), "fuzz.txt"); err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.txt") {
				t.Errorf("error %q does not name the file", err)
			}
		} else if lg.EndNs <= lg.BeginNs || lg.BeginLine == 0 || lg.EndLine == 0 {
			t.Errorf("loadgen %+v", lg)
		}
		if _, err := ParseSummary(bytes.NewReader(data), "fuzz.txt"); err != nil && !strings.HasPrefix(err.Error(), "fuzz.txt") {
			t.Errorf("error %q does not name the file", err)
		}
	})
}
