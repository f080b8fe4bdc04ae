package main

import (
	"bytes"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

// testConfig is the default run, shortened to 2 GPUs and 10 minutes (the
// phase lengths stay: each cycle has 60 s of warm-up, ~2 s of measure and
// 10 s of p0_hold), with a segment per 2 simulated minutes rather than per
// 5 s: under -race each segment costs ~20 ms (the race runtime defeats the
// writer's zstd encoder pool), and 480 of them took 9 s.
func testConfig(dir string, seed int64) Config {
	return Config{Out: dir, GPUs: 2, Duration: 10 * time.Minute, Seed: seed, RotateInterval: 2 * time.Minute}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func generate(t *testing.T, c Config) (*trace.Run, Stats) {
	t.Helper()
	st, err := Generate(c, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	run, err := trace.Open(c.Out)
	if err != nil {
		t.Fatal(err)
	}
	return run, st
}

func readTable[T any](t *testing.T, run *trace.Run, table string) []T {
	t.Helper()
	rows, err := trace.ReadTable[T](run, table)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// strictlyIncreasing checks that a table's timestamps, read segment after
// segment, increase strictly for each GPU.
func strictlyIncreasing[T any](t *testing.T, table string, rows []T, key func(T) (int32, int64)) {
	t.Helper()
	last := map[int32]int64{}
	for i, r := range rows {
		g, ts := key(r)
		if prev, ok := last[g]; ok && ts <= prev {
			t.Fatalf("%s row %d: GPU %d timestamp %d after %d", table, i, g, ts, prev)
		}
		last[g] = ts
	}
}

func perGPU[T any](rows []T, gpu func(T) int32) map[int32]int {
	n := map[int32]int{}
	for _, r := range rows {
		n[gpu(r)]++
	}
	return n
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	c := testConfig(filepath.Join(t.TempDir(), "run"), 7)
	run, st := generate(t, c)
	m := run.Meta
	full := c.withDefaults()
	D := c.Duration

	// meta.json
	if !m.Complete || m.Status != trace.StatusComplete || m.Device != "import:synth" || m.SchemaVersion != trace.SchemaVersion {
		t.Errorf("meta: complete %v, status %q, device %q, schema %q", m.Complete, m.Status, m.Device, m.SchemaVersion)
	}
	if len(m.GPUs) != 2 || m.GPUs[1].Index != 1 || m.GPUs[0].Name != "Synthetic H100" || m.GPUs[0].UUID == m.GPUs[1].UUID ||
		!strings.HasPrefix(m.GPUs[0].UUID, "GPU-") {
		t.Errorf("meta gpus: %+v", m.GPUs)
	}
	raw, err := os.ReadFile(filepath.Join(c.Out, trace.MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"processes": []`) {
		t.Error(`meta.json: gpus[].processes is not an empty list`)
	}
	if m.Command == nil || !slices.Equal(m.Command.Argv, []string{"synth"}) || len(m.Command.Cycles) != 5 {
		t.Fatalf("meta command: %+v", m.Command)
	}
	s := m.Settings
	if s.EnergyIntervalMs != 1000 || s.StateIntervalMs != 100 || s.RotateIntervalMs != ms(int64(full.RotateInterval)) || s.Cycles != 5 ||
		s.IdleBeforeMs != 60000 || s.CooldownMs != 30000 || !slices.Equal(s.GPUs, []int{0, 1}) || s.Seed == nil || *s.Seed != 7 {
		t.Errorf("meta settings: %+v", s)
	}
	tr := m.SimTruth
	if tr == nil || tr.StartNs != m.Clock.WallStartNs || tr.EndNs != m.Clock.WallStartNs+int64(D) || len(tr.PerGPUEnergyJ) != 2 {
		t.Fatalf("sim_truth: %+v", tr)
	}
	if math.Abs(tr.EnergyJ-(tr.PerGPUEnergyJ[0]+tr.PerGPUEnergyJ[1])) > 1e-6 || tr.SteadyMeanPowerW < 2*560 || tr.SteadyMeanPowerW > 2*640 {
		t.Errorf("sim_truth: %+v", tr)
	}

	dp := readTable[trace.DriverPowerSample](t, run, trace.TableDriverPower)
	en := readTable[trace.EnergyRead](t, run, trace.TableEnergy)
	sr := readTable[trace.DeviceState](t, run, trace.TableState)
	ev := readTable[trace.Event](t, run, trace.TableEvents)
	for table, n := range map[string]int{trace.TableDriverPower: len(dp), trace.TableEnergy: len(en),
		trace.TableState: len(sr), trace.TableEvents: len(ev)} {
		if int64(n) != st.Rows[table] || int64(n) != m.Recorder.Rows[table] {
			t.Errorf("%s: read %d rows, Stats says %d, meta %d", table, n, st.Rows[table], m.Recorder.Rows[table])
		}
	}
	// A segment per rotation interval (events: only those with events).
	if want := int(D / full.RotateInterval); st.Segments[trace.TableDriverPower] != want || len(run.Segments[trace.TableState]) != want {
		t.Errorf("segments: %v, want %d for driver_power and device_state", st.Segments, want)
	}

	// Row counts follow the rates.
	boundaries := 2 * (1 + full.Cycles + (full.Cycles - 1) + 1) // a counter read before each recorder phase or cycle event
	for g := range int32(2) {
		if n := perGPU(dp, func(r trace.DriverPowerSample) int32 { return r.GPU })[g]; abs(n-int(D/(20*time.Millisecond))) > 1 {
			t.Errorf("GPU %d: %d driver samples, want %d +- 1 (50 Hz)", g, n, D/(20*time.Millisecond))
		}
		if n := perGPU(sr, func(r trace.DeviceState) int32 { return r.GPU })[g]; n != int(D/(100*time.Millisecond))+1 {
			t.Errorf("GPU %d: %d state rows, want %d (10 Hz and a final poll)", g, n, D/(100*time.Millisecond)+1)
		}
		if n := perGPU(en, func(r trace.EnergyRead) int32 { return r.GPU })[g]; n != int(D/time.Second)+1+boundaries {
			t.Errorf("GPU %d: %d counter reads, want %d (1 Hz, %d boundaries, a final read)", g, n, int(D/time.Second)+1+boundaries, boundaries)
		}
	}

	strictlyIncreasing(t, "driver_power", dp, func(r trace.DriverPowerSample) (int32, int64) { return r.GPU, r.TimestampNs })
	strictlyIncreasing(t, "energy", en, func(r trace.EnergyRead) (int32, int64) { return r.GPU, r.TimestampNs })
	strictlyIncreasing(t, "device_state", sr, func(r trace.DeviceState) (int32, int64) { return r.GPU, r.TimestampNs })
	strictlyIncreasing(t, "events", ev, func(r trace.Event) (int32, int64) { return r.GPU, r.TimestampNs })
	start, end := m.Clock.WallStartNs, m.Clock.WallEndNs
	for _, r := range dp {
		if r.TimestampNs <= start || r.TimestampNs >= end || r.TimestampNs%1000 != 0 {
			t.Fatalf("driver sample at %d outside (%d, %d) or not on a microsecond", r.TimestampNs, start, end)
		}
	}

	// The counter holds the truth: first to last read within 0.1%.
	first, last := map[int32]trace.EnergyRead{}, map[int32]trace.EnergyRead{}
	for _, r := range en {
		if _, ok := first[r.GPU]; !ok {
			first[r.GPU] = r
		}
		last[r.GPU] = r
		if r.ReadDurationNs < 2_500_000 || r.ReadDurationNs > 3_500_000 {
			t.Fatalf("read duration %d ns, want ~3 ms", r.ReadDurationNs)
		}
	}
	var sumJ float64
	for g := range int32(2) {
		j := float64(last[g].EnergyMj-first[g].EnergyMj) / 1000
		sumJ += j
		if want := tr.PerGPUEnergyJ[g]; math.Abs(j-want)/want > 0.001 {
			t.Errorf("GPU %d: counter %.1f J, truth %.1f J", g, j, want)
		}
	}
	if math.Abs(sumJ-tr.EnergyJ)/tr.EnergyJ > 0.001 {
		t.Errorf("counters %.1f J, truth %.1f J", sumJ, tr.EnergyJ)
	}

	checkEvents(t, ev, m)
	checkPower(t, dp, sr, ev)
}

// phaseWindows returns each named phase's [start, end) windows.
func phaseWindows(ev []trace.Event) map[string][][2]int64 {
	open := map[string]int64{}
	w := map[string][][2]int64{}
	for _, e := range ev {
		switch e.Kind {
		case "phase_start":
			open[e.Name] = e.TimestampNs
		case "phase_end":
			w[e.Name] = append(w[e.Name], [2]int64{open[e.Name], e.TimestampNs})
		}
	}
	return w
}

func inAny(ws [][2]int64, t int64) bool {
	for _, w := range ws {
		if t >= w[0] && t < w[1] {
			return true
		}
	}
	return false
}

func checkEvents(t *testing.T, ev []trace.Event, m *trace.Meta) {
	t.Helper()
	kinds := map[string]int{}
	names := map[string]int{}
	for _, e := range ev {
		kinds[e.Kind]++
		if e.Kind == "phase_start" {
			names[e.Name]++
		}
		if e.GPU != trace.GPUAll {
			t.Fatalf("event %+v: gpu %d, want -1", e, e.GPU)
		}
		client := e.Source == "client"
		if !client && e.Source != "recorder" {
			t.Fatalf("event %+v: source %q", e, e.Source)
		}
		if client != (e.ClientTimestampNs != nil) {
			t.Fatalf("event %+v: client stamp %v", e, e.ClientTimestampNs)
		}
		if client && (*e.ClientTimestampNs >= e.TimestampNs || e.TimestampNs-*e.ClientTimestampNs > int64(time.Millisecond)) {
			t.Fatalf("event %+v: client stamp %d not just before %d", e, *e.ClientTimestampNs, e.TimestampNs)
		}
		recorderKind := e.Kind == "recording_start" || e.Kind == "cycle_start" || e.Kind == "cycle_end" ||
			(e.Kind == "phase_start" || e.Kind == "phase_end") && (e.Name == "idle_before" || e.Name == "idle_after" || e.Name == "cooldown")
		if recorderKind == client {
			t.Fatalf("event %+v: wrong source", e)
		}
	}
	want := map[string]int{"recording_start": 1, "cycle_start": 5, "cycle_end": 5, "phase_start": 21, "phase_end": 21}
	for _, k := range []string{"request_start", "first_token", "token", "request_end"} {
		want[k] = kinds[k]
	}
	if !maps.Equal(kinds, want) || kinds["request_start"] == 0 || kinds["request_start"] != kinds["request_end"] ||
		kinds["first_token"] != kinds["request_start"] || kinds["token"] < 10*kinds["request_start"] {
		t.Errorf("event kinds: %v", kinds)
	}
	if !maps.Equal(names, map[string]int{"idle_before": 1, "cooldown": 4, "idle_after": 1, "warmup": 5, "measure": 5, "p0_hold": 5}) {
		t.Errorf("phases: %v", names)
	}
	if ev[0].Kind != "recording_start" || ev[len(ev)-1].Kind != "phase_end" || ev[len(ev)-1].Name != "idle_after" {
		t.Errorf("first event %+v, last %+v", ev[0], ev[len(ev)-1])
	}
	if int64(kinds["recording_start"]+kinds["cycle_start"]+kinds["cycle_end"]+2*6)+m.Events.Accepted != int64(len(ev)) ||
		m.Events.Received != m.Events.Accepted {
		t.Errorf("meta events %+v for %d events", m.Events, len(ev))
	}
	cyc := 0
	for _, e := range ev {
		if e.Kind == "cycle_start" {
			cyc++
			if e.Cycle == nil || int(*e.Cycle) != cyc || m.Command.Cycles[cyc-1].StartNs != e.TimestampNs {
				t.Errorf("cycle_start %d: %+v", cyc, e)
			}
		}
		if e.Kind == "cycle_end" && (e.Cycle == nil || int(*e.Cycle) != cyc || e.Attrs != `{"exit_code":0}` ||
			m.Command.Cycles[cyc-1].EndNs != e.TimestampNs) {
			t.Errorf("cycle_end %d: %+v", cyc, e)
		}
	}

	// Requests: start, first token, tokens of 1, end with the streamed count;
	// all inside measure; at most 32 at once.
	measure := phaseWindows(ev)["measure"]
	type req struct {
		start, first, end int64
		tokens            int64
	}
	reqs := map[string]*req{}
	inFlight, peak := 0, 0
	var ttft, gaps time.Duration
	var nGaps int
	lastTok := map[string]int64{}
	for _, e := range ev {
		if e.RequestID == "" {
			continue
		}
		if !inAny(measure, e.TimestampNs) {
			t.Fatalf("request event outside measure: %+v", e)
		}
		r := reqs[e.RequestID]
		switch e.Kind {
		case "request_start":
			if r != nil {
				t.Fatalf("request %s started twice", e.RequestID)
			}
			reqs[e.RequestID] = &req{start: e.TimestampNs}
			inFlight++
			peak = max(peak, inFlight)
		case "first_token":
			r.first = e.TimestampNs
			ttft += time.Duration(r.first - r.start)
			lastTok[e.RequestID] = e.TimestampNs
		case "token":
			if r.first == 0 || e.Count == nil || *e.Count != 1 {
				t.Fatalf("token event %+v before first_token or not of count 1", e)
			}
			r.tokens++
			gaps += time.Duration(e.TimestampNs - lastTok[e.RequestID])
			nGaps++
			lastTok[e.RequestID] = e.TimestampNs
		case "request_end":
			r.end = e.TimestampNs
			inFlight--
			if e.InputTokens == nil || *e.InputTokens != 512 || e.OutputTokens == nil || *e.OutputTokens != 1+r.tokens {
				t.Fatalf("request_end %+v: want 512 in, %d out", e, 1+r.tokens)
			}
		}
	}
	for id, r := range reqs {
		if r.first == 0 || r.end == 0 {
			t.Fatalf("request %s: %+v", id, r)
		}
	}
	if peak != 32 || inFlight != 0 {
		t.Errorf("peak concurrency %d (want 32), %d left in flight", peak, inFlight)
	}
	if mt := ttft / time.Duration(len(reqs)); mt < 45*time.Millisecond || mt > 55*time.Millisecond {
		t.Errorf("mean time to first token %v, want ~50ms", mt)
	}
	if mg := gaps / time.Duration(nGaps); mg < 24*time.Millisecond || mg > 26*time.Millisecond {
		t.Errorf("mean token gap %v, want ~25ms", mg)
	}
}

// settled drops the first 1.2 s of each window: the 1 s average power
// still holds the phase before.
func settled(ws [][2]int64) [][2]int64 {
	out := make([][2]int64, len(ws))
	for i, w := range ws {
		out[i] = [2]int64{w[0] + int64(1200*time.Millisecond), w[1]}
	}
	return out
}

// checkPower checks the load model through the sensors: idle, loaded and
// loaded idle (p0_hold) levels, clocks and clock-event reasons.
func checkPower(t *testing.T, dp []trace.DriverPowerSample, sr []trace.DeviceState, ev []trace.Event) {
	t.Helper()
	ph := phaseWindows(ev)
	mean := func(ws [][2]int64) float64 {
		var sum float64
		var n int
		for _, r := range dp {
			if inAny(ws, r.TimestampNs) {
				sum += float64(r.DriverPowerMw) / 1000
				n++
			}
		}
		return sum / float64(n)
	}
	for name, lim := range map[string][2]float64{"idle_before": {72, 78}, "measure": {570, 630}, "p0_hold": {114, 126}, "cooldown": {72, 80}} {
		if w := mean(ph[name]); w < lim[0] || w > lim[1] {
			t.Errorf("%s: mean driver power %.1f W per GPU, want %g to %g", name, w, lim[0], lim[1])
		}
	}
	maxTemp := int32(0)
	for _, r := range sr {
		if r.InstantPowerMw == nil || r.AveragePowerMw == nil || r.TemperatureC == nil || r.SMClockMHz == nil ||
			r.MemClockMHz == nil || r.PState == nil || r.GPUUtilPct == nil || r.MemUtilPct == nil ||
			r.ClockEventReasons == nil || r.MemoryUsedBytes == nil {
			t.Fatalf("state row with a null field: %+v", r)
		}
		clock, reasons := *r.SMClockMHz, *r.ClockEventReasons
		switch {
		case inAny(ph["measure"], r.TimestampNs):
			if clock != 1980 || reasons != 0 || *r.GPUUtilPct < 90 {
				t.Fatalf("measure: SM %d MHz, reasons %#x, util %d", clock, reasons, *r.GPUUtilPct)
			}
		case inAny(ph["p0_hold"], r.TimestampNs):
			if clock != 1980 || reasons != 1 || *r.GPUUtilPct != 0 {
				t.Fatalf("p0_hold: SM %d MHz, reasons %#x, util %d", clock, reasons, *r.GPUUtilPct)
			}
		case inAny(settled(ph["idle_before"]), r.TimestampNs) || inAny(settled(ph["cooldown"]), r.TimestampNs):
			if clock != 345 || reasons != 1 || *r.AveragePowerMw > 80_000 || *r.InstantPowerMw > 80_000 {
				t.Fatalf("idle: SM %d MHz, reasons %#x, average %d mW", clock, reasons, *r.AveragePowerMw)
			}
		}
		if *r.MemClockMHz != 2619 || *r.PState != 0 || *r.TemperatureC < 33 || *r.TemperatureC > 75 {
			t.Fatalf("state row %+v", r)
		}
		maxTemp = max(maxTemp, *r.TemperatureC)
	}
	if maxTemp < 50 {
		t.Errorf("temperature never passed 50 C (max %d)", maxTemp)
	}
}

// The same configuration writes byte-identical files; another seed does not.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, o := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "other")
	for _, d := range []string{a, b} {
		if _, err := Generate(testConfig(d, 3), nil); err != nil {
			t.Fatal(err)
		}
	}
	fa, fb := files(t, a), files(t, b)
	// meta.json; 4 tables of 5 segments and a manifest each
	if len(fa) != 1+4*(5+1) || !slices.Equal(slices.Sorted(maps.Keys(fa)), slices.Sorted(maps.Keys(fb))) {
		t.Fatalf("runs hold different files: %d and %d", len(fa), len(fb))
	}
	for name, ca := range fa {
		if !bytes.Equal(ca, fb[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if _, err := Generate(testConfig(o, 4), nil); err != nil {
		t.Fatal(err)
	}
	fo := files(t, o)
	for _, name := range []string{"meta.json", "driver_power/part-000000.parquet", "device_state/part-000003.parquet", "events/part-000002.parquet"} {
		if bytes.Equal(fa[name], fo[name]) {
			t.Errorf("%s is the same with another seed", name)
		}
	}
}

func TestRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Generate(Config{Out: dir, GPUs: 1, Duration: 5 * time.Minute}, nil); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("5 minutes with the default phases: err %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(testConfig(dir, 1), nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty directory: err %v", err)
	}
}

func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func abs(x int) int { return max(x, -x) }
