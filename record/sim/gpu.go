package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

// Sensor timing of an H100 (shared/gpu-notes.md, methodology-specs.md).
const (
	sensorPeriod  = int64(100 * time.Millisecond) // energy, instant and average power
	instantWindow = int64(25 * time.Millisecond)
	averageWindow = int64(time.Second)
	driverPeriod  = int64(20 * time.Millisecond) // power-sample buffer grid
	driverBuffer  = 120                          // samples the driver keeps

	// checkpointTicks is how many ticks one energy checkpoint covers: a
	// reading sums at most this many ticks on top of a cached checkpoint.
	checkpointTicks = 100

	idleSMClockMHz = 345
	maxSMClockMHz  = 1980
	capSMClockMHz  = 1500 // SM clock when true power sits at the limit
	memClockMHz    = 2619
	idleMemBytes   = 512 << 20
	busyMemBytes   = 40 << 30

	reasonGpuIdle    = 0x1
	reasonSWPowerCap = 0x4
)

type simGPU struct {
	b     *Backend
	index int
	// Seeded phases (ns after the epoch) of the sensor and driver grids,
	// and the counter's value at the epoch (energy since "driver load").
	sensorPhase, driverPhase int64
	offsetMj                 uint64
	// calW is the sensors' calibration error: every power reading and the
	// counter's rate are off the truth by this many watts (seeded, within
	// +/- Options.CalibrationW: NVML's stated accuracy).
	calW float64
	// checkpoints[j] is the true energy (J) from the epoch to the start of
	// tick j*checkpointTicks; extended lazily, guarded by b.mu.
	checkpoints []float64
}

var _ record.GPU = (*simGPU)(nil)

func newSimGPU(b *Backend, i int) *simGPU {
	seed := b.opts.Seed
	return &simGPU{
		b:     b,
		index: i,
		// Phases on whole microseconds, so driver timestamps convert exactly.
		sensorPhase: int64(hash(seed, i, 0, saltPhase)%uint64(sensorPeriod/1000)) * 1000,
		driverPhase: int64(hash(seed, i, 0, saltDriverPhase)%uint64(driverPeriod/1000)) * 1000,
		offsetMj:    1e9 + hash(seed, i, 0, saltOffset)%1e9,
		calW:        b.opts.CalibrationW * (2*unit(hash(seed, i, 0, saltCalibration)) - 1),
		checkpoints: []float64{0},
	}
}

func (g *simGPU) Index() int { return g.index }

// Info is a plausible H100-like snapshot; the UUID derives from seed and index.
func (g *simGPU) Info() (trace.GPUInfo, error) {
	o := g.b.opts
	h := hash(o.Seed, g.index, 0, saltUUID)
	h2 := splitmix64(h)
	limit := int64(o.PowerLimitW * 1000)
	on, off := true, false
	return trace.GPUInfo{
		Index: g.index,
		Name:  "llem simulated GPU",
		UUID: fmt.Sprintf("GPU-%08x-%04x-%04x-%04x-%012x",
			h>>32, (h>>16)&0xffff, h&0xffff, h2>>48, h2&0xffffffffffff),
		Serial:              fmt.Sprintf("SIM%010d", h2%1e10),
		PCIBusID:            fmt.Sprintf("00000000:%02X:00.0", 0x18+g.index),
		DriverVersion:       "sim",
		NVMLVersion:         "sim",
		PersistenceMode:     &on,
		PowerLimitMw:        &limit,
		DefaultPowerLimitMw: &limit,
		ECCEnabled:          &on,
		MIGEnabled:          &off,
		ComputeMode:         "Default",
		MaxSMClockMHz:       ptr[int32](maxSMClockMHz),
		MaxMemClockMHz:      ptr[int32](memClockMHz),
		PStateAtStart:       ptr[int32](0),
		Processes:           []trace.GPUProcess{},
	}, nil
}

// EnergyMj is the counter as of the last 100 ms sensor update, which
// holds the energy up to CounterDelay before the update (as measured on an
// H200: bench/gpu/steplag).
func (g *simGPU) EnergyMj() (uint64, error) {
	if err := g.fault("energy"); err != nil {
		return 0, err
	}
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	now := g.now()
	u := g.lastUpdate(now) - int64(g.b.opts.CounterDelay)
	v := g.offsetMj + uint64(math.Floor(g.measuredEnergy(u)*1000))
	for _, f := range g.b.opts.Faults {
		if f.GPU != g.index || now < g.b.epoch+int64(f.At) {
			continue
		}
		switch f.Kind {
		case FaultCounterReset:
			at := g.lastUpdate(g.b.epoch+int64(f.At)) - int64(g.b.opts.CounterDelay)
			v -= g.offsetMj + uint64(math.Floor(g.measuredEnergy(at)*1000))
		case FaultCounterBack:
			v -= min(f.Back, v)
		}
	}
	return v, nil
}

// fault applies the faults injected on call at this instant: an error, or
// a delay (taken before any lock, as a slow driver call).
func (g *simGPU) fault(call string) error {
	if len(g.b.opts.Faults) == 0 {
		return nil
	}
	t := g.b.opts.Now().UnixNano() - g.b.epoch
	for _, f := range g.b.opts.Faults {
		in := f.GPU == g.index && t >= int64(f.At) && (f.For <= 0 || t < int64(f.At+f.For))
		if !in || (f.Call != "" && f.Call != call) {
			continue
		}
		switch f.Kind {
		case FaultLost:
			return fmt.Errorf("sim %s: %w", call, record.ErrGPULost)
		case FaultFail:
			return fmt.Errorf("sim %s: injected failure", call)
		case FaultSlow:
			time.Sleep(f.Delay)
		}
	}
	return nil
}

