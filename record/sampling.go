package record

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llem/llem/trace"
)

var execLookPath = exec.LookPath

// driverGapUs is the step between two consecutive driver power samples
// that counts as samples missing: the driver's grid is 20 ms, and the
// largest step seen on the H100 and H200 runs was 49 ms.
const driverGapUs = 100_000

// freshRead is how recent a counter read may be to serve a boundary
// instead of a read of its own. The counter's value moves only every
// ~100 ms (the H100's update period; analyze's counter_update_ms), so a
// second read within 10 ms adds no information, while each read costs
// ~4 ms of CPU (the driver waits for the value: BenchmarkNVMLCalls).
// Back-to-back boundaries (an idle phase's end and the next cycle's
// start) read twice before. The analysis splits the counter's energy
// between reads by the driver power's shape, so a window that begins or
// ends a few milliseconds from its read loses nothing.
const freshRead = 10 * time.Millisecond

// addGap records a span with missing rows in meta.json's gaps.
func (r *recorder) addGap(table string, gpu int, startNs, endNs int64, code, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaps = append(r.gaps, trace.Gap{Table: table, GPU: &gpu, StartNs: startNs, EndNs: endNs, Code: code, Message: msg})
}

// startLoops takes g's first readings and starts its sampling schedule:
// one goroutine for every kind of reading (runSchedule says why).
func (r *recorder) startLoops(ctx context.Context, wg *sync.WaitGroup, g GPU) {
	idx := int32(g.Index())
	live := r.liveState(g.Index())
	var energyMu sync.Mutex // the final read after the loops stop shares prev
	var prevMj uint64
	var havePrev bool
	var lastReadNs atomic.Int64 // when the last successful read returned
	readEnergy := func() (ok, failed bool) {
		t0 := r.clock.Now()
		v, err := g.EnergyMj()
		t1 := r.clock.Now()
		if err != nil {
			return r.readFailed(g, "energy", err), true
		}
		lastReadNs.Store(t1)
		energyMu.Lock()
		if havePrev && v < prevMj {
			// A decrease is a reset (driver reload), never negative energy:
			// keep the raw value and mark the reset for the analysis.
			r.event("energy_reset", "", nil, idx, fmt.Sprintf(`{"before_mj":%d,"after_mj":%d}`, prevMj, v))
		}
		prevMj, havePrev = v, true
		energyMu.Unlock()
		r.mu.Lock()
		if _, ok := r.firstMj[g.Index()]; !ok {
			r.firstMj[g.Index()] = v
		}
		r.lastMj[g.Index()] = v
		r.mu.Unlock()
		r.out.energy(trace.EnergyRead{GPU: idx, TimestampNs: (t0 + t1) / 2, EnergyMj: int64(v), ReadDurationNs: t1 - t0})
		return true, false
	}

	var lastSeenUs uint64 = uint64(r.clock.WallStartNs() / 1000) // keep only samples from the run
	var seen bool                                                // lastSeenUs is a sample's
	drain := func() (ok, failed bool) {
		samples, err := g.DriverPowerSamples(lastSeenUs)
		if err != nil {
			return r.readFailed(g, "driver_power", err), true
		}
		rows := make([]trace.DriverPowerSample, 0, len(samples))
		for _, s := range samples {
			if s.TimestampUs <= lastSeenUs {
				continue
			}
			if seen && len(rows) == 0 && s.TimestampUs-lastSeenUs > driverGapUs {
				// The buffer overflowed between two drains (a stalled
				// recorder), or the driver itself paused: either way
				// samples are missing here, and nothing may be
				// interpolated across them. The event lasts if the
				// recorder is killed; meta.json's gap is the summary.
				r.event("driver_power_gap", "", nil, idx, fmt.Sprintf(`{"last_us":%d,"next_us":%d,"returned":%d}`,
					lastSeenUs, s.TimestampUs, len(samples)))
				r.addGap(trace.TableDriverPower, g.Index(), int64(lastSeenUs)*1000, int64(s.TimestampUs)*1000, "driver_power_gap",
					"the driver's power-sample buffer overflowed between two drains: its samples in between are lost")
			}
			lastSeenUs, seen = s.TimestampUs, true
			rows = append(rows, trace.DriverPowerSample{GPU: idx, TimestampNs: int64(s.TimestampUs) * 1000, DriverPowerMw: int64(s.PowerMw)})
		}
		if len(rows) > 0 {
			r.mu.Lock()
			r.latestW[g.Index()] = float64(rows[len(rows)-1].DriverPowerMw) / 1000
			r.mu.Unlock()
			r.out.driverPower(rows)
		}
		return true, false
	}

	// writeState writes a state row stamped atNs and makes it the live one.
	writeState := func(st trace.DeviceState, atNs int64) {
		st.GPU, st.TimestampNs = idx, atNs
		if live != nil {
			latest := st
			live.Store(&latest)
		}
		r.out.state(st)
	}
	poll := func() (ok, failed bool) {
		st, err := g.State()
		if err != nil {
			return r.readFailed(g, "device_state", err), true
		}
		writeState(st, r.clock.Now())
		return true, false
	}

	// A boundary that follows another at once (an idle phase's end and
	// the cycle's start, a cycle's end and the cool-down's start) needs
	// no read of its own: see freshRead.
	readIfStale := func() {
		if r.clock.Now()-lastReadNs.Load() >= int64(freshRead) {
			readEnergy()
		}
	}
	r.boundary = append(r.boundary, func() {
		if !r.isLost(g.Index()) {
			readIfStale()
		}
	})
	// A GPU that can poll its state off the Go scheduler (StateStreamer)
	// does so; its polls are taken with the buffer drain's, on the same
	// deadlines, so they cost no wake-up of their own.
	var stream StateStream
	var polls []StatePoll
	stateStats := r.loops["device_state"]
	take := func() (ok, failed bool) {
		polls = stream.Take(polls[:0])
		ok = true
		for _, p := range polls {
			if p.Err != nil {
				failed = true
				stateStats.record(p.Late, p.Missed, true)
				if !r.readFailed(g, "device_state", p.Err) {
					ok = false // lost: the polls after it say so again
					break
				}
				continue
			}
			writeState(p.State, r.clock.At(p.At))
			stateStats.record(p.Late, p.Missed, false)
		}
		if !ok {
			stream.Stop() // the GPU is lost
		}
		return ok, failed
	}

	r.final = append(r.final, func() {
		if stream != nil {
			stream.Stop()
			take()
			stream.Close()
		}
		if r.isLost(g.Index()) {
			return
		}
		readEnergy() // always: the recording's last read bounds it
		drain()
		poll()
	})
	// The first reading of each kind is taken here, before the phases
	// begin, so the counter covers the run from its first event on.
	var tasks []*task
	for _, k := range []struct {
		name string
		step func() (bool, bool)
	}{{"device_state", poll}, {"driver_power", drain}, {"energy", readEnergy}} {
		ok, _ := k.step()
		if !ok {
			continue
		}
		interval := r.loops[k.name].interval
		if ss, can := g.(StateStreamer); can && k.name == "device_state" {
			s, err := ss.StreamStates(r.sampleStart.Add(interval), interval)
			if err == nil {
				stream = s
				stateStats.setThread("c")
				// Taken on the drain's schedule, with its own stats
				// (the polls' timeliness is recorded by take).
				tasks = append(tasks, &task{interval: r.loops["driver_power"].interval, stats: &loopStats{}, step: take})
				continue
			}
			fmt.Fprintf(r.cfg.Log, "llem: GPU %d: device state polled on the Go schedule (%v)\n", g.Index(), err)
		}
		tasks = append(tasks, &task{interval: interval, stats: r.loops[k.name], step: k.step})
	}
	if len(tasks) == 0 {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runSchedule(ctx, r.sampleStart, tasks)
	}()
}

