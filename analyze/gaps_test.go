package analyze_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

// windowNamed returns the result of the window named name.
func windowNamed(t *testing.T, rr analyze.RunResult, name string) analyze.WindowResult {
	t.Helper()
	for _, w := range rr.Windows {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no window %q", name)
	return analyze.WindowResult{}
}

func hasWarning(ws []analyze.Warning, code string) bool {
	for _, w := range ws {
		if w.Code == code {
			return true
		}
	}
	return false
}

// A hole of 10 s in the driver power is not integrated across: the window
// over it has no integrated energy and says why, and its energy comes from
// the counter, read on both sides, within its uncertainty of the truth.
func TestNoIntegrationAcrossSampleGap(t *testing.T) {
	d := thermalRun(80, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 5)
	g := d.GPUs[0]
	var dp analyze.Series
	all := g.DriverPower.All()
	for i, ts := range all.T {
		if s := float64(ts-d.Origin) / 1e9; s < 30 || s > 40 {
			dp.T, dp.V = append(dp.T, ts), append(dp.V, all.V[i])
		}
	}
	g.DriverPower = analyze.SamplesOf(dp)
	s := analyze.DefaultSettings()
	s.Windows = []string{"20..50", "50..70"}
	rr := analyze.New(d, "gap", s).Result
	across, after := windowNamed(t, rr, "20..50"), windowNamed(t, rr, "50..70")
	if across.EnergyIntegratedJ.Valid() || !hasWarning(across.Warnings, "gap_in_window") {
		t.Errorf("across the gap: integrated %v, warnings %v; want null and gap_in_window", across.EnergyIntegratedJ, across.Warnings)
	}
	if e := float64(across.EnergyJ); math.Abs(e-9000) > 9000*float64(across.UncertaintyPct)/100 {
		t.Errorf("across the gap: counter energy %.1f J, want 9000 within %.2f%%", e, float64(across.UncertaintyPct))
	}
	if !after.EnergyIntegratedJ.Valid() || hasWarning(after.Warnings, "gap_in_window") {
		t.Errorf("after the gap: integrated %v, warnings %v", after.EnergyIntegratedJ, after.Warnings)
	}
}

// An import's gap (meta.json gaps) is warned about at the run and keeps
// integration out of the windows it touches.
func TestImportGapKeepsIntegrationOut(t *testing.T) {
	d := thermalRun(60, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 6)
	d.Run.Meta.Gaps = []trace.Gap{{StartNs: d.Origin + 25e9, EndNs: d.Origin + 26e9, Code: "import_gap", Message: "the log stops for 1 s"}}
	s := analyze.DefaultSettings()
	s.Windows = []string{"20..30", "40..50"}
	rr := analyze.New(d, "gap", s).Result
	if !hasWarning(rr.Warnings, "import_gap") {
		t.Errorf("run warnings %v lack import_gap", rr.Warnings)
	}
	if w := windowNamed(t, rr, "20..30"); w.EnergyIntegratedJ.Valid() {
		t.Errorf("20..30 integrates across the import's gap: %v", w.EnergyIntegratedJ)
	}
	if w := windowNamed(t, rr, "40..50"); !w.EnergyIntegratedJ.Valid() {
		t.Errorf("40..50 lost its integrated energy: %v", w.Warnings)
	}
}

// A damaged driver_power segment of a real run: analysed, not refused; the
// damage is a warning, and the cycle whose samples it held has no
// integrated energy.
func TestDamagedSegmentInAnalysis(t *testing.T) {
	dir := copyRun(t, "../testdata/runs/h100-bs8-cycles")
	seg := filepath.Join(dir, "driver_power", "part-000010.parquet")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 3; i < len(b)/3+64; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rr := analyzeOne(t, dir, analyze.DefaultSettings())
	var damaged string
	for _, w := range rr.Warnings {
		if strings.HasPrefix(w.Code, "damaged_") {
			damaged = w.Message
		}
	}
	if !strings.Contains(damaged, "part-000010") {
		t.Fatalf("no damaged_* warning naming the segment: %v", rr.Warnings)
	}
	gaps := 0
	for _, w := range rr.Windows {
		if hasWarning(w.Warnings, "gap_in_window") {
			gaps++
			if w.EnergyIntegratedJ.Valid() {
				t.Errorf("%s: integrated %v across the lost segment", w.Name, w.EnergyIntegratedJ)
			}
		}
	}
	if gaps == 0 {
		t.Error("no window says it spans the lost segment")
	}
}

// A killed recorder: the last cycle and its measure phase never ended, the
// driver buffer was last drained 0.4 s and the counter last read 6 s before
// the last state row. The open windows are cut where the power samples
// end, and have an energy (issue 17: not "nothing covers this window").
func TestKilledRunOpenWindowsHaveEnergy(t *testing.T) {
	d, err := analyze.Load("../testdata/runs/h100-bs8-cycles")
	if err != nil {
		t.Fatal(err)
	}
	// Cycle 5's measure phase: kill the run 4 s into it.
	var kill int64
	for _, e := range d.Events {
		if e.Kind == "phase_start" && e.Name == "measure" {
			kill = e.TimestampNs + 4e9
		}
	}
	var evs []trace.Event
	for _, e := range d.Events {
		if e.TimestampNs <= kill {
			evs = append(evs, e)
		}
	}
	d.Events = evs
	g := d.GPUs[0]
	cut := func(s *analyze.Samples, end int64) {
		*s = analyze.SamplesOf(s.Range(0, s.IndexAfter(end)))
	}
	cut(&g.DriverPower, kill-400e6)
	cut(&g.InstantPower, kill)
	cut(&g.AveragePower, kill)
	cut(&g.Temperature, kill)
	var reads []trace.EnergyRead
	for _, r := range g.Energy {
		if r.TimestampNs <= kill-6e9 {
			reads = append(reads, r)
		}
	}
	g.Energy = reads
	d.End = kill
	rr := analyze.New(d, "killed", analyze.DefaultSettings()).Result
	found := false
	for _, w := range rr.Windows {
		if w.Name != "measure" || w.Cycle != 5 {
			continue
		}
		found = true
		if !w.EnergyIntegratedJ.Valid() || hasWarning(w.Warnings, "no_energy") {
			t.Errorf("open measure window: integrated %v, warnings %v", w.EnergyIntegratedJ, w.Warnings)
		}
		if !hasWarning(w.Warnings, "open_window") {
			t.Errorf("open measure window not warned as open: %v", w.Warnings)
		}
		if got, want := w.EndNs, kill-400e6; got > want {
			t.Errorf("open window ends at %d, after the last driver sample %d", got, want)
		}
	}
	if !found {
		t.Fatal("no measure window of cycle 5")
	}
}

// How the run went, when it changes what its numbers mean, is a warning:
// a lost GPU, a failed cycle, a replay faster than real time.
func TestRunFactsAreWarned(t *testing.T) {
	d := thermalRun(30, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 7)
	m := d.Run.Meta
	m.GPUs = []trace.GPUInfo{{Index: 0, Lost: true, LostNs: d.Origin + 20e9}}
	m.Command = &trace.CommandInfo{Cycles: []trace.CycleInfo{{Cycle: 1, ExitCode: 0}, {Cycle: 2, ExitCode: 3}}}
	m.Settings.ReplaySpeed = 20
	rr := analyze.New(d, "facts", analyze.DefaultSettings()).Result
	for code, want := range map[string]string{"gpu_lost": "at 20.0 s", "command_failed": "status 3 in cycle 2", "replay_speed": "20x"} {
		found := false
		for _, w := range rr.Warnings {
			found = found || w.Code == code && strings.Contains(w.Message, want)
		}
		if !found {
			t.Errorf("no %s warning saying %q: %v", code, want, rr.Warnings)
		}
	}
}

// A handful of resamples is said to give rough intervals.
func TestFewResamplesWarned(t *testing.T) {
	d := thermalRun(30, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 8)
	s := analyze.DefaultSettings()
	s.Resamples = 2
	if rr := analyze.New(d, "few", s).Result; !hasWarning(rr.Warnings, "few_resamples") {
		t.Errorf("2 resamples: no few_resamples warning: %v", rr.Warnings)
	}
	if rr := analyze.New(d, "default", analyze.DefaultSettings()).Result; hasWarning(rr.Warnings, "few_resamples") {
		t.Error("2,000 resamples warned as few")
	}
}

// The recorder's driver_power_gap event (the buffer overflowed before a
// drain) is a gap: warned, and not integrated across.
func TestDriverBufferGapEvent(t *testing.T) {
	d := thermalRun(60, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 9)
	last, next := (d.Origin+30e9)/1000, (d.Origin+30_300e6)/1000
	d.Events = append(d.Events, trace.Event{TimestampNs: d.Origin + 31e9, Kind: "driver_power_gap", Source: "recorder",
		Attrs: fmt.Sprintf(`{"last_us":%d,"next_us":%d,"returned":119}`, last, next)})
	s := analyze.DefaultSettings()
	s.Windows = []string{"20..40", "40..55"}
	rr := analyze.New(d, "overflow", s).Result
	if !hasWarning(rr.Warnings, "driver_power_gap") {
		t.Errorf("no driver_power_gap warning: %v", rr.Warnings)
	}
	if w := windowNamed(t, rr, "20..40"); w.EnergyIntegratedJ.Valid() || !w.EnergyJ.Valid() {
		t.Errorf("20..40: integrated %v (want null), counter %v (want a value)", w.EnergyIntegratedJ, w.EnergyJ)
	}
	if w := windowNamed(t, rr, "40..55"); !w.EnergyIntegratedJ.Valid() {
		t.Errorf("40..55 lost its integrated energy: %v", w.Warnings)
	}
}

// A finished recorder writes the overflow twice, as an event and as a
// meta.json gap: it is one gap, warned once.
func TestDriverGapInEventAndMetaWarnsOnce(t *testing.T) {
	d := thermalRun(60, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 9)
	last, next := (d.Origin+30e9)/1000, (d.Origin+30_300e6)/1000
	d.Events = append(d.Events, trace.Event{TimestampNs: d.Origin + 31e9, Kind: "driver_power_gap", Source: "recorder",
		Attrs: fmt.Sprintf(`{"last_us":%d,"next_us":%d,"returned":119}`, last, next)})
	gpu := 0
	d.Run.Meta.Gaps = []trace.Gap{{Table: trace.TableDriverPower, GPU: &gpu, StartNs: last * 1000, EndNs: next * 1000,
		Code: "driver_power_gap", Message: "the driver's power-sample buffer overflowed"}}
	n := 0
	for _, w := range analyze.New(d, "overflow", analyze.DefaultSettings()).Result.Warnings {
		if w.Code == "driver_power_gap" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d driver_power_gap warnings, want 1", n)
	}
}

// A window that opens before the first counter read (which of the
// recorder's loops fired first is chance) still has a counter energy, its
// sliver from the power samples, within its stated uncertainty.
func TestWindowBeforeFirstCounterRead(t *testing.T) {
	d := thermalRun(40, func(float64) float64 { return 300 }, func(float64) float64 { return 40 }, nil, 10)
	g := d.GPUs[0]
	g.Energy = g.Energy[1:] // the first read now comes 1 s after the first sample: drop to 0.6 s
	g.Energy[0].TimestampNs -= 400e6
	g.Energy[0].EnergyMj -= 120_000 // 0.4 s at 300 W
	s := analyze.DefaultSettings()
	s.Windows = []string{"0..20"}
	w := windowNamed(t, analyze.New(d, "first", s).Result, "0..20")
	truth := 0.0
	all := g.DriverPower.All()
	for i, ts := range all.T {
		if ts >= d.Origin && ts < d.Origin+20e9 {
			truth += all.V[i] * 0.02
		}
	}
	if !w.EnergyJ.Valid() {
		t.Fatalf("no counter energy: %v", w.Warnings)
	}
	if err := math.Abs(float64(w.EnergyJ)-truth) / truth * 100; err > float64(w.UncertaintyPct) {
		t.Errorf("energy %.1f J, truth %.1f J: %.2f%% off, stated %.2f%%", float64(w.EnergyJ), truth, err, float64(w.UncertaintyPct))
	}
}