// DriverPowerSamples returns the buffered 20 ms samples with timestamps
// after sinceUs, at most the last 120, oldest first.
func (g *simGPU) DriverPowerSamples(sinceUs uint64) ([]record.PowerSample, error) {
	if err := g.fault("driver_power"); err != nil {
		return nil, err
	}
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	now := g.now()
	base := g.b.epoch + g.driverPhase
	last := floorDiv(now-base, driverPeriod)
	first := last - driverBuffer + 1
	// The first grid point strictly after sinceUs.
	if since := floorDiv(int64(sinceUs)*1000-base, driverPeriod) + 1; since > first {
		first = since
	}
	var out []record.PowerSample
	for i := first; i <= last; i++ {
		s := base + i*driverPeriod
		w := g.measured(s-driverPeriod, s) / (float64(driverPeriod) / 1e9)
		out = append(out, record.PowerSample{TimestampUs: uint64(s / 1000), PowerMw: uint32(math.Round(w * 1000))})
	}
	return out, nil
}

// State reads the driver-cached fields; GPU and timestamp are left to the caller.
func (g *simGPU) State() (trace.DeviceState, error) {
	if err := g.fault("state"); err != nil {
		return trace.DeviceState{}, err
	}
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := g.now()
	u := g.lastUpdate(now)
	instant := g.measured(u-instantWindow, u) / (float64(instantWindow) / 1e9)
	average := g.measured(u-averageWindow, u) / (float64(averageWindow) / 1e9)
	ph, _, _ := b.at(now)
	limit := b.opts.PowerLimitW
	clock, reasons, util, memUtil, mem := int64(idleSMClockMHz), int64(reasonGpuIdle), int64(0), int64(0), int64(idleMemBytes)
	if ph != idle {
		mem = busyMemBytes
	}
	if ph == working {
		p := b.tickPower(g.index, floorDiv(now-b.epoch, int64(b.opts.Tick)))
		clock, reasons, util, memUtil = maxSMClockMHz, 0, 100, 45
		if p > 0.9*limit {
			clock = maxSMClockMHz - int64((p-0.9*limit)/(0.1*limit)*(maxSMClockMHz-capSMClockMHz))
		}
		if p >= 0.95*limit {
			reasons = reasonSWPowerCap
		}
	}
	return trace.DeviceState{
		InstantPowerMw:    ptr(int64(math.Round(instant * 1000))),
		AveragePowerMw:    ptr(int64(math.Round(average * 1000))),
		TemperatureC:      ptr(int32(math.Round(b.temperature(now)))),
		SMClockMHz:        ptr(int32(clock)),
		MemClockMHz:       ptr[int32](memClockMHz),
		PState:            ptr[int32](0),
		GPUUtilPct:        ptr(int32(util)),
		MemUtilPct:        ptr(int32(memUtil)),
		ClockEventReasons: ptr(reasons),
		MemoryUsedBytes:   ptr(mem),
	}, nil
}

// now reads the clock and marks it observed. Callers hold b.mu.
func (g *simGPU) now() int64 {
	t := g.b.opts.Now().UnixNano()
	g.b.observe(t)
	return t
}

// lastUpdate is the latest sensor update time at or before t.
func (g *simGPU) lastUpdate(t int64) int64 {
	base := g.b.epoch + g.sensorPhase
	return base + floorDiv(t-base, sensorPeriod)*sensorPeriod
}

// measured is the energy over [a, b] as the sensors see it: the truth plus
// the calibration error. Callers hold b.mu.
func (g *simGPU) measured(a, b int64) float64 {
	return g.integral(a, b) + g.calW*float64(b-a)/1e9
}

// measuredEnergy is energy(t) as the counter sees it.
func (g *simGPU) measuredEnergy(t int64) float64 {
	return g.energy(t) + g.calW*float64(t-g.b.epoch)/1e9
}

// integral is the true energy in joules over [a, b]. Callers hold b.mu.
func (g *simGPU) integral(a, b int64) float64 {
	if b-a <= checkpointTicks*int64(g.b.opts.Tick) {
		return g.sumTicks(a, b)
	}
	return g.energy(b) - g.energy(a)
}

// energy is the true energy in joules from the epoch to t (negative before
// the epoch, where the GPU is idle). Callers hold b.mu.
func (g *simGPU) energy(t int64) float64 {
	b := g.b
	if t <= b.epoch {
		return -b.opts.IdlePowerW * float64(b.epoch-t) / 1e9
	}
	span := checkpointTicks * int64(b.opts.Tick)
	j := int((t - b.epoch) / span)
	for len(g.checkpoints) <= j {
		n := int64(len(g.checkpoints))
		start := b.epoch + (n-1)*span
		g.checkpoints = append(g.checkpoints, g.checkpoints[n-1]+g.sumTicks(start, start+span))
	}
	return g.checkpoints[j] + g.sumTicks(b.epoch+int64(j)*span, t)
}

// sumTicks integrates true power over [a, b] tick by tick, counting the
// partial ticks at either edge by their overlap. Callers hold b.mu.
func (g *simGPU) sumTicks(a, b int64) float64 {
	if b <= a {
		return 0
	}
	be := g.b
	tick := int64(be.opts.Tick)
	var sum float64
	for k := floorDiv(a-be.epoch, tick); ; k++ {
		ts := be.epoch + k*tick
		if ts >= b {
			break
		}
		overlap := min(ts+tick, b) - max(ts, a)
		sum += be.tickPower(g.index, k) * float64(overlap)
	}
	return sum / 1e9
}

// floorDiv divides rounding towards minus infinity (times before the
// epoch or a phase are negative offsets).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ptr[T any](v T) *T { return &v }
