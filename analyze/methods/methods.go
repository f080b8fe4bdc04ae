// Package methods re-measures a window of a recorded run the way another
// tool's method would have measured it, from llem's high-rate trace: a
// poller that reads a power field every interval and integrates by
// trapezoids (nvidia-smi logs; perun, github.com/Helmholtz-AI-Energy/perun,
// integrates polled nvmlDeviceGetPowerUsage with np.trapz), an
// energy-counter delta between two reads (Zeus, CodeCarbon on Volta and
// newer), the mean of 1 Hz samples strictly inside the window (MLPerf
// Power) and Yang et al.'s phase-shifted polling. Comparing each with
// llem's own estimate of the same window shows what their numbers would
// have said about it (docs/replay.md).
//
// Every read a replayed tool makes at time t returns what the recorder
// last saw at or before t: the latest sample of the field, the latest
// counter read. Nothing is interpolated, because a real tool cannot look
// ahead; that staleness is part of the error being shown. A replayed
// poller cannot see faster than the recording: instant and average power
// are stored at 10 Hz, the driver's buffer at ~50 Hz, the counter at
// ~1 Hz plus a read at every phase and cycle boundary the recorder makes.
package methods

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

// Field is the power field a poller reads.
type Field string

// The fields of analyze.GPU a poller can read.
const (
	// Instant is FI_DEV_POWER_INSTANT: the 100 ms sensor (10 Hz in the trace).
	Instant Field = "instant"
	// Average is nvmlDeviceGetPowerUsage, a 1 s moving average on Ampere
	// and newer: what nvidia-smi's power.draw reports.
	Average Field = "average"
	// Driver is the driver's ~50 Hz power buffer.
	Driver Field = "driver"
)

type kind int

const (
	kindPoll kind = iota
	kindCounter
	kindCodeCarbon
	kindMLPerf
	kindYang4
)

// Defaults of the tools modelled, each from the tool's source.
const (
	// CodeCarbonInterval is CodeCarbon's measure_power_secs default (15 s:
	// github.com/mlco2/codecarbon, codecarbon/emissions_tracker.py,
	// BaseEmissionsTracker.__init__).
	CodeCarbonInterval = 15 * time.Second
	// MLPerfSamplePeriod is the SPEC PTDaemon analyzer's 1 Hz log
	// (../shared/methodology-specs.md, "Steady state", MLPerf Power).
	MLPerfSamplePeriod = time.Second
	// Yang4Interval and Yang4Shift are Yang et al.'s 100 ms polling and
	// their four groups shifted by 25 ms (arXiv:2312.02741;
	// ../shared/methodology-specs.md, "Power-sensor behaviour").
	Yang4Interval = 100 * time.Millisecond
	Yang4Shift    = 25 * time.Millisecond
	// MaxStale is how long after a series' last sample a read still
	// returns that sample: beyond it the field has stopped (a lost GPU,
	// the end of the recording) and the read fails. It is set above the
	// counter's ~1 s read interval, the slowest stored field.
	MaxStale = 2 * time.Second
	// minInterval keeps a poll from making billions of reads.
	minInterval = time.Millisecond
)

// Forms lists the valid method specs; Parse's errors end with it.
const Forms = "poll:<interval>:instant|average|driver, nvidia-smi:<interval>, codecarbon[:<interval>], " +
	"counter, mlperf, yang4 (an interval is a duration such as 100ms, 1s or 15s)"

// Method is one tool's way of measuring a window's energy. The zero value
// is not a method: get one from Parse.
type Method struct {
	spec     string
	kind     kind
	interval time.Duration
	field    Field
}

// String is the spec the method was parsed from (trimmed, lower case).
func (m Method) String() string { return m.spec }

// Describe says in one line what the method models and whose it is.
func (m Method) Describe() string {
	switch m.kind {
	case kindPoll:
		return fmt.Sprintf("reads %s power every %v from the window start, trapezoids over the reads", m.field, m.interval)
	case kindCounter:
		return "energy-counter read at the window start and end, the difference (Zeus on Volta and newer)"
	case kindCodeCarbon:
		return fmt.Sprintf("energy-counter deltas every %v from the window start plus one at the end (CodeCarbon)", m.interval)
	case kindMLPerf:
		return "mean of 1 Hz instant-power samples strictly inside the window, times its duration (MLPerf Power)"
	case kindYang4:
		return "instant power polled at 100 ms with offsets 0/25/50/75 ms, the four trapezoid integrals averaged (Yang et al.)"
	}
	return ""
}