// readFailed counts a failed read and decides whether the loop goes on. A
// lost GPU is marked in the trace and its loops stop; the other GPUs and
// the command carry on.
func (r *recorder) readFailed(g GPU, reading string, err error) (keepGoing bool) {
	r.mu.Lock()
	if r.errs[g.Index()] == nil {
		r.errs[g.Index()] = map[string]int64{}
	}
	r.errs[g.Index()][reading]++
	_, alreadyLost := r.lost[g.Index()]
	lost := errors.Is(err, ErrGPULost)
	if lost && !alreadyLost {
		r.lost[g.Index()] = r.clock.Now()
	}
	r.mu.Unlock()
	if lost {
		if !alreadyLost {
			r.event("gpu_lost", "", nil, int32(g.Index()), jsonString("error", err.Error()))
			fmt.Fprintf(r.cfg.Log, "llem: GPU %d lost (%v); recording goes on without it\n", g.Index(), err)
		}
		return false
	}
	return true
}

func (r *recorder) isLost(idx int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.lost[idx]
	return ok
}

// readCounters reads every GPU's energy counter now, on top of the loop's
// schedule. The recorder calls it at each boundary it makes (phases and
// cycles), so windows it knows of begin and end on a counter read rather
// than on an interpolation across a change of load.
func (r *recorder) readCounters() {
	for _, f := range r.boundary {
		f()
	}
}

// finalReads takes one last energy read and buffer drain per GPU after the
// loops stop, so the recording's end is covered by the counter.
func (r *recorder) finalReads() {
	for _, f := range r.final {
		f()
	}
}

// clientPhase is called by the event server when a client starts or ends
// a phase; it must not block, so it only asks readCountersOnPhase to read.
func (r *recorder) clientPhase() {
	select {
	case r.phaseRead <- struct{}{}:
	default: // a read is already due
	}
}

// readCountersOnPhase reads every GPU's energy counter each time a client
// starts or ends a phase, until ctx ends, so that the windows the client
// marks also begin and end on a counter read (within the event server's
// read interval of the mark).
func (r *recorder) readCountersOnPhase(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.phaseRead:
			r.readCounters()
		}
	}
}
