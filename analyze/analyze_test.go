package analyze_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

const realRun = "../testdata/runs/h100-bs8-cycles"

func analyzeOne(t *testing.T, dir string, s analyze.Settings) analyze.RunResult {
	t.Helper()
	res, err := analyze.Analyze([]string{dir}, s, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Runs[0]
}

// The shipped H100 run (5 cycles of warm-up, measure and p0_hold phases)
// gives plausible, self-consistent numbers: the checks are physical and
// arithmetic, not copies of the output.
func TestRealH100Run(t *testing.T) {
	rr := analyzeOne(t, realRun, analyze.DefaultSettings())
	if !rr.Complete || len(rr.GPUs) != 1 || !strings.Contains(rr.GPUs[0].Name, "H100") {
		t.Fatalf("run: %+v", rr.GPUs)
	}
	var measured []analyze.WindowResult
	var run analyze.WindowResult
	for _, w := range rr.Windows {
		if w.Kind == analyze.KindRun {
			run = w
		}
		if w.Measured {
			measured = append(measured, w)
		}
	}
	if len(measured) != 5 {
		t.Fatalf("%d measured windows, want the 5 measure phases", len(measured))
	}
	for _, w := range measured {
		if w.Name != "measure" || w.Cycle < 1 || w.Cycle > 5 {
			t.Errorf("measured window %q cycle %d", w.Name, w.Cycle)
		}
		// Counter and integrated driver power are independent: they agree.
		if !w.DisagreementPct.Valid() || math.Abs(float64(w.DisagreementPct)) > 3 {
			t.Errorf("cycle %d: counter %v J vs integrated %v J", w.Cycle, w.EnergyJ, w.EnergyIntegratedJ)
		}
		// Energy per token is energy over tokens, tokens/s tokens over time.
		if got := float64(w.EnergyJ / w.OutputTokens); math.Abs(got-float64(w.EnergyPerOutputTokenJ)) > 1e-12 {
			t.Errorf("energy per token %v, energy/tokens %v", w.EnergyPerOutputTokenJ, got)
		}
		// Batches of 8 requests of 128 tokens: whole batches end inside.
		if w.Requests%8 != 0 || w.Requests == 0 {
			t.Errorf("cycle %d: %d requests ended, want a multiple of 8", w.Cycle, w.Requests)
		}
		if p := float64(w.MeanPowerW); p < 100 || p > 700 {
			t.Errorf("cycle %d: mean power %v W", w.Cycle, p)
		}
		if !(w.P5PowerW <= w.MeanPowerW*1.05 && w.MeanPowerW <= w.P95PowerW*1.05 && w.P95PowerW <= w.MaxPowerW) {
			t.Errorf("cycle %d: p5 %v mean %v p95 %v max %v", w.Cycle, w.P5PowerW, w.MeanPowerW, w.P95PowerW, w.MaxPowerW)
		}
		wantSpec := 5 / float64(w.MeanPowerW) * 100
		if math.Abs(float64(w.SpecUncertaintyPct)-wantSpec) > 1e-9 || w.UncertaintyPct < w.SpecUncertaintyPct {
			t.Errorf("uncertainty %v (spec %v, want %v)", w.UncertaintyPct, w.SpecUncertaintyPct, wantSpec)
		}
	}
	// The run window's counter energy is the counter's total (llem info
	// reports 15230.4 J over the reads).
	if math.Abs(float64(run.EnergyJ)-15230.4) > 0.5 {
		t.Errorf("run energy %v J, want the counter total 15230.4 J", run.EnergyJ)
	}
	// 5 cycles: CIs over cycles, containing the mean of the cycles.
	c := rr.Cycles
	if c == nil || c.N != 5 || c.EnergyPerOutputTokenJ == nil || c.EnergyJ == nil {
		t.Fatalf("cycles: %+v", c)
	}
	if iv := c.EnergyPerOutputTokenJ; !(iv.Low <= iv.Estimate && iv.Estimate <= iv.High) || iv.Method != "bca" || iv.N != 5 {
		t.Errorf("energy per token CI %+v", iv)
	}
	// Baselines: the GPU idles near 70-80 W and holds ~120 W with the
	// model resident (docs/results.md); P0 above idle.
	if b := rr.Baseline.Idle; b == nil || b.MedianW.Estimate < 50 || b.MedianW.Estimate > 100 {
		t.Errorf("idle baseline %+v", b)
	}
	if b := rr.Baseline.P0; b == nil || b.MedianW.Estimate < rr.Baseline.Idle.MedianW.Estimate || b.MedianW.Estimate > 200 {
		t.Errorf("P0 baseline %+v", b)
	}
	// H100 sensors (gpu-notes): instant power updates every ~100 ms, the
	// driver buffer every 20 ms.
	if p := float64(rr.Sensor.InstantPowerUpdatePeriodMs); math.Abs(p-100) > 10 {
		t.Errorf("instant power update period %v ms", p)
	}
	if p := float64(rr.Sensor.DriverPowerUpdatePeriodMs); math.Abs(p-20) > 2 {
		t.Errorf("driver power update period %v ms", p)
	}
	if rr.Latency == nil || rr.Latency.TTFT == nil || rr.Latency.ITL == nil || rr.Latency.E2E == nil {
		t.Fatalf("latency: %+v", rr.Latency)
	}
	if l := rr.Latency; !(l.TTFT.Mean.Estimate > 0 && l.ITL.Mean.Estimate > 0 && l.E2E.Mean.Estimate > l.TTFT.Mean.Estimate) {
		t.Errorf("latency means: TTFT %v ITL %v E2E %v", l.TTFT.Mean.Estimate, l.ITL.Mean.Estimate, l.E2E.Mean.Estimate)
	}
	// Short measure phases (6 s) are flagged, and so is the missing
	// thermal conditioning (a fast warm-up).
	codes := map[string]bool{}
	for _, w := range rr.Warnings {
		codes[w.Code] = true
	}
	for _, want := range []string{"short_window", "thermal"} {
		if !codes[want] {
			t.Errorf("no %q warning in %v", want, codes)
		}
	}
}

// Same inputs and seed: the same bytes, whatever the parallelism.
func TestByteIdenticalOutput(t *testing.T) {
	run := func(procs int) []byte {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		res, err := analyze.Analyze([]string{realRun}, analyze.DefaultSettings(), "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := run(1), run(4)
	if !bytes.Equal(a, b) {
		t.Fatal("two analyses of the same run differ")
	}
	s := analyze.DefaultSettings()
	s.Seed = 1
	res, _ := analyze.Analyze([]string{realRun}, s, "test", nil)
	c, _ := json.Marshal(res)
	if bytes.Equal(a, c) {
		t.Fatal("another seed gave the same output: the seed is not used")
	}
}

// A run whose recorder was killed (meta.json says recording, a segment
// half-written) is analysed with a warning, not refused.
func TestIncompleteRun(t *testing.T) {
	dir := copyRun(t, realRun)
	m, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Complete, m.Status = false, trace.StatusRecording
	if err := trace.WriteMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, trace.TableDriverPower, "part-999999.parquet.tmp"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	rr := analyzeOne(t, dir, analyze.DefaultSettings())
	codes := map[string]bool{}
	for _, w := range rr.Warnings {
		codes[w.Code] = true
	}
	if rr.Complete || !codes["incomplete_run"] || !codes["partial_segments"] {
		t.Errorf("complete %v, warnings %v", rr.Complete, codes)
	}
	if len(rr.Windows) < 2 || !rr.Windows[0].EnergyJ.Valid() {
		t.Error("the incomplete run was not analysed")
	}
}

func TestUserWindows(t *testing.T) {
	s := analyze.DefaultSettings()
	s.Windows = []string{"10..40", "p0_hold", "nosuchphase"}
	rr := analyzeOne(t, realRun, s)
	var user []analyze.WindowResult
	for _, w := range rr.Windows {
		if w.Kind == analyze.KindUser {
			user = append(user, w)
			if !w.Measured {
				t.Errorf("user window %s not measured", w.Name)
			}
		} else if w.Measured && w.Kind != analyze.KindSteady && w.Kind != analyze.KindSteadyEvents {
			t.Errorf("window %s measured although --window was given", w.Name)
		}
	}
	if len(user) != 6 || user[0].Name != "10..40" || user[0].StartS != 10 || user[0].DurationS != 30 {
		t.Fatalf("user windows: %d, first %+v", len(user), user[0])
	}
	found := false
	for _, w := range rr.Warnings {
		found = found || (w.Code == "window_not_found" && strings.Contains(w.Message, "nosuchphase"))
	}
	if !found {
		t.Error("no warning for a missing phase")
	}
	for _, bad := range []string{"", "5..2", "a..b", "-1..3", "1..inf"} {
		s := analyze.DefaultSettings()
		s.Windows = []string{bad}
		if _, err := analyze.Analyze([]string{realRun}, s, "test", nil); err == nil {
			t.Errorf("--window %q accepted", bad)
		}
	}
}

func TestSettingsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "s.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, err := analyze.ReadSettings(write(`{"resamples": 500, "steady": "mser5"}`))
	if err != nil || s.Resamples != 500 || s.Steady != "mser5" || s.Confidence != 0.95 {
		t.Fatalf("settings %+v, %v", s, err)
	}
	if s.Hash() == analyze.DefaultSettings().Hash() {
		t.Error("different settings, same hash")
	}
	for body, want := range map[string]string{
		`{"resampels": 5}`:      "resampels",
		`{"confidence": 1.5}`:   "confidence",
		`{"steady": "magic"}`:   "steady",
		`{"resamples": "ten"}`:  "resamples",
		`{} {}`:                 "more than one",
		"{\n  \"seed\": 1,,\n}": "line 2, column 14",
	} {
		if _, err := analyze.ReadSettings(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %q", body, err, want)
		}
	}
	// Overrides go through the same decoding and validation, by key.
	s, err = analyze.ReadSettings("", analyze.Overrides{"windows": []string{"measure"}, "steady": "mser5"}, analyze.Overrides{"seed": 9})
	if err != nil || s.Steady != analyze.SteadyMSER5 || s.Seed != 9 || len(s.Windows) != 1 {
		t.Fatalf("overrides: %+v, %v", s, err)
	}
	for _, o := range []analyze.Overrides{{"resamples": 0}, {"resamples": "many"}, {"windows": []string{"9..3"}}, {"nope": 1}} {
		_, err := analyze.ReadSettings("", o)
		var se *analyze.SettingError
		if !errors.As(err, &se) {
			t.Errorf("%v: error %v, want a *SettingError", o, err)
			continue
		}
		for k := range o {
			if se.Key != k {
				t.Errorf("%v: error names %q, want %q", o, se.Key, k)
			}
		}
	}
}

func copyRun(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "run")
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
