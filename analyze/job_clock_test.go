package analyze

import (
	"math"
	"testing"

	"github.com/llem/llem/trace"
)

// A node's offset is interpolated between its start and end measurements
// (a disciplined clock drifts smoothly) and held outside them.
func TestNodeClockOffset(t *testing.T) {
	c := NodeClock{Offsets: []trace.ClockOffset{{At: "start", TimestampNs: 1000, OffsetNs: 10}, {At: "end", TimestampNs: 2000, OffsetNs: 30}}}
	for _, tc := range []struct{ t, off int64 }{{500, 10}, {1000, 10}, {1500, 20}, {1750, 25}, {2000, 30}, {9000, 30}} {
		if got := c.offsetAt(tc.t); got != tc.off {
			t.Errorf("offset at %d: %d, want %d", tc.t, got, tc.off)
		}
		if got := c.toReference(tc.t); got != tc.t-tc.off {
			t.Errorf("reference time of %d: %d, want %d", tc.t, got, tc.t-tc.off)
		}
	}
	once := NodeClock{Offsets: []trace.ClockOffset{{At: "start", TimestampNs: 1000, OffsetNs: -7}}}
	if once.offsetAt(5000) != -7 || (NodeClock{}).offsetAt(5000) != 0 {
		t.Errorf("one offset: %d; none: %d", once.offsetAt(5000), (NodeClock{}).offsetAt(5000))
	}
}

// The misalignment of two nodes is within the sum of their clock errors;
// of a job, the largest such sum.
func TestMisalignment(t *testing.T) {
	job := func(errs ...float64) *Job {
		j := &Job{}
		for _, e := range errs {
			j.Nodes = append(j.Nodes, &JobNode{Clock: NodeClock{ErrorNs: e}})
		}
		return j
	}
	for _, tc := range []struct {
		errs []float64
		want float64
	}{{[]float64{0}, 0}, {[]float64{0, 5}, 5}, {[]float64{0, 5, 7}, 12}, {[]float64{7, 0, 5, 1}, 12}} {
		if got := job(tc.errs...).MisalignmentNs(); got != tc.want {
			t.Errorf("errors %v: %v, want %v", tc.errs, got, tc.want)
		}
	}
	if got := job(0, math.NaN()).MisalignmentNs(); !math.IsNaN(got) {
		t.Errorf("an unknown error: %v, want NaN", got)
	}
}

// A node whose drift is stepped (meta.json clock.drift_ns) has that much
// more error: its sample stamps left the wall clock its offset was
// measured on.
func TestNodeClockError(t *testing.T) {
	m := &trace.Meta{Clock: trace.ClockAnchor{DriftNs: -400}, ClockSync: &trace.ClockSync{
		Offsets: []trace.ClockOffset{{At: "end", TimestampNs: 9, OffsetNs: 1, BoundNs: 30}, {At: "start", TimestampNs: 1, OffsetNs: 2, BoundNs: 20}}}}
	c := nodeClock(m, false, "n1", math.NaN(), 100)
	if c.Source != ClockMeasured || c.ErrorNs != 30+400+100 || c.Offsets[0].At != "start" {
		t.Errorf("%+v", c)
	}
	if r := nodeClock(m, true, "n1", 0, 0); r.Source != ClockReference || r.ErrorNs != 0 {
		t.Errorf("reference %+v", r)
	}
}

// The job's idle phases are cut to the span every node recorded, unless
// nothing of them would be left.
func TestClipIdle(t *testing.T) {
	evs := func() []trace.Event {
		return []trace.Event{{TimestampNs: 0, Kind: "phase_start", Name: "idle_before"}, {TimestampNs: 10, Kind: "phase_end", Name: "idle_before"},
			{TimestampNs: 12, Kind: "phase_start", Name: "measure"}, {TimestampNs: 88, Kind: "phase_end", Name: "measure"},
			{TimestampNs: 90, Kind: "phase_start", Name: "idle_after"}, {TimestampNs: 100, Kind: "phase_end", Name: "idle_after"}}
	}
	stamps := func(e []trace.Event) [6]int64 {
		var s [6]int64
		for i := range e {
			s[i] = e[i].TimestampNs
		}
		return s
	}
	for _, tc := range []struct {
		first, last int64
		want        [6]int64
	}{
		{2, 95, [6]int64{2, 10, 12, 88, 90, 95}},
		{-5, 120, [6]int64{0, 10, 12, 88, 90, 100}},
		{20, 80, [6]int64{0, 10, 12, 88, 90, 100}}, // nothing would be left: as recorded
	} {
		e := evs()
		clipIdle(e, tc.first, tc.last)
		if got := stamps(e); got != tc.want {
			t.Errorf("span %d..%d: %v, want %v", tc.first, tc.last, got, tc.want)
		}
	}
}
