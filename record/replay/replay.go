// Package replay re-emits a recorded run as if its GPUs were live, in real
// time or faster, so that the recorder, the CLI and the analysis can be run
// end to end on real data without hardware.
//
// # Time
//
// The replay origin is the clock reading when Open (or a later Start) is
// called; the recorded origin is the earliest sample timestamp in the run
// (over the energy, driver_power and device_state tables). The replay
// point, the recorded time being played, is
//
//	recordedOrigin + (now - replayOrigin) * Speed
//
// and a recorded timestamp ts is re-emitted at
// replayOrigin + (ts - recordedOrigin) / Speed.
//
// # Readings
//
//   - EnergyMj interpolates linearly between the two recorded counter reads
//     around the replay point, rather than holding the last read, so that a
//     replay polled at any rate sees energy accrue smoothly as the GPU
//     consumed it. Across a counter reset (a read lower than the one before)
//     it holds the earlier value until the reset read, so the counter is
//     monotone wherever the recording was. Before the first read it gives
//     the first read.
//   - DriverPowerSamples returns the recorded driver samples whose
//     re-emitted time has come, newer than sinceUs, at most the last 120 as
//     a real driver buffer keeps; timestamps are the re-emitted ones in
//     microseconds, made strictly increasing so that polling with the last
//     seen timestamp loses and repeats nothing. At high Speed the buffer
//     spans less wall time (2.4 s / Speed), so poll faster to keep every
//     sample.
//   - State returns the last recorded device_state row at or before the
//     replay point (the first row before it); the caller fills GPU and
//     timestamp.
//
// Runs written by importers may lack tables. Without an energy table, a
// GPU's counter is synthesised from 0 by integrating (trapezoids) the best
// power series it has: driver power, else instant power, else the 1 s
// average power (whose integral lags the truth by about half a second but
// totals the same). A GPU with neither energy reads nor any power data
// makes Open fail, naming the run and what is missing.
//
// # End of the recording
//
// Once the replay point passes the last recorded sample, Done reports true
// and every reading holds its last value (the driver buffer gives nothing
// new). A GPU the recording marks lost returns record.ErrGPULost from the
// time it was lost.
package replay

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

// driverBuffer is how many samples a real driver buffer keeps.
const driverBuffer = 120

// Options sets the replay.
type Options struct {
	// Speed is how many recorded seconds play per wall second [1].
	Speed float64
	// Now is the clock [time.Now]; tests pass a fake one.
	Now func() time.Time
}

// Backend replays one run. It implements record.Backend.
type Backend struct {
	dir       string
	speed     float64
	now       func() time.Time
	recOrigin int64 // earliest recorded sample, ns
	recEnd    int64 // latest recorded sample, ns
	gpus      []*replayGPU

	mu     sync.RWMutex // guards origin and each GPU's driverUs
	origin int64        // replay origin, ns
}

var _ record.Backend = (*Backend)(nil)

// Open loads runDir's tables into memory and starts the replay now.
func Open(runDir string, opts Options) (*Backend, error) {
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	run, err := trace.Open(runDir)
	if err != nil {
		return nil, err
	}
	energy, err := trace.ReadTable[trace.EnergyRead](run, trace.TableEnergy)
	if err != nil {
		return nil, err
	}
	driver, err := trace.ReadTable[trace.DriverPowerSample](run, trace.TableDriverPower)
	if err != nil {
		return nil, err
	}
	states, err := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(energy, trace.CompareEnergy)
	slices.SortStableFunc(driver, trace.CompareDriverPower)
	slices.SortStableFunc(states, trace.CompareState)

	b := &Backend{dir: runDir, speed: opts.Speed, now: opts.Now, recOrigin: math.MaxInt64, recEnd: math.MinInt64}
	span := func(ts int64) {
		b.recOrigin = min(b.recOrigin, ts)
		b.recEnd = max(b.recEnd, ts)
	}
	for _, r := range energy {
		span(r.TimestampNs)
	}
	for _, r := range driver {
		span(r.TimestampNs)
	}
	for _, r := range states {
		span(r.TimestampNs)
	}
	if b.recEnd == math.MinInt64 {
		return nil, fmt.Errorf("replay: %s: the run has no energy, driver_power or device_state rows", runDir)
	}

	infos := run.Meta.GPUs
	if len(infos) == 0 { // an importer that knew nothing about the GPUs
		infos = gpusInData(energy, driver, states)
	}
	for _, info := range infos {
		i := int32(info.Index)
		g := &replayGPU{
			b:      b,
			info:   replayedInfo(info),
			driver: rowsOf(driver, i, func(r trace.DriverPowerSample) int32 { return r.GPU }),
			state:  rowsOf(states, i, func(r trace.DeviceState) int32 { return r.GPU }),
		}
		if info.Lost {
			g.lostNs = info.LostNs
		}
		g.energy = counterSeries(rowsOf(energy, i, func(r trace.EnergyRead) int32 { return r.GPU }), g.driver, g.state)
		if len(g.energy) == 0 {
			return nil, fmt.Errorf("replay: %s: GPU %d has no energy reads and no power data (driver_power, or instant or average power in device_state): nothing to replay", runDir, info.Index)
		}
		b.gpus = append(b.gpus, g)
	}
	b.Start()
	return b, nil
}

