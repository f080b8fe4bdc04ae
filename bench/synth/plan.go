package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/llem/llem/trace"
)

// Sensor and recorder timing, as an H100 under `llem record` with its
// default settings behaves (see record/sim and record/recorder.go).
const (
	tick           = int64(10 * time.Millisecond)  // resolution of the true power
	driverPeriod   = int64(20 * time.Millisecond)  // the driver's power-sample grid (50 Hz)
	driverDrain    = int64(500 * time.Millisecond) // the recorder's buffer drain (meta only)
	sensorPeriod   = int64(100 * time.Millisecond) // counter, instant and average power update
	instantWindow  = int64(25 * time.Millisecond)
	averageWindow  = int64(time.Second)
	energyInterval = int64(time.Second)             // counter reads, 1 Hz
	stateInterval  = int64(100 * time.Millisecond)  // device_state polls, 10 Hz
	readSlot       = int64(3200 * time.Microsecond) // longest counter read
	history        = int64(2 * time.Second)         // simulated idle time before the start
)

// Power and thermal model (synth-v1).
const (
	idlePowerW   = 75.0
	loadedPowerW = 600.0
	holdPowerW   = 120.0 // loaded idle: context held, SM clock up, no work
	powerLimitW  = 700.0
	// Per-GPU offsets are uniform in +-these.
	idleOffsetW   = 2.0
	loadedOffsetW = 15.0
	holdOffsetW   = 3.0
	// Noise is AR(1) with this correlation time and these standard deviations.
	noiseTau     = 100 * time.Millisecond
	idleNoiseW   = 0.5
	holdNoiseW   = 2.0
	loadedNoiseW = 20.0

	idleTempC     = 35.0
	loadedTempC   = 70.0
	tempOffsetC   = 1.5 // per-GPU, uniform in +-
	tempTau       = 90 * time.Second
	idleSMClock   = 345
	loadedSMClock = 1980
	memClock      = 2619
	idleMemBytes  = 512 << 20
	busyMemBytes  = 74 << 30
	reasonGpuIdle = 0x1
)

// modelString is meta.json's sim_truth.model for a configuration.
func modelString(c Config) string {
	return fmt.Sprintf("synth-v1 gpus=%d tick=%v idle=%gW(+-%g) loaded=%gW(+-%g) p0_hold=%gW(+-%g) "+
		"noise=AR1(tau=%v sd=%g/%g/%gW) ramp=%v temp=%g->%gC/%v limit=%gW",
		c.GPUs, time.Duration(tick), idlePowerW, idleOffsetW, loadedPowerW, loadedOffsetW, holdPowerW, holdOffsetW,
		noiseTau, idleNoiseW, holdNoiseW, loadedNoiseW, c.Ramp, idleTempC, loadedTempC, tempTau, powerLimitW)
}

// Salts keep the seeded random streams independent of each other.
const (
	saltPlan uint64 = iota + 1
	saltNoise
	saltJitter
	saltGPU
	saltSlot
	saltRunID
)

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRand is a PCG stream for (seed, salt, a, b).
func newRand(seed int64, salt uint64, a, b int) *rand.Rand {
	s2 := splitmix64(splitmix64(salt) ^ uint64(a)<<32 ^ uint64(b))
	return rand.New(rand.NewPCG(uint64(seed), s2))
}

// uniform returns a value in [lo, hi).
func uniform(r *rand.Rand, lo, hi int64) int64 { return lo + r.Int64N(hi-lo) }

// mode is what the GPUs are doing at one instant (all GPUs share the load).
type mode int

const (
	modeIdle   mode = iota
	modeRamp        // first Ramp of a cycle: rising from idle to loaded
	modeLoaded      // warm-up after the ramp, and measure
	modeHold        // p0_hold: loaded idle
)

// cycleSpan is one cycle's timeline, in ns since the Unix epoch.
type cycleSpan struct {
	n            int32
	start        int64 // cycle_start: the load begins
	rampEnd      int64 // steady load from here
	measureStart int64
	holdStart    int64 // phase_end measure, p0_hold begins
	end          int64 // cycle_end
}

// read is one energy-counter read: its midpoint and length.
type read struct{ mid, dur int64 }

// plan is the whole run's timeline, fixed before any sample is drawn.
type plan struct {
	cfg        Config
	start, end int64 // clock.wall_start_ns and the end of the recording
	stop       int64 // phase_end idle_after: the sampling loops stop
	drainEnd   int64 // the final drain: last driver sample time kept
	cycleLen   int64
	cycles     []cycleSpan
	fixed      []trace.Event // recorder events and the client's phase events, in time order
	extraReads [][]read      // per GPU: boundary and final counter reads, in time order
	finalPoll  []int64       // per GPU: the final device_state poll
}

