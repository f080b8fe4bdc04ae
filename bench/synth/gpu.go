package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/llem/llem/trace"
)

// gpuSim is one GPU: its true power, integrated tick by tick, and the
// sensors that sample it. Only the last couple of seconds of true power
// are kept, so memory does not grow with the run.
type gpuSim struct {
	p     *plan
	idx   int32
	noise *rand.Rand // true-power noise, one draw per tick
	jit   *rand.Rand // read timing and the small readings (util)
	epoch int64      // tick 0 starts here

	idleW, loadW, holdW, tempOff float64
	z, temp                      float64 // AR(1) noise state, temperature

	// cum[i] is the true energy (J) from the epoch to the start of tick
	// base+i; temps[i] is the temperature during tick base+i.
	base  int64
	cum   []float64
	temps []float64

	sensorPhase, driverPhase int64 // ns after the epoch, whole microseconds
	offsetMj                 int64 // counter value at the epoch

	nextPoll   int64 // next periodic device_state poll (returns at this time)
	pollK      int64
	nextRead   read // next periodic counter read
	readK      int64
	extraI     int   // next of plan.extraReads[idx]
	driverK    int64 // next driver grid point
	finalDone  bool
	lastEnergy int64
	lastState  int64
	stateRows  int64 // periodic polls, for the loop statistics
	readRows   int64 // periodic reads
}

func newGPU(p *plan, g int) *gpuSim {
	c := p.cfg
	r := newRand(c.Seed, saltGPU, g, 0)
	off := func(w float64) float64 { return (2*r.Float64() - 1) * w }
	s := &gpuSim{
		p: p, idx: int32(g),
		noise:       newRand(c.Seed, saltNoise, g, 0),
		jit:         newRand(c.Seed, saltJitter, g, 0),
		epoch:       p.start - history,
		idleW:       idlePowerW + off(idleOffsetW),
		loadW:       loadedPowerW + off(loadedOffsetW),
		holdW:       holdPowerW + off(holdOffsetW),
		tempOff:     off(tempOffsetC),
		sensorPhase: r.Int64N(sensorPeriod/1000) * 1000,
		driverPhase: r.Int64N(driverPeriod/1000) * 1000,
		offsetMj:    1e9 + r.Int64N(1e9),
		cum:         []float64{0},
		lastEnergy:  math.MinInt64,
		lastState:   math.MinInt64,
	}
	s.temp = idleTempC + s.tempOff
	// The first driver sample kept is the first after the start.
	s.driverK = floorDiv(p.start-s.epoch-s.driverPhase, driverPeriod) + 1
	s.nextPoll = s.pollTime(0)
	s.nextRead = s.readAt(0)
	return s
}

// info is the GPU's entry in meta.json.
func (s *gpuSim) info() trace.GPUInfo {
	h := splitmix64(uint64(s.p.cfg.Seed) ^ splitmix64(saltGPU<<8|uint64(s.idx)))
	h2 := splitmix64(h)
	bus := []int{0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb} // an HGX H100 board
	b := 0xe0 + int(s.idx)
	if int(s.idx) < len(bus) {
		b = bus[s.idx]
	}
	on, off := true, false
	limit := int64(powerLimitW * 1000)
	return trace.GPUInfo{
		Index: int(s.idx),
		Name:  "Synthetic H100",
		UUID: fmt.Sprintf("GPU-%08x-%04x-%04x-%04x-%012x",
			h>>32, (h>>16)&0xffff, h&0xffff, h2>>48, h2&0xffffffffffff),
		Serial:              fmt.Sprintf("SYN%010d", h2%1e10),
		PCIBusID:            fmt.Sprintf("00000000:%02X:00.0", b),
		DriverVersion:       "synth",
		NVMLVersion:         "synth",
		CUDAVersion:         "synth",
		PersistenceMode:     &on,
		PowerLimitMw:        &limit,
		DefaultPowerLimitMw: &limit,
		ECCEnabled:          &on,
		MIGEnabled:          &off,
		ComputeMode:         "Default",
		MaxSMClockMHz:       ptr[int32](loadedSMClock),
		MaxMemClockMHz:      ptr[int32](memClock),
		PStateAtStart:       ptr[int32](0),
		Processes:           []trace.GPUProcess{},
	}
}

