// Package sim is a synthetic GPU with known truth, so that the recorder and
// the analysis can be run and scored anywhere, without hardware.
//
// # Model (sim-v2)
//
// True power is piecewise constant on a fine tick (Options.Tick, 10 ms),
// with tick k covering [epoch + k*Tick, epoch + (k+1)*Tick) where epoch is
// the clock reading when New was called. A tick's power is set by the
// state at its start:
//
//   - idle (no busy period covers the tick): IdlePowerW (75 W), no noise;
//   - busy, first Setup of the period (0 by default): LoadedIdlePowerW
//     (120 W), a context held but no work, as while a model loads;
//   - busy, next Ramp (3 s): a linear ramp from the level before it to the
//     working level;
//   - busy after that (steady state): SteadyPowerW (600 W) plus noise
//     N(0, NoiseSdW=15 W) drawn from a hash of (Seed, GPU, tick), plus a
//     thermal drift of DriftFrac (2%) per DriftOver (10 min) of cumulative
//     busy time, plus, when PulsePeriod is set, PulsePowerW during the first
//     PulseWidth of every period.
//
// Power is capped at PowerLimitW (700 W). Busy periods come from SetBusy,
// which the recorder calls when the command starts and exits; a change is
// never applied before a time some reading has already looked at, so a
// value once read never changes. Temperature follows a first-order lag
// (TempTau, 90 s) from IdleTempC (35 C) towards BusyTempC (65 C) while busy
// and back while idle. The whole history is a pure function of Seed, the
// options and the SetBusy calls: the same inputs give the same readings.
//
// # Sensors (as an H100 behaves; see shared/gpu-notes.md)
//
// Each GPU's sensors update every 100 ms on a grid with a seeded phase.
// At an update time u:
//
//   - the energy counter (mJ) becomes a large seeded offset plus the
//     integral up to u - CounterDelay (10 ms), floored to a millijoule, so a
//     read lags the truth by 10 to 110 ms (an H200's counter, measured with
//     bench/gpu/steplag: docs/results.md);
//   - instant power becomes the mean true power over [u-25ms, u];
//   - average power becomes the mean over [u-1s, u] (a 1 s boxcar, which
//     rises 10->90% in 800 ms after a step).
//
// Every sensor is off the truth by the GPU's calibration error, a seeded
// constant within +/- CalibrationW (5 W: NVML's stated accuracy), added to
// each power reading and to the counter's rate.
//
// The driver's power-sample buffer holds one sample per 20 ms grid point
// s (its own seeded phase), valued at the mean true power over
// [s-20ms, s]; it keeps the last 120 samples (2.4 s), so a caller that
// polls less often than that loses the older ones, as on a real GPU.
//
// SM clock: 345 MHz when idle or only holding a context (clock-event reason
// GpuIdle 0x1), 1980 MHz while working, dipping linearly towards 1500 MHz
// as power goes from 90% of the limit to the limit; at 95% of the limit the
// reason is SW power cap (0x4). The P-state is always P0, as on a real H100.
//
// All timestamps are Options.Now (time.Now by default), so the sim runs in
// real time under the recorder and on a fake clock in tests.
package sim

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

// Options sets the model. Zero fields take the defaults in brackets; the
// fields marked "negative: none" turn a feature off with a negative value.
type Options struct {
	GPUs int   // number of GPUs [1]
	Seed int64 // drives noise, sensor phases, counter offsets and UUIDs
	// Now is the clock [time.Now]; tests pass a fake one.
	Now func() time.Time

	Tick             time.Duration // true power resolution [10ms]
	IdlePowerW       float64       // not busy [75]
	LoadedIdlePowerW float64       // during Setup [120]
	Setup            time.Duration // context held, no work, at each busy start [0]
	SteadyPowerW     float64       // working level before drift and noise [600]
	Ramp             time.Duration // idle to working level [3s]; negative: a step
	NoiseSdW         float64       // steady-state noise sd [15]; negative: none
	DriftFrac        float64       // relative rise per DriftOver of busy time [0.02]; negative: none
	DriftOver        time.Duration // [10min]
	IdleTempC        float64       // [35]
	BusyTempC        float64       // temperature approached while busy [65]
	TempTau          time.Duration // thermal time constant [90s]
	PulsePeriod      time.Duration // periodic pulse in steady state [0: none]
	PulseWidth       time.Duration // [PulsePeriod/2]
	PulsePowerW      float64       // added during a pulse [100]
	PowerLimitW      float64       // cap on true power, reported limit [700]
	CounterDelay     time.Duration // the counter's value at an update is the energy this long before it [10ms]; negative: none
	CalibrationW     float64       // sensors' error bound: each GPU's is seeded within +/- this [5]; negative: none
	// Faults are injected into the readings, for testing the recorder.
	Faults []Fault
}

