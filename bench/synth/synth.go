// Command synth writes a large synthetic llem run (the current trace format) for
// benchmarks: an 8-GPU H100-like recording of an hour of LLM serving, with
// every table at the recorder's default rates, recorder and client events,
// and the true energy in meta.json's sim_truth. The same flags give
// byte-identical files. See README.md.
package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/llem/llem/trace"
)

// Config describes the run to write. Zero fields take the defaults in
// brackets (Seed excepted: 0 is a seed like any other).
type Config struct {
	Out      string        // run directory; created, and refused if not empty
	GPUs     int           // [8]
	Duration time.Duration // the whole recording, clock.wall_start_ns to the end [1h]
	Seed     int64         // drives every random draw; same Config, same bytes
	// StartNs is clock.wall_start_ns, ns since the Unix epoch
	// [2026-01-05T09:00:00Z]; rounded down to a microsecond.
	StartNs int64

	IdleBefore time.Duration // [60s]
	IdleAfter  time.Duration // [60s]
	Cycles     int           // [5]
	Cooldown   time.Duration // idle between cycles [30s]
	Warmup     time.Duration // client phase at the start of each cycle [60s]
	Ramp       time.Duration // power rise from idle to loaded at each cycle start [20s]
	P0Hold     time.Duration // loaded idle at the end of each cycle [10s]
	// The measure phase takes the rest of each cycle: the cycles share
	// what Duration leaves after the idle phases and cool-downs.

	Concurrency int // closed-loop clients during measure [32]
	// RotateInterval is how much simulated time each segment covers, as
	// the recorder's --rotate-interval [5s].
	RotateInterval time.Duration
}

// DefaultStartNs is the default clock.wall_start_ns.
var DefaultStartNs = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC).UnixNano()