var (
	noiseA = math.Exp(-float64(tick) / float64(noiseTau))
	noiseB = math.Sqrt(1 - noiseA*noiseA)
	tempA  = 1 - math.Exp(-float64(tick)/float64(tempTau))
)

// advance integrates the true power until E(t) is known for every t <= to.
func (s *gpuSim) advance(to int64) {
	for s.epoch+(s.base+int64(len(s.cum))-1)*tick <= to {
		k := s.base + int64(len(s.cum)) - 1
		t := s.epoch + k*tick
		m, f := s.p.mode(t)
		var level, sd float64
		switch m {
		case modeIdle:
			level, sd = s.idleW, idleNoiseW
		case modeRamp:
			level, sd = s.idleW+f*(s.loadW-s.idleW), idleNoiseW+f*(loadedNoiseW-idleNoiseW)
		case modeLoaded:
			level, sd = s.loadW, loadedNoiseW
		case modeHold:
			level, sd = s.holdW, holdNoiseW
		}
		if t < s.p.start {
			sd = 0 // the history before the run is plain idle
		}
		s.z = noiseA*s.z + noiseB*s.noise.NormFloat64()
		w := min(max(level+sd*s.z, 0), powerLimitW)
		target := idleTempC + s.tempOff + (loadedTempC-idleTempC)*(w-idlePowerW)/(loadedPowerW-idlePowerW)
		s.temp += tempA * (max(target, idleTempC+s.tempOff) - s.temp)
		s.temps = append(s.temps, s.temp)
		s.cum = append(s.cum, s.cum[len(s.cum)-1]+w*float64(tick)/1e9)
	}
}

// trim forgets the true power before keep.
func (s *gpuSim) trim(keep int64) {
	drop := floorDiv(keep-s.epoch, tick) - s.base
	if drop <= 0 || drop >= int64(len(s.temps)) {
		return
	}
	n := copy(s.cum, s.cum[drop:])
	s.cum = s.cum[:n]
	n = copy(s.temps, s.temps[drop:])
	s.temps = s.temps[:n]
	s.base += drop
}

// energy is the true energy (J) from the epoch to t.
func (s *gpuSim) energy(t int64) float64 {
	k := floorDiv(t-s.epoch, tick)
	i := k - s.base
	if i < 0 || i >= int64(len(s.cum)) {
		panic(fmt.Sprintf("synth: GPU %d: energy at %d outside the kept window", s.idx, t))
	}
	frac := float64(t-s.epoch-k*tick) / float64(tick)
	if frac == 0 {
		return s.cum[i]
	}
	return s.cum[i] + frac*(s.cum[i+1]-s.cum[i])
}

// meanW is the mean true power over [a, b].
func (s *gpuSim) meanW(a, b int64) float64 { return (s.energy(b) - s.energy(a)) / (float64(b-a) / 1e9) }

// lastUpdate is the sensors' latest update at or before t.
func (s *gpuSim) lastUpdate(t int64) int64 {
	base := s.epoch + s.sensorPhase
	return base + floorDiv(t-base, sensorPeriod)*sensorPeriod
}

func (s *gpuSim) pollTime(k int64) int64 {
	return s.p.start + k*stateInterval + 150_000 + s.jit.Int64N(350_000)
}

func (s *gpuSim) readAt(k int64) read {
	st := s.p.start + k*energyInterval + s.jit.Int64N(300_000)
	d := uniform(s.jit, 2700_000, readSlot)
	return read{mid: st + d/2, dur: d}
}

// rows appends this GPU's samples up to b (those from the previous call's b on)
// to the slices.
func (s *gpuSim) rows(b int64, dp []trace.DriverPowerSample, en []trace.EnergyRead, st []trace.DeviceState,
	al *allocs) ([]trace.DriverPowerSample, []trace.EnergyRead, []trace.DeviceState) {
	p := s.p
	s.advance(b)
	// Driver buffer: one sample per 20 ms grid point, the mean over the
	// 20 ms before it, for grid points in (start, final drain].
	for {
		t := s.epoch + s.driverPhase + s.driverK*driverPeriod
		if t >= b || t > p.drainEnd {
			break
		}
		dp = append(dp, trace.DriverPowerSample{GPU: s.idx, TimestampNs: t,
			DriverPowerMw: int64(math.Round(s.meanW(t-driverPeriod, t) * 1000))})
		s.driverK++
	}
	// Counter: periodic 1 Hz reads until the loops stop, merged with the
	// boundary reads and the final read.
	for {
		r, ok := s.takeRead(b)
		if !ok {
			break
		}
		ts := max(r.mid, s.lastEnergy+1)
		s.lastEnergy = ts
		u := s.lastUpdate(ts)
		en = append(en, trace.EnergyRead{GPU: s.idx, TimestampNs: ts,
			EnergyMj: s.offsetMj + int64(math.Floor(s.energy(u)*1000)), ReadDurationNs: r.dur})
	}
	for s.nextPoll < b && s.nextPoll < p.stop {
		st = append(st, s.state(s.nextPoll, al))
		s.stateRows++
		s.pollK++
		s.nextPoll = s.pollTime(s.pollK)
	}
	if fp := p.finalPoll[s.idx]; !s.finalDone && fp < b {
		st = append(st, s.state(fp, al))
		s.finalDone = true
	}
	return dp, en, st
}