// FaultKind is a kind of injected fault.
type FaultKind int

const (
	// FaultLost: from At on, every call fails with record.ErrGPULost.
	FaultLost FaultKind = iota + 1
	// FaultFail: calls in [At, At+For) fail with an ordinary error.
	FaultFail
	// FaultSlow: calls in [At, At+For) take Delay longer (a driver call
	// that takes seconds; the driver's buffer goes on filling meanwhile).
	FaultSlow
	// FaultCounterReset: from At on, the energy counter restarts from 0
	// (a driver reload).
	FaultCounterReset
	// FaultCounterBack: from At on, the energy counter reads Back
	// millijoules lower (a counter going backwards).
	FaultCounterBack
)

// Fault is one injected fault on GPU GPU, at At after the sim's epoch.
type Fault struct {
	GPU   int
	Kind  FaultKind
	At    time.Duration
	For   time.Duration // FaultFail, FaultSlow; 0: to the end
	Delay time.Duration // FaultSlow
	Back  uint64        // FaultCounterBack, mJ
	// Call limits FaultFail and FaultSlow to one reading: "energy",
	// "driver_power" or "state"; "" for all.
	Call string
}

func (o Options) withDefaults() Options {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	num := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if o.GPUs <= 0 {
		o.GPUs = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dur(&o.Tick, 10*time.Millisecond)
	num(&o.IdlePowerW, 75)
	num(&o.LoadedIdlePowerW, 120)
	num(&o.SteadyPowerW, 600)
	dur(&o.Ramp, 3*time.Second)
	num(&o.NoiseSdW, 15)
	num(&o.DriftFrac, 0.02)
	dur(&o.DriftOver, 10*time.Minute)
	num(&o.IdleTempC, 35)
	num(&o.BusyTempC, 65)
	dur(&o.TempTau, 90*time.Second)
	dur(&o.PulseWidth, o.PulsePeriod/2)
	num(&o.PulsePowerW, 100)
	num(&o.PowerLimitW, 700)
	dur(&o.CounterDelay, 10*time.Millisecond)
	num(&o.CalibrationW, 5)
	// Negative means "none": fold it to zero once, so the model only tests > 0.
	o.Ramp = max(o.Ramp, 0)
	o.Setup = max(o.Setup, 0)
	o.NoiseSdW = max(o.NoiseSdW, 0)
	o.DriftFrac = max(o.DriftFrac, 0)
	o.CounterDelay = max(o.CounterDelay, 0)
	o.CalibrationW = max(o.CalibrationW, 0)
	return o
}

// Backend is a set of simulated GPUs sharing one load (SetBusy) and clock.
// It implements record.Backend, record.LoadObserver and record.TruthReporter.
type Backend struct {
	opts  Options
	epoch int64 // ns; tick 0 starts here
	gpus  []*simGPU

	// mu guards everything below and each GPU's caches: readings extend
	// the energy checkpoints, so even reads take the lock.
	mu sync.Mutex
	// spans are the busy periods in order; the last may be open.
	spans []span
	// observed is the latest time any reading or truth looked at. SetBusy
	// never changes the model at or before it, which keeps the cached
	// checkpoints valid and past readings stable.
	observed int64
}

// span is one busy period [start, end); end is math.MaxInt64 while open.
type span struct {
	start, end int64
	busyBefore int64 // cumulative busy ns before start, for the drift
}

var (
	_ record.Backend       = (*Backend)(nil)
	_ record.LoadObserver  = (*Backend)(nil)
	_ record.TruthReporter = (*Backend)(nil)
)

// New starts a simulated device whose epoch is opts.Now() at the call.
func New(opts Options) *Backend {
	o := opts.withDefaults()
	b := &Backend{opts: o}
	// On a whole microsecond, so that every grid time (and so every driver
	// timestamp, which NVML gives in microseconds) converts exactly.
	b.epoch = o.Now().UnixNano() / 1000 * 1000
	b.observed = b.epoch
	for i := range o.GPUs {
		b.gpus = append(b.gpus, newSimGPU(b, i))
	}
	return b
}

// Name is the device name written into meta.json.
func (b *Backend) Name() string { return "sim" }

// GPUs returns the simulated GPUs.
func (b *Backend) GPUs() []record.GPU {
	out := make([]record.GPU, len(b.gpus))
	for i, g := range b.gpus {
		out[i] = g
	}
	return out
}

// Close does nothing: the sim holds no resources.
func (b *Backend) Close() error { return nil }

// SetBusy starts or ends a busy period at atNs (ns since the Unix epoch)
// on every GPU. A call that does not change the state is ignored. atNs is
// moved forward past any time already read, so readings never change
// after the fact; the recorder calls it within microseconds of its reads,
// so the shift is negligible, and Truth reports the model as applied.
func (b *Backend) SetBusy(busy bool, atNs int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	at := max(atNs, b.observed+1)
	n := len(b.spans)
	open := n > 0 && b.spans[n-1].end == math.MaxInt64
	switch {
	case busy && !open:
		var before int64
		if n > 0 {
			last := b.spans[n-1]
			before = last.busyBefore + last.end - last.start
		}
		b.spans = append(b.spans, span{start: at, end: math.MaxInt64, busyBefore: before})
	case !busy && open:
		b.spans[n-1].end = at
	}
}

// Truth returns the ground truth over [startNs, endNs], summed over GPUs:
// EnergyJ and PerGPUEnergyJ integrate true power exactly (tick by tick,
// partial ticks at the edges); IdlePowerW is the idle power of all GPUs
// together; SteadyMeanPowerW is the mean total true power over the steady
// parts of busy periods (after Setup and Ramp) inside the window;
// SteadyStartS is the time from startNs to the start of the first steady
// state, 0 when no busy period reached one.
func (b *Backend) Truth(startNs, endNs int64) *trace.SimTruth {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.observe(endNs)
	o := b.opts
	t := &trace.SimTruth{
		Seed:       o.Seed,
		StartNs:    startNs,
		EndNs:      endNs,
		IdlePowerW: o.IdlePowerW * float64(len(b.gpus)),
		Model:      b.modelString(),
	}
	for _, g := range b.gpus {
		e := g.integral(startNs, endNs)
		t.PerGPUEnergyJ = append(t.PerGPUEnergyJ, e)
		t.EnergyJ += e
	}
	var steadyJ float64
	var steadyNs int64
	firstSteady := true
	for _, s := range b.spans {
		ss := s.start + int64(o.Setup+o.Ramp)
		if ss >= s.end {
			continue // ended before reaching steady state
		}
		if firstSteady {
			t.SteadyStartS = float64(ss-startNs) / 1e9
			firstSteady = false
		}
		lo, hi := max(ss, startNs), min(s.end, endNs)
		if lo >= hi {
			continue
		}
		for _, g := range b.gpus {
			steadyJ += g.integral(lo, hi)
		}
		steadyNs += hi - lo
	}
	if steadyNs > 0 {
		t.SteadyMeanPowerW = steadyJ / (float64(steadyNs) / 1e9)
	}
	return t
}

func (b *Backend) modelString() string {
	o := b.opts
	var sb strings.Builder
	fmt.Fprintf(&sb, "sim-v2 gpus=%d tick=%v idle=%gW", o.GPUs, o.Tick, o.IdlePowerW)
	if o.Setup > 0 {
		fmt.Fprintf(&sb, " setup=%v@%gW", o.Setup, o.LoadedIdlePowerW)
	}
	fmt.Fprintf(&sb, " ramp=%v steady=%gW noise_sd=%gW drift=%g/%v",
		o.Ramp, o.SteadyPowerW, o.NoiseSdW, o.DriftFrac, o.DriftOver)
	if o.PulsePeriod > 0 {
		fmt.Fprintf(&sb, " pulse=+%gW/%v/%v", o.PulsePowerW, o.PulseWidth, o.PulsePeriod)
	}
	fmt.Fprintf(&sb, " limit=%gW temp=%g->%gC/%v counter_delay=%v calibration=+/-%gW", o.PowerLimitW, o.IdleTempC, o.BusyTempC, o.TempTau,
		o.CounterDelay, o.CalibrationW)
	return sb.String()
}

// observe records that the model has been looked at up to t. Callers hold mu.
func (b *Backend) observe(t int64) { b.observed = max(b.observed, t) }

// phase is what the GPU is doing at one instant.
type phase int

const (
	idle    phase = iota
	setup         // context held, no work
	working       // ramp or steady state
)

// at returns the phase at t and, when busy, its span and the time since the
// span's work began (after Setup). Callers hold mu.
func (b *Backend) at(t int64) (phase, span, int64) {
	i := sort.Search(len(b.spans), func(i int) bool { return b.spans[i].start > t }) - 1
	if i < 0 || t >= b.spans[i].end {
		return idle, span{}, 0
	}
	s := b.spans[i]
	e := t - s.start - int64(b.opts.Setup)
	if e < 0 {
		return setup, s, 0
	}
	return working, s, e
}

// tickPower is GPU g's true power in watts over tick k. Callers hold mu.
func (b *Backend) tickPower(g int, k int64) float64 {
	o := b.opts
	t := b.epoch + k*int64(o.Tick)
	ph, s, e := b.at(t)
	switch ph {
	case idle:
		return o.IdlePowerW
	case setup:
		return o.LoadedIdlePowerW
	}
	base := o.IdlePowerW
	if o.Setup > 0 {
		base = o.LoadedIdlePowerW
	}
	busyNs := s.busyBefore + t - s.start
	level := o.SteadyPowerW * (1 + o.DriftFrac*float64(busyNs)/float64(o.DriftOver))
	level += o.NoiseSdW * normal(hash(o.Seed, g, k, saltNoise))
	frac := 1.0
	if e < int64(o.Ramp) {
		frac = float64(e) / float64(o.Ramp)
	} else if o.PulsePeriod > 0 && (e-int64(o.Ramp))%int64(o.PulsePeriod) < int64(o.PulseWidth) {
		level += o.PulsePowerW
	}
	p := base + frac*(level-base)
	return min(max(p, 0), o.PowerLimitW)
}

// temperature at t: a first-order lag towards the busy or idle target,
// solved exactly over each constant-target stretch. Callers hold mu.
func (b *Backend) temperature(t int64) float64 {
	o := b.opts
	tau := float64(o.TempTau)
	relax := func(temp, target float64, dt int64) float64 {
		return target + (temp-target)*math.Exp(-float64(dt)/tau)
	}
	temp, cur := o.IdleTempC, b.epoch
	for _, s := range b.spans {
		if s.start >= t {
			break
		}
		temp = relax(temp, o.IdleTempC, s.start-cur)
		cur = min(s.end, t)
		temp = relax(temp, o.BusyTempC, cur-s.start)
	}
	return relax(temp, o.IdleTempC, max(t-cur, 0))
}

// Salts keep the seeded streams independent of each other.
const (
	saltNoise uint64 = iota + 1
	saltPhase
	saltDriverPhase
	saltOffset
	saltUUID
	saltCalibration
)

// hash mixes the seed, GPU, index and salt with splitmix64 finalisers.
func hash(seed int64, gpu int, k int64, salt uint64) uint64 {
	h := splitmix64(uint64(seed) ^ salt*0x9e3779b97f4a7c15)
	h = splitmix64(h ^ uint64(gpu))
	return splitmix64(h ^ uint64(k))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit turns 64 random bits into a number in [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// normal turns 64 random bits into a standard normal value (Box-Muller on
// the two 32-bit halves).
func normal(h uint64) float64 {
	u1 := (float64(h>>32) + 0.5) / (1 << 32)
	u2 := float64(h&0xffffffff) / (1 << 32)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// TruthSeries is each GPU's true cumulative energy over [startNs, endNs]:
// a row at startNs (0 J), at every tick boundary inside and at endNs.
// True power is constant within a tick, so linear interpolation between
// rows gives the true energy of any window (the sim_truth table).
func (b *Backend) TruthSeries(startNs, endNs int64) []trace.SimTruthEnergy {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.observe(endNs)
	tick := int64(b.opts.Tick)
	var out []trace.SimTruthEnergy
	for _, g := range b.gpus {
		var cum float64
		prev := startNs
		add := func(t int64) {
			cum += g.sumTicks(prev, t)
			prev = t
			out = append(out, trace.SimTruthEnergy{GPU: int32(g.index), TimestampNs: t, EnergyUj: int64(math.Round(cum * 1e6))})
		}
		add(startNs)
		for t := b.epoch + (floorDiv(startNs-b.epoch, tick)+1)*tick; t < endNs; t += tick {
			add(t)
		}
		add(endNs)
	}
	return out
}