// Parse reads one method spec (see Forms).
func Parse(spec string) (Method, error) {
	s := strings.ToLower(strings.TrimSpace(spec))
	bad := func(why string) (Method, error) {
		if why != "" {
			why += "; "
		}
		return Method{}, fmt.Errorf("method %q: %svalid forms: %s", spec, why, Forms)
	}
	parts := strings.Split(s, ":")
	m := Method{spec: s}
	switch parts[0] {
	case "poll":
		if len(parts) != 3 {
			return bad("poll takes an interval and a field, e.g. poll:100ms:instant")
		}
		iv, err := parseInterval(parts[1])
		if err != nil {
			return bad(err.Error())
		}
		switch f := Field(parts[2]); f {
		case Instant, Average, Driver:
			m.kind, m.interval, m.field = kindPoll, iv, f
		default:
			return bad(fmt.Sprintf("unknown field %q (instant, average or driver)", parts[2]))
		}
	case "nvidia-smi":
		if len(parts) != 2 {
			return bad("nvidia-smi takes an interval, e.g. nvidia-smi:1s")
		}
		iv, err := parseInterval(parts[1])
		if err != nil {
			return bad(err.Error())
		}
		m.kind, m.interval, m.field = kindPoll, iv, Average
	case "codecarbon":
		m.kind, m.interval = kindCodeCarbon, CodeCarbonInterval
		switch len(parts) {
		case 1:
		case 2:
			iv, err := parseInterval(parts[1])
			if err != nil {
				return bad(err.Error())
			}
			m.interval = iv
		default:
			return bad("codecarbon takes at most an interval, e.g. codecarbon:15s")
		}
	case "counter", "mlperf", "yang4":
		if len(parts) != 1 {
			return bad(parts[0] + " takes no arguments")
		}
		m.kind = map[string]kind{"counter": kindCounter, "mlperf": kindMLPerf, "yang4": kindYang4}[parts[0]]
		switch m.kind {
		case kindMLPerf:
			m.interval, m.field = MLPerfSamplePeriod, Instant
		case kindYang4:
			m.interval, m.field = Yang4Interval, Instant
		}
	default:
		if s == "" {
			return bad("empty")
		}
		return bad("unknown method")
	}
	return m, nil
}