func (c Config) withDefaults() Config {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.GPUs == 0 {
		c.GPUs = 8
	}
	if c.Cycles == 0 {
		c.Cycles = 5
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.StartNs == 0 {
		c.StartNs = DefaultStartNs
	}
	c.StartNs = c.StartNs / 1000 * 1000 // driver timestamps are whole microseconds
	dur(&c.Duration, time.Hour)
	dur(&c.IdleBefore, time.Minute)
	dur(&c.IdleAfter, time.Minute)
	dur(&c.Cooldown, 30*time.Second)
	dur(&c.Warmup, time.Minute)
	dur(&c.Ramp, 20*time.Second)
	dur(&c.P0Hold, 10*time.Second)
	dur(&c.RotateInterval, 5*time.Second)
	return c
}

func (c Config) validate() error {
	switch {
	case c.Out == "":
		return errors.New("no output directory (-out)")
	case c.GPUs < 0 || c.GPUs > 64:
		return fmt.Errorf("-gpus %d: want 1 to 64", c.GPUs)
	case c.Cycles < 0 || c.Concurrency < 0:
		return errors.New("cycles and concurrency must be positive")
	case c.Duration < 0 || c.IdleBefore < 0 || c.IdleAfter < 0 || c.Cooldown < 0 || c.Warmup < 0 ||
		c.Ramp < 0 || c.P0Hold < 0 || c.RotateInterval < 0:
		return errors.New("durations must be positive")
	case c.Ramp > c.Warmup:
		return fmt.Errorf("ramp %v is longer than the warm-up %v", c.Ramp, c.Warmup)
	case c.Warmup < 100*time.Millisecond || c.P0Hold < 100*time.Millisecond:
		return errors.New("warm-up and p0_hold must last at least 100ms")
	case c.StartNs < 0:
		return errors.New("start time before 1970")
	}
	return nil
}

// Stats is what Generate wrote.
type Stats struct {
	Dir      string
	Rows     map[string]int64 // per table
	Segments map[string]int   // per table
	Bytes    int64            // every file of the run, meta.json included
	Elapsed  time.Duration
	Truth    *trace.SimTruth
}

// Generate writes the run described by cfg, reporting progress and a
// summary to log. Rows are produced in time order, one rotation interval
// at a time, and each interval is written as one segment per table, so
// memory stays bounded whatever the duration.
func Generate(cfg Config, log io.Writer) (Stats, error) {
	began := time.Now()
	if log == nil {
		log = io.Discard
	}
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return Stats{}, err
	}
	p, err := newPlan(c)
	if err != nil {
		return Stats{}, err
	}
	if err := makeRunDir(c.Out); err != nil {
		return Stats{}, err
	}
	m := newMeta(p)
	gpus := make([]*gpuSim, c.GPUs)
	for i := range gpus {
		gpus[i] = newGPU(p, i)
		m.GPUs = append(m.GPUs, gpus[i].info())
		m.Settings.GPUs = append(m.Settings.GPUs, i)
	}
	if err := trace.WriteMeta(c.Out, m); err != nil { // "recording" until the end, as the recorder does
		return Stats{}, err
	}
	w, err := newWriters(c.Out, m.RunID)
	if err != nil {
		return Stats{}, err
	}
	al := &allocs{}
	evs := newEventGen(p, al)
	truth := newTruthProbe(p)

	var (
		dp []trace.DriverPowerSample
		en []trace.EnergyRead
		st []trace.DeviceState
		ev []trace.Event
	)
	fmt.Fprintf(log, "synth: %d GPUs, %v, seed %d -> %s (%d cycles of %v)\n",
		c.GPUs, c.Duration, c.Seed, c.Out, c.Cycles, time.Duration(p.cycleLen))
	lastLog := began
	total := p.end - p.start
	for a := p.start; a < p.end; {
		b := min(a+int64(c.RotateInterval), p.end)
		for _, g := range gpus {
			dp, en, st = g.rows(b, dp, en, st, al)
		}
		ev = evs.until(b, ev)
		truth.observe(gpus, b)
		for _, g := range gpus {
			g.trim(b - history*3/4)
		}
		if err := w.add(dp, en, st, ev); err != nil {
			return Stats{}, err
		}
		clear(dp)
		clear(st)
		clear(ev)
		dp, en, st, ev = dp[:0], en[:0], st[:0], ev[:0]
		a = b
		if now := time.Now(); now.Sub(lastLog) >= 2*time.Second {
			lastLog = now
			fmt.Fprintf(log, "synth: %5.1f%%  %s of %s simulated, %d rows, %s\n",
				100*float64(a-p.start)/float64(total), time.Duration(a-p.start).Round(time.Second),
				c.Duration, w.rows(), now.Sub(began).Round(100*time.Millisecond))
		}
	}
	if err := w.close(); err != nil {
		return Stats{}, err
	}

	m.SimTruth = truth.result(gpus)
	finishMeta(m, p, gpus, w, evs.client)
	if err := trace.WriteMeta(c.Out, m); err != nil {
		return Stats{}, err
	}
	s := Stats{Dir: c.Out, Rows: m.Recorder.Rows, Segments: m.Recorder.Segments, Truth: m.SimTruth}
	if s.Bytes, err = dirBytes(c.Out); err != nil {
		return Stats{}, err
	}
	s.Elapsed = time.Since(began)
	for _, t := range trace.Tables {
		fmt.Fprintf(log, "synth: %-13s %10d rows %5d segments %10s\n", t, s.Rows[t], s.Segments[t], mib(w.bytes(t)))
	}
	fmt.Fprintf(log, "synth: wrote %s in %s (%s on disk); true energy %.1f kJ\n",
		c.Out, s.Elapsed.Round(100*time.Millisecond), mib(s.Bytes), s.Truth.EnergyJ/1000)
	return s, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// makeRunDir refuses a non-empty directory, as the recorder does.
func makeRunDir(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("-out %s: directory exists and is not empty; choose a new one", dir)
	}
	return os.MkdirAll(dir, 0o755)
}

func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

// writers are the run's table writers, flushed once per rotation interval
// as the recorder's sink does.
type writers struct {
	dp  *trace.TableWriter[trace.DriverPowerSample]
	en  *trace.TableWriter[trace.EnergyRead]
	st  *trace.TableWriter[trace.DeviceState]
	ev  *trace.TableWriter[trace.Event]
	bad *trace.TableWriter[trace.BadEvent] // stays empty; its folder exists as in a recording
}