// Start makes now the replay origin: playback restarts from the beginning
// of the recording.
func (b *Backend) Start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.origin = b.now().UnixNano()
	for _, g := range b.gpus {
		g.driverUs = make([]uint64, len(g.driver))
		var prev uint64
		for j, r := range g.driver {
			us := uint64(b.replayTime(r.TimestampNs) / 1000)
			if j > 0 && us <= prev {
				us = prev + 1 // keep polling by last seen timestamp lossless
			}
			g.driverUs[j], prev = us, us
		}
	}
}

// Name is the device name written into meta.json.
func (b *Backend) Name() string { return "replay:" + b.dir }

// GPUs returns the recorded GPUs, ordered as in meta.json.
func (b *Backend) GPUs() []record.GPU {
	out := make([]record.GPU, len(b.gpus))
	for i, g := range b.gpus {
		out[i] = g
	}
	return out
}

// Close does nothing: the tables are in memory.
func (b *Backend) Close() error { return nil }

// Done reports whether the replay point has passed the end of the
// recording; readings then hold their last values.
func (b *Backend) Done() bool { return b.point() > b.recEnd }

// Duration is how long the whole replay takes in wall time at this speed.
func (b *Backend) Duration() time.Duration {
	return time.Duration(float64(b.recEnd-b.recOrigin) / b.speed)
}

// point is the recorded time being played now.
func (b *Backend) point() int64 {
	b.mu.RLock()
	origin := b.origin
	b.mu.RUnlock()
	return b.recOrigin + int64(float64(b.now().UnixNano()-origin)*b.speed)
}

// replayTime maps a recorded timestamp to its re-emitted time. Callers
// hold mu.
func (b *Backend) replayTime(ts int64) int64 {
	return b.origin + int64(float64(ts-b.recOrigin)/b.speed)
}

type replayGPU struct {
	b      *Backend
	info   trace.GPUInfo
	lostNs int64 // recorded time the GPU was lost; 0 if never

	energy   []counterPoint            // the counter, recorded or synthesised
	driver   []trace.DriverPowerSample // sorted by time
	driverUs []uint64                  // driver's re-emitted µs; guarded by b.mu
	state    []trace.DeviceState       // sorted by time
}

var _ record.GPU = (*replayGPU)(nil)

// counterPoint is the counter's value (mJ) at a recorded time.
type counterPoint struct {
	ts int64
	mj float64
}

func (g *replayGPU) Index() int { return g.info.Index }

func (g *replayGPU) Info() (trace.GPUInfo, error) { return g.info, nil }

// lost returns a wrapped record.ErrGPULost once the replay point passes the
// time the recording lost this GPU.
func (g *replayGPU) lost(point int64) error {
	if g.lostNs != 0 && point >= g.lostNs {
		return fmt.Errorf("replayed GPU %d: %w", g.info.Index, record.ErrGPULost)
	}
	return nil
}

// EnergyMj is the counter interpolated at the replay point.
func (g *replayGPU) EnergyMj() (uint64, error) {
	p := g.b.point()
	if err := g.lost(p); err != nil {
		return 0, err
	}
	e := g.energy
	i := sort.Search(len(e), func(i int) bool { return e[i].ts > p }) // first read after p
	var mj float64
	switch {
	case i == 0:
		mj = e[0].mj
	case i == len(e) || e[i].mj < e[i-1].mj: // past the end, or a reset ahead
		mj = e[i-1].mj
	default:
		a, z := e[i-1], e[i]
		mj = a.mj + (z.mj-a.mj)*float64(p-a.ts)/float64(z.ts-a.ts)
	}
	return uint64(max(math.Floor(mj), 0)), nil
}