// newPlan lays out the recorder's phases the way record.Record runs them:
// recording_start; idle_before; cycles separated by cool-downs; idle_after;
// then one final read of every sensor. Each recorder phase or cycle event is
// preceded by a counter read of every GPU, one after the other.
func newPlan(c Config) (*plan, error) {
	G := int64(c.GPUs)
	gap := G*readSlot + int64(time.Millisecond) // room for the boundary reads before a recorder event
	lead := 4*int64(time.Millisecond) + gap     // first reads, recording_start, reads
	tail := 5*int64(time.Millisecond) + G*4*int64(time.Millisecond)
	nc := int64(c.Cycles)
	rest := lead + int64(c.IdleBefore) + 2*nc*gap + (nc-1)*int64(c.Cooldown) + int64(c.IdleAfter) + tail
	cycleLen := (int64(c.Duration) - rest) / nc / 1000 * 1000
	minLen := int64(c.Warmup + c.P0Hold + time.Second)
	if cycleLen < minLen {
		return nil, fmt.Errorf("-duration %v is too short: %d cycles of warmup %v + measure >= 1s + p0_hold %v, idle %v + %v and %d cool-down(s) of %v need at least %v",
			c.Duration, c.Cycles, c.Warmup, c.P0Hold, c.IdleBefore, c.IdleAfter, c.Cycles-1, c.Cooldown,
			time.Duration(rest+nc*minLen).Round(time.Second))
	}
	p := &plan{cfg: c, start: c.StartNs, end: c.StartNs + int64(c.Duration), cycleLen: cycleLen}
	rng := newRand(c.Seed, saltPlan, 0, 0)
	p.extraReads = make([][]read, c.GPUs)
	ms := int64(time.Millisecond)
	us := int64(time.Microsecond)

	// rec adds a recorder event at t; with reads, every GPU's counter is
	// read in turn just before it, as readCounters does.
	rec := func(t int64, kind, name string, cycle *int32, attrs string, reads bool) {
		if reads {
			s := t - 200*us - G*readSlot
			for g := range c.GPUs {
				d := uniform(rng, 2700*us, readSlot)
				p.extraReads[g] = append(p.extraReads[g], read{mid: s + d/2, dur: d})
				s += d
			}
		}
		p.fixed = append(p.fixed, trace.Event{TimestampNs: t, GPU: trace.GPUAll, Kind: kind, Name: name,
			Cycle: cycle, Source: "recorder", Attrs: attrs})
	}
	client := func(t int64, kind, name string) {
		cts := t - 40*us
		p.fixed = append(p.fixed, trace.Event{TimestampNs: t, GPU: trace.GPUAll, Kind: kind, Name: name,
			ClientTimestampNs: &cts, Source: "client"})
	}

	rec(p.start+4*ms, "recording_start", "", nil, "", false)
	t := p.start + lead
	rec(t, "phase_start", "idle_before", nil, "", true)
	t += int64(c.IdleBefore)
	rec(t, "phase_end", "idle_before", nil, "", true)
	for i := range c.Cycles {
		n := int32(i + 1)
		cs := t + gap
		cy := cycleSpan{n: n, start: cs, rampEnd: cs + int64(c.Ramp), measureStart: cs + int64(c.Warmup) + 100*us,
			holdStart: cs + cycleLen - int64(c.P0Hold), end: cs + cycleLen}
		p.cycles = append(p.cycles, cy)
		rec(cs, "cycle_start", "", ptr(n), "", true)
		client(cs+50*ms, "phase_start", "warmup")
		client(cs+int64(c.Warmup), "phase_end", "warmup")
		client(cy.measureStart, "phase_start", "measure")
		client(cy.holdStart, "phase_end", "measure")
		client(cy.holdStart+100*us, "phase_start", "p0_hold")
		client(cy.end-20*ms, "phase_end", "p0_hold")
		rec(cy.end, "cycle_end", "", ptr(n), `{"exit_code":0}`, true)
		t = cy.end
		if i < c.Cycles-1 {
			t += gap
			rec(t, "phase_start", "cooldown", nil, "", true)
			t += int64(c.Cooldown)
			rec(t, "phase_end", "cooldown", nil, "", true)
		}
	}
	t += gap
	rec(t, "phase_start", "idle_after", nil, "", true)
	t += int64(c.IdleAfter)
	rec(t, "phase_end", "idle_after", nil, "", true)
	p.stop = t
	// Final reads, GPU after GPU: counter, buffer drain, state poll.
	for g := range c.GPUs {
		s := p.stop + 500*us + int64(g)*4*ms
		d := uniform(rng, 2700*us, readSlot)
		p.extraReads[g] = append(p.extraReads[g], read{mid: s + d/2, dur: d})
		p.finalPoll = append(p.finalPoll, s+d+300*us)
	}
	p.drainEnd = p.finalPoll[c.GPUs-1]
	if p.drainEnd >= p.end {
		return nil, fmt.Errorf("internal: timeline overruns the duration by %v", time.Duration(p.drainEnd-p.end))
	}
	return p, nil
}

// mode is the load at t, and for a ramp the fraction of it done.
func (p *plan) mode(t int64) (mode, float64) {
	for i := range p.cycles {
		cy := &p.cycles[i]
		if t < cy.start {
			break
		}
		if t >= cy.end {
			continue
		}
		switch {
		case t < cy.rampEnd:
			return modeRamp, float64(t-cy.start) / float64(cy.rampEnd-cy.start)
		case t < cy.holdStart:
			return modeLoaded, 1
		default:
			return modeHold, 0
		}
	}
	return modeIdle, 0
}