func newWriters(dir, runID string) (*writers, error) {
	w := &writers{}
	var err error
	if w.dp, err = trace.NewTableWriter(dir, trace.TableDriverPower, runID, trace.CompareDriverPower); err != nil {
		return nil, err
	}
	w.dp.SetGrow(trace.DriverPowerSegmentSpan) // as the recorder's
	if w.en, err = trace.NewTableWriter(dir, trace.TableEnergy, runID, trace.CompareEnergy); err != nil {
		return nil, err
	}
	if w.st, err = trace.NewTableWriter(dir, trace.TableState, runID, trace.CompareState); err != nil {
		return nil, err
	}
	if w.ev, err = trace.NewTableWriter(dir, trace.TableEvents, runID, trace.CompareEvent); err != nil {
		return nil, err
	}
	if w.bad, err = trace.NewTableWriter[trace.BadEvent](dir, trace.TableBadEvents, runID, nil); err != nil {
		return nil, err
	}
	return w, nil
}

// add writes one rotation interval: its rows, then a segment per table
// (TableWriter also cuts one on its own at 200,000 rows).
func (w *writers) add(dp []trace.DriverPowerSample, en []trace.EnergyRead, st []trace.DeviceState, ev []trace.Event) error {
	return errors.Join(w.dp.Add(dp...), w.en.Add(en...), w.st.Add(st...), w.ev.Add(ev...),
		w.dp.Flush(), w.en.Flush(), w.st.Flush(), w.ev.Flush())
}

func (w *writers) close() error {
	return errors.Join(w.dp.Close(), w.en.Flush(), w.st.Flush(), w.ev.Flush(), w.bad.Flush())
}

func (w *writers) rows() int64 { return w.dp.Rows() + w.en.Rows() + w.st.Rows() + w.ev.Rows() }

func (w *writers) bytes(table string) int64 {
	switch table {
	case trace.TableDriverPower:
		return w.dp.Bytes()
	case trace.TableEnergy:
		return w.en.Bytes()
	case trace.TableState:
		return w.st.Bytes()
	case trace.TableEvents:
		return w.ev.Bytes()
	}
	return w.bad.Bytes()
}

func (w *writers) counts() (map[string]int64, map[string]int) {
	rows := map[string]int64{
		trace.TableDriverPower: w.dp.Rows(), trace.TableEnergy: w.en.Rows(), trace.TableState: w.st.Rows(),
		trace.TableEvents: w.ev.Rows(), trace.TableBadEvents: w.bad.Rows(),
	}
	segs := map[string]int{
		trace.TableDriverPower: w.dp.Segments(), trace.TableEnergy: w.en.Segments(), trace.TableState: w.st.Segments(),
		trace.TableEvents: w.ev.Segments(), trace.TableBadEvents: w.bad.Segments(),
	}
	return rows, segs
}

func ms(d int64) float64 { return float64(d) / 1e6 }

// newMeta is meta.json as the recorder writes it at the start.
func newMeta(p *plan) *trace.Meta {
	c := p.cfg
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], splitmix64(uint64(c.Seed)^splitmix64(saltRunID)))
	seed := c.Seed
	return &trace.Meta{
		SchemaVersion: trace.SchemaVersion,
		RunID:         hex.EncodeToString(id[:]),
		LlemVersion:   "synth",
		Status:        trace.StatusRecording,
		Device:        "import:synth",
		Clock:         trace.ClockAnchor{WallStartNs: p.start, TimestampUnits: "ns since Unix epoch"},
		Command:       &trace.CommandInfo{Argv: []string{"synth"}},
		Settings: trace.RecordSettings{
			EnergyIntervalMs: ms(energyInterval), DriverPowerIntervalMs: ms(driverDrain),
			StateIntervalMs: ms(stateInterval), RotateIntervalMs: ms(int64(c.RotateInterval)),
			IdleBeforeMs: ms(int64(c.IdleBefore)), IdleAfterMs: ms(int64(c.IdleAfter)),
			Cycles: c.Cycles, CooldownMs: ms(int64(c.Cooldown)), Seed: &seed,
		},
		Host: trace.HostInfo{Hostname: "synth", OS: "synthetic", Kernel: "synthetic", Arch: "amd64",
			CPUModel: "synthetic", NumCPU: 64},
		Warnings: []trace.Warning{},
		Source: &trace.SourceInfo{Format: "synth", Notes: map[string]string{
			"generator": "go run ./bench/synth",
			"config": fmt.Sprintf("gpus=%d duration=%v seed=%d start_ns=%d idle_before=%v idle_after=%v cycles=%d cooldown=%v warmup=%v ramp=%v p0_hold=%v concurrency=%d rotate=%v",
				c.GPUs, c.Duration, c.Seed, c.StartNs, c.IdleBefore, c.IdleAfter, c.Cycles, c.Cooldown,
				c.Warmup, c.Ramp, c.P0Hold, c.Concurrency, c.RotateInterval),
		}},
	}
}

