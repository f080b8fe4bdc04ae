package imports

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/llem/llem/trace"
)

// A gap in an imported log is a step forward between two samples of one
// device longer than GapPeriods median sampling periods and longer than
// MinGap. The logs llem imports poll at a steady pace (nvidia-smi -lms,
// PTDaemon about once a second, dcgmi dmon -d): their longest ordinary
// step is a few periods (4x in a 5 ms nvidia-smi log, 1.02x in a PTDaemon
// log), and a step under a second costs little energy if interpolated.
const (
	GapPeriods = 5
	MinGap     = time.Second
)

// Gap codes, in meta.json's gaps and warnings.
const (
	GapCode       = "import_gap"        // no samples for a while: the tool stopped, two logs, or the clock stepped forward
	ClockBackCode = "import_clock_back" // the log's clock went back: daylight-saving time ended, or the clock was set
)

// ClockStep is a step back in time in a log read in the order it was
// written: no sampler goes back in time, so its clock was set back.
type ClockStep struct {
	Line     int   // the log's line of the first sample after the step
	BeforeNs int64 // the sample before, as logged
	AfterNs  int64 // the sample after, as logged
	ShiftNs  int64 // added to the times from this sample on
}

// MendClock takes one device's sample times in the order the log gives
// them (lines, their line numbers) and undoes each step back in place: the
// samples from a step on are shifted so that the first of them comes one
// median sampling period after the sample before. The samplers llem
// imports poll on a timer of their own, not on the wall clock, so one
// period is what passed; what the log printed was the clock being set back
// (daylight-saving time ending, an administrator, NTP). Left alone, the
// two stretches of samples would be interleaved when sorted by time: data
// that never was. WriteClockSteps records each step as a gap of one
// period, the time llem assumed.
func MendClock(ts []int64, lines []int) []ClockStep {
	period := MedianStep(ts)
	var steps []ClockStep
	var shift int64
	for i := 1; i < len(ts); i++ {
		logged := ts[i] + shift
		before := ts[i-1] // already shifted
		if logged < before {
			s := ClockStep{BeforeNs: before, AfterNs: ts[i], ShiftNs: before + period - ts[i]}
			if i < len(lines) {
				s.Line = lines[i]
			}
			shift = s.ShiftNs
			steps = append(steps, s)
			logged = ts[i] + shift
		}
		ts[i] = logged
	}
	return steps
}

// MedianStep is the median of the positive steps between consecutive times
// (0 when there is none).
func MedianStep(ts []int64) int64 {
	var d []int64
	for i := 1; i < len(ts); i++ {
		if s := ts[i] - ts[i-1]; s > 0 {
			d = append(d, s)
		}
	}
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// WriteClockSteps records the steps back of one device's log as gaps of
// meta.json (code import_clock_back) and one warning.
func (w *Writer) WriteClockSteps(file string, gpu int, steps []ClockStep) {
	if len(steps) == 0 {
		return
	}
	g := gpu
	for _, s := range steps {
		back := time.Duration(s.BeforeNs - s.AfterNs)
		w.Gap(trace.Gap{GPU: &g, StartNs: s.BeforeNs, EndNs: s.AfterNs + s.ShiftNs, Code: ClockBackCode, Message: fmt.Sprintf(
			"device %d: %s:%d: the log's clock goes back %s (%s, then %s)%s: the samples from this line on are shifted by %s so that they follow the sample before by one sampling period; the time between these two samples is assumed, not measured",
			gpu, file, s.Line, fmtDur(back), fmtTime(s.BeforeNs), fmtTime(s.AfterNs), dstHint(back), fmtDur(time.Duration(s.ShiftNs)))})
	}
	w.Warn(trace.Warning{Code: ClockBackCode, GPU: &g, Message: fmt.Sprintf(
		"device %d: the log's clock goes back %d time(s) (%s): later samples were shifted to keep their order, never interleaved; see meta.json gaps",
		gpu, len(steps), describeSteps(steps))})
}

func describeSteps(steps []ClockStep) string {
	var s string
	for i, st := range steps {
		if i == 3 {
			return s + ", ..."
		}
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s at line %d", fmtDur(time.Duration(st.BeforeNs-st.AfterNs)), st.Line)
	}
	return s
}

// findGaps returns a gap for every step forward of a device's rows in a
// table longer than GapPeriods periods and MinGap. times must be sorted.
func findGaps(table string, gpu int32, times []int64) []trace.Gap {
	period := MedianStep(times)
	limit := max(GapPeriods*period, int64(MinGap))
	var gaps []trace.Gap
	for i := 1; i < len(times); i++ {
		step := times[i] - times[i-1]
		if step <= limit {
			continue
		}
		g := int(gpu)
		gaps = append(gaps, trace.Gap{Table: table, GPU: &g, StartNs: times[i-1], EndNs: times[i], Code: GapCode, Message: fmt.Sprintf(
			"device %d, %s: no sample for %s, from %s to %s (the sampling period is %s)%s: nothing is known of that time",
			gpu, table, fmtDur(time.Duration(step)), fmtTime(times[i-1]), fmtTime(times[i]), fmtDur(time.Duration(period)),
			dstHint(time.Duration(step)))})
	}
	return gaps
}

// dstHint names a daylight-saving change for a step of an hour: what a log
// of local time shows at one, though a pause of an hour looks the same.
func dstHint(step time.Duration) string {
	if math.Abs(float64(step-time.Hour)) <= float64(2*time.Second) {
		return "; an hour: a daylight-saving change if the log's times are local"
	}
	return ""
}

// writeGaps finds the gaps of every device in every table of the import.
func (w *Writer) writeGaps() {
	found := gapsOf(trace.TableDriverPower, w.driver, func(r trace.DriverPowerSample) (int32, int64) { return r.GPU, r.TimestampNs })
	found = append(found, gapsOf(trace.TableEnergy, w.energy, func(r trace.EnergyRead) (int32, int64) { return r.GPU, r.TimestampNs })...)
	found = append(found, gapsOf(trace.TableState, w.state, func(r trace.DeviceState) (int32, int64) { return r.GPU, r.TimestampNs })...)
	if len(found) == 0 {
		return
	}
	// A gap of several tables (dmon's power and energy) is one gap.
	type span struct {
		gpu        int
		start, end int64
	}
	spans := map[span]bool{}
	var total time.Duration
	for _, g := range found {
		sp := span{*g.GPU, g.StartNs, g.EndNs}
		if !spans[sp] {
			spans[sp] = true
			total += time.Duration(g.EndNs - g.StartNs)
		}
	}
	w.gaps = append(w.gaps, found...)
	w.Warn(trace.Warning{Code: GapCode, Message: fmt.Sprintf(
		"%d gap(s) in the samples, %s in all, the first from %s: nothing is interpolated or integrated across them; see meta.json gaps",
		len(spans), fmtDur(total), fmtTime(found[0].StartNs))})
}

func gapsOf[T any](table string, rows []T, key func(T) (int32, int64)) []trace.Gap {
	byGPU := map[int32][]int64{}
	for _, r := range rows {
		g, t := key(r)
		byGPU[g] = append(byGPU[g], t)
	}
	var gaps []trace.Gap
	for _, g := range slices.Sorted(maps.Keys(byGPU)) {
		ts := byGPU[g]
		slices.Sort(ts)
		gaps = append(gaps, findGaps(table, g, ts)...)
	}
	slices.SortStableFunc(gaps, func(a, b trace.Gap) int { return cmp.Compare(a.StartNs, b.StartNs) })
	return gaps
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000") }