// takeRead returns the next counter read before b: the earlier of the next
// periodic read (while the loops run) and the next boundary or final read.
func (s *gpuSim) takeRead(b int64) (read, bool) {
	extra := s.p.extraReads[s.idx]
	haveExtra := s.extraI < len(extra)
	periodic := s.nextRead.mid < s.p.stop
	switch {
	case haveExtra && (!periodic || extra[s.extraI].mid <= s.nextRead.mid):
		if r := extra[s.extraI]; r.mid < b {
			s.extraI++
			return r, true
		}
	case periodic:
		if r := s.nextRead; r.mid < b {
			s.readK++
			s.readRows++
			s.nextRead = s.readAt(s.readK)
			return r, true
		}
	}
	return read{}, false
}

// state is one device_state poll returning at t.
func (s *gpuSim) state(t int64, al *allocs) trace.DeviceState {
	t = max(t, s.lastState+1)
	s.lastState = t
	u := s.lastUpdate(t)
	v := al.state()
	v.instant = int64(math.Round(s.meanW(u-instantWindow, u) * 1000))
	v.average = int64(math.Round(s.meanW(u-averageWindow, u) * 1000))
	v.temp = int32(math.Round(s.temps[floorDiv(t-s.epoch, tick)-s.base]))
	v.pstate = 0
	v.memClock = memClock
	m, f := s.p.mode(t)
	switch m {
	case modeIdle:
		v.smClock, v.reasons, v.util, v.memUtil, v.mem = idleSMClock, reasonGpuIdle, 0, 0, idleMemBytes
	case modeHold:
		v.smClock, v.reasons, v.util, v.memUtil, v.mem = loadedSMClock, reasonGpuIdle, 0, 0, busyMemBytes
	default: // ramp or loaded
		v.smClock, v.reasons = loadedSMClock, 0
		v.util = int32(math.Round(f * float64(93+s.jit.IntN(8))))
		v.memUtil = int32(math.Round(f * float64(35+s.jit.IntN(20))))
		v.mem = busyMemBytes + int64(s.idx)<<20
	}
	return trace.DeviceState{GPU: s.idx, TimestampNs: t,
		InstantPowerMw: &v.instant, AveragePowerMw: &v.average, TemperatureC: &v.temp,
		SMClockMHz: &v.smClock, MemClockMHz: &v.memClock, PState: &v.pstate,
		GPUUtilPct: &v.util, MemUtilPct: &v.memUtil, ClockEventReasons: &v.reasons, MemoryUsedBytes: &v.mem}
}

// stateVals backs one DeviceState row's optional fields, so a row costs
// one allocation (from a slab) rather than ten.
type stateVals struct {
	instant, average, reasons, mem int64
	temp, smClock, memClock        int32
	pstate, util, memUtil          int32
}

// allocs hands out values for the rows' pointer fields from slabs; a slab
// is dropped once the rows that point into it have been written.
type allocs struct {
	states []stateVals
	ints   []int64
}

const slabSize = 4096

func (a *allocs) state() *stateVals {
	if len(a.states) == cap(a.states) {
		a.states = make([]stateVals, 0, slabSize)
	}
	a.states = a.states[:len(a.states)+1]
	return &a.states[len(a.states)-1]
}

func (a *allocs) int64(v int64) *int64 {
	if len(a.ints) == cap(a.ints) {
		a.ints = make([]int64, 0, slabSize)
	}
	a.ints = append(a.ints, v)
	return &a.ints[len(a.ints)-1]
}

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ptr[T any](v T) *T { return &v }