// finishMeta fills in what the recorder writes at the end.
func finishMeta(m *trace.Meta, p *plan, gpus []*gpuSim, w *writers, clientEvents int64) {
	code := 0
	m.Command.StartNs = p.cycles[0].start
	m.Command.EndNs = p.cycles[len(p.cycles)-1].end
	m.Command.ExitCode = &code
	for _, cy := range p.cycles {
		m.Command.Cycles = append(m.Command.Cycles, trace.CycleInfo{Cycle: int(cy.n), StartNs: cy.start, EndNs: cy.end})
	}
	m.Clock.MonoEndNs, m.Clock.WallEndNs = p.end, p.end
	var polls, reads int64
	for _, g := range gpus {
		polls += g.stateRows
		reads += g.readRows
	}
	drains := int64(len(gpus)) * ((p.stop-p.start)/driverDrain + 1)
	rows, segs := w.counts()
	m.Recorder = trace.RecorderStats{
		WallSeconds: float64(p.end-p.start) / 1e9,
		Rows:        rows,
		Segments:    segs,
		Loops: map[string]trace.LoopStats{
			"energy":       {IntervalMs: ms(energyInterval), Iterations: reads},
			"driver_power": {IntervalMs: ms(driverDrain), Iterations: drains},
			"device_state": {IntervalMs: ms(stateInterval), Iterations: polls},
		},
	}
	m.Events = trace.EventStats{Received: clientEvents, Accepted: clientEvents}
	m.Status = trace.StatusComplete
	m.Complete = true
}

// truthProbe reads each GPU's true energy at the times the truth needs
// (start, end, and the edges of every cycle's steady load) as the
// simulation passes them.
type truthProbe struct {
	p      *plan
	times  []int64
	next   int
	values [][]float64 // [point][gpu] true energy from the GPU's epoch, J
}

func newTruthProbe(p *plan) *truthProbe {
	t := &truthProbe{p: p, times: []int64{p.start}}
	for _, cy := range p.cycles {
		t.times = append(t.times, cy.rampEnd, cy.holdStart)
	}
	t.times = append(t.times, p.end)
	return t
}

// observe takes the points at or before b (each GPU has been advanced to b).
func (t *truthProbe) observe(gpus []*gpuSim, b int64) {
	for ; t.next < len(t.times) && t.times[t.next] <= b; t.next++ {
		v := make([]float64, len(gpus))
		for i, g := range gpus {
			v[i] = g.energy(t.times[t.next])
		}
		t.values = append(t.values, v)
	}
}

func (t *truthProbe) result(gpus []*gpuSim) *trace.SimTruth {
	p := t.p
	first, last := t.values[0], t.values[len(t.values)-1]
	tr := &trace.SimTruth{Seed: p.cfg.Seed, StartNs: p.start, EndNs: p.end, Model: modelString(p.cfg),
		SteadyStartS: float64(p.cycles[0].rampEnd-p.start) / 1e9}
	for g := range first {
		e := last[g] - first[g]
		tr.PerGPUEnergyJ = append(tr.PerGPUEnergyJ, e)
		tr.EnergyJ += e
	}
	var steadyJ float64
	var steadyNs int64
	for i, cy := range p.cycles {
		a, b := t.values[1+2*i], t.values[2+2*i]
		for g := range a {
			steadyJ += b[g] - a[g]
		}
		steadyNs += cy.holdStart - cy.rampEnd
	}
	tr.SteadyMeanPowerW = steadyJ / (float64(steadyNs) / 1e9)
	// Idle power of all GPUs together, as record/sim reports it.
	for _, g := range gpus {
		tr.IdlePowerW += g.idleW
	}
	return tr
}