// ParseList reads a comma-separated list of specs, as --as takes them.
func ParseList(specs string) ([]Method, error) {
	var out []Method
	for _, s := range strings.Split(specs, ",") {
		m, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func parseInterval(s string) (time.Duration, error) {
	iv, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("interval %q is not a duration such as 100ms or 1s", s)
	}
	if iv < minInterval {
		return 0, fmt.Errorf("interval %q must be at least %v", s, minInterval)
	}
	return iv, nil
}

// Measure is the energy of [startNs, endNs] (ns since the Unix epoch, as
// in the trace) summed over every GPU of d, as the method would have
// measured it, and the mean power that energy implies. ok is false (and
// both numbers NaN) when any GPU lacks what the method reads there.
func (m Method) Measure(d *analyze.Data, startNs, endNs int64) (energyJ, meanPowerW float64, ok bool) {
	nan := math.NaN()
	if d == nil || len(d.GPUs) == 0 || endNs <= startNs || m.spec == "" {
		return nan, nan, false
	}
	var sum float64
	for _, g := range d.GPUs {
		e, ok := m.measureGPU(d, g, startNs, endNs)
		if !ok {
			return nan, nan, false
		}
		sum += e
	}
	return sum, sum / (float64(endNs-startNs) / 1e9), true
}

func (m Method) measureGPU(d *analyze.Data, g *analyze.GPU, start, end int64) (float64, bool) {
	switch m.kind {
	case kindPoll:
		return pollJ(series(g, m.field, start, end), start, end, int64(m.interval), 0)
	case kindYang4:
		// Yang et al. run the workload in four groups shifted by 25 ms
		// against the sensor's 100 ms clock and average them. A recorded
		// window happened once, so the replay shifts the poll instead:
		// the four polls read the same sensor updates at four phases.
		// That averages out where the poll falls against the update
		// clock, but it cannot see the part of each 100 ms the sensor
		// does not average over, which only re-running the workload at
		// shifted phases reveals (docs/replay.md).
		s := series(g, Instant, start, end)
		var sum float64
		for k := range 4 {
			e, ok := pollJ(s, start, end, int64(Yang4Interval), int64(k)*int64(Yang4Shift))
			if !ok {
				return 0, false
			}
			sum += e
		}
		return sum / 4, true
	case kindCounter:
		// Zeus's ZeusMonitor on Volta and newer reads
		// nvmlDeviceGetTotalEnergyConsumption in begin_window and
		// end_window and returns the difference (github.com/ml-energy/zeus,
		// zeus/monitor/energy.py).
		a, ok1 := counterAt(g.Energy, start)
		b, ok2 := counterAt(g.Energy, end)
		if !ok1 || !ok2 || b < a {
			return 0, false
		}
		return float64(b-a) / 1000, true
	case kindCodeCarbon:
		// CodeCarbon reads the counter when the tracker starts
		// (GPUDevice.start), every measure_power_secs after it
		// (GPUDevice.delta: the counter's change since the last read) and
		// once more in stop(), and sums the deltas
		// (github.com/mlco2/codecarbon, codecarbon/core/gpu_device.py and
		// emissions_tracker.py). Its
		// fallback for GPUs without a counter, power times the interval,
		// never runs on Volta and newer and is not modelled.
		prev, ok := counterAt(g.Energy, start)
		if !ok {
			return 0, false
		}
		var mj int64
		for t := start + int64(m.interval); ; t += int64(m.interval) {
			t = min(t, end)
			c, ok := counterAt(g.Energy, t)
			if !ok {
				return 0, false
			}
			mj += c - prev
			prev = c
			if t == end {
				break
			}
		}
		if mj < 0 {
			return 0, false
		}
		return float64(mj) / 1000, true
	case kindMLPerf:
		return mlperfJ(series(g, Instant, start, end), d.Origin, start, end)
	}
	return 0, false
}

// series is the field of g a poller reads over [start, end], with the
// sample before and the one after (Samples.Around): a read at any time of
// the window sees what it would in the whole series.
func series(g *analyze.GPU, f Field, start, end int64) analyze.Series {
	switch f {
	case Instant:
		return g.InstantPower.Around(start, end)
	case Average:
		return g.AveragePower.Around(start, end)
	case Driver:
		return g.DriverPower.Around(start, end)
	}
	return analyze.Series{}
}

// reader returns, for increasing times, the latest sample at or before
// each: what a read at that time would have returned.
type reader struct {
	s analyze.Series
	i int // samples with T <= the last time asked
}

func (r *reader) at(t int64) (float64, bool) {
	n := len(r.s.T)
	if n == 0 {
		return 0, false
	}
	for r.i < n && r.s.T[r.i] <= t {
		r.i++
	}
	switch {
	case r.i == 0:
		// Before the first sample: held back to the window start for
		// up to EdgeHoldNs, as llem's own integration does.
		if r.s.T[0]-t > analyze.EdgeHoldNs {
			return 0, false
		}
		return r.s.V[0], true
	case t-r.s.T[r.i-1] > int64(MaxStale) && r.i == n:
		return 0, false
	}
	return r.s.V[r.i-1], true
}

// pollJ integrates by trapezoids the reads of s at start, at start+offset
// and every interval after it, and at end.
func pollJ(s analyze.Series, start, end, interval, offset int64) (float64, bool) {
	r := reader{s: s}
	prevT := start
	prevV, ok := r.at(start)
	if !ok {
		return 0, false
	}
	var e float64
	t := start + offset
	if offset == 0 {
		t += interval
	}
	for ; ; t += interval {
		t = min(t, end)
		v, ok := r.at(t)
		if !ok {
			return 0, false
		}
		e += (prevV + v) / 2 * float64(t-prevT) / 1e9
		prevT, prevV = t, v
		if t == end {
			return e, true
		}
	}
}

// mlperfJ is MLPerf Power's energy of a window: the analyzer logs a
// sample every second on its own clock (taken here as running from the
// start of the recording), the submission checker averages the samples
// whose timestamps lie strictly between power_begin and power_end, and
// energy is that mean times power_end - power_begin
// (github.com/mlcommons/inference, tools/submission/submission_checker.py). The
// analyzer's reading stands in here as the GPU's instant power.
func mlperfJ(s analyze.Series, origin, start, end int64) (float64, bool) {
	period := int64(MLPerfSamplePeriod)
	// The first tick strictly after start.
	k := floorDiv(start-origin, period) + 1
	r := reader{s: s}
	var sum float64
	n := 0
	for t := origin + k*period; t < end; t += period {
		v, ok := r.at(t)
		if !ok {
			return 0, false
		}
		sum += v
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n) * float64(end-start) / 1e9, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// counterAt is the counter value (mJ) a read at t returns: the latest
// stored read at or before t, held back for up to EdgeHoldNs before the
// first read; no read more than MaxStale after the last.
func counterAt(reads []trace.EnergyRead, t int64) (int64, bool) {
	n := len(reads)
	if n == 0 {
		return 0, false
	}
	i := sort.Search(n, func(k int) bool { return reads[k].TimestampNs > t })
	switch {
	case i == 0:
		if reads[0].TimestampNs-t > analyze.EdgeHoldNs {
			return 0, false
		}
		return reads[0].EnergyMj, true
	case i == n && t-reads[n-1].TimestampNs > int64(MaxStale):
		return 0, false
	}
	return reads[i-1].EnergyMj, true
}