// DriverPowerSamples returns the re-emitted samples newer than sinceUs
// whose time has come, at most the last 120, oldest first.
func (g *replayGPU) DriverPowerSamples(sinceUs uint64) ([]record.PowerSample, error) {
	if err := g.lost(g.b.point()); err != nil {
		return nil, err
	}
	nowUs := uint64(g.b.now().UnixNano() / 1000)
	g.b.mu.RLock()
	defer g.b.mu.RUnlock()
	us := g.driverUs
	hi, _ := slices.BinarySearch(us, nowUs+1) // samples [0, hi) have come
	lo, _ := slices.BinarySearch(us, sinceUs+1)
	lo = max(lo, hi-driverBuffer)
	var out []record.PowerSample
	for j := lo; j < hi; j++ {
		mw := min(max(g.driver[j].DriverPowerMw, 0), math.MaxUint32)
		out = append(out, record.PowerSample{TimestampUs: us[j], PowerMw: uint32(mw)})
	}
	return out, nil
}

// State is the last recorded state at or before the replay point.
func (g *replayGPU) State() (trace.DeviceState, error) {
	p := g.b.point()
	if err := g.lost(p); err != nil {
		return trace.DeviceState{}, err
	}
	if len(g.state) == 0 {
		return trace.DeviceState{}, nil // every field unknown (null)
	}
	i := sort.Search(len(g.state), func(i int) bool { return g.state[i].TimestampNs > p })
	return copyState(g.state[max(i-1, 0)]), nil
}

// copyState copies the pointed-to fields too, so callers can never write
// into the shared recording.
func copyState(s trace.DeviceState) trace.DeviceState {
	c := trace.DeviceState{}
	c.InstantPowerMw = clone(s.InstantPowerMw)
	c.AveragePowerMw = clone(s.AveragePowerMw)
	c.TemperatureC = clone(s.TemperatureC)
	c.SMClockMHz = clone(s.SMClockMHz)
	c.MemClockMHz = clone(s.MemClockMHz)
	c.PState = clone(s.PState)
	c.GPUUtilPct = clone(s.GPUUtilPct)
	c.MemUtilPct = clone(s.MemUtilPct)
	c.ClockEventReasons = clone(s.ClockEventReasons)
	c.MemoryUsedBytes = clone(s.MemoryUsedBytes)
	return c
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// counterSeries is the GPU's counter: its recorded reads when it has any,
// else the integral of its best power series (see the package doc).
func counterSeries(reads []trace.EnergyRead, driver []trace.DriverPowerSample, states []trace.DeviceState) []counterPoint {
	if len(reads) > 0 {
		out := make([]counterPoint, len(reads))
		for i, r := range reads {
			out[i] = counterPoint{r.TimestampNs, float64(r.EnergyMj)}
		}
		return out
	}
	type powerPoint struct{ ts, mw int64 }
	var series []powerPoint
	for _, r := range driver {
		series = append(series, powerPoint{r.TimestampNs, r.DriverPowerMw})
	}
	for _, field := range []func(trace.DeviceState) *int64{
		func(s trace.DeviceState) *int64 { return s.InstantPowerMw },
		func(s trace.DeviceState) *int64 { return s.AveragePowerMw },
	} {
		if len(series) > 0 {
			break
		}
		for _, s := range states {
			if v := field(s); v != nil {
				series = append(series, powerPoint{s.TimestampNs, *v})
			}
		}
	}
	var out []counterPoint
	for i, p := range series {
		mj := 0.0
		if i > 0 {
			q := series[i-1]
			mj = out[i-1].mj + float64(q.mw+p.mw)/2*float64(p.ts-q.ts)/1e9
		}
		out = append(out, counterPoint{p.ts, mj})
	}
	return out
}

// rowsOf returns the rows of one GPU, keeping their order.
func rowsOf[T any](rows []T, gpu int32, gpuOf func(T) int32) []T {
	var out []T
	for _, r := range rows {
		if gpuOf(r) == gpu {
			out = append(out, r)
		}
	}
	return out
}

// gpusInData lists the GPUs that have rows, for runs whose meta.json names none.
func gpusInData(energy []trace.EnergyRead, driver []trace.DriverPowerSample, states []trace.DeviceState) []trace.GPUInfo {
	seen := map[int32]bool{}
	for _, r := range energy {
		seen[r.GPU] = true
	}
	for _, r := range driver {
		seen[r.GPU] = true
	}
	for _, r := range states {
		seen[r.GPU] = true
	}
	var out []trace.GPUInfo
	for i := range seen {
		if i >= 0 {
			out = append(out, trace.GPUInfo{Index: int(i), Name: "unknown GPU", Processes: []trace.GPUProcess{}})
		}
	}
	slices.SortFunc(out, func(a, b trace.GPUInfo) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// replayedInfo is the recorded snapshot marked as replayed; what the
// original run learnt about the GPU (errors, loss) belongs to that run.
func replayedInfo(info trace.GPUInfo) trace.GPUInfo {
	info.Name += " (replayed)"
	info.Errors = nil
	info.Lost, info.LostNs = false, 0
	if info.Processes == nil {
		info.Processes = []trace.GPUProcess{}
	}
	return info
}
