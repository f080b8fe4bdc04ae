package analyze

import (
	"math"
	"testing"

	"github.com/llem/llem/trace"
)

func TestCounterEnergyInterpolatesEdgesAndSkipsResets(t *testing.T) {
	// 100 W: 100 J per second of counter; a reset between 3 s and 4 s.
	reads := []trace.EnergyRead{
		{TimestampNs: 0, EnergyMj: 0}, {TimestampNs: 1e9, EnergyMj: 100_000}, {TimestampNs: 2e9, EnergyMj: 200_000},
		{TimestampNs: 3e9, EnergyMj: 300_000}, {TimestampNs: 4e9, EnergyMj: 50}, {TimestampNs: 5e9, EnergyMj: 100_050},
	}
	j, ok := CounterEnergyJ(reads, 0.5e9, 2.25e9)
	if !ok || math.Abs(j-175) > 1e-9 {
		t.Errorf("0.5..2.25 s: %v J (ok %v), want 175", j, ok)
	}
	j, ok = CounterEnergyJ(reads, 2e9, 5e9) // 1 s before the reset, 1 s after, the reset interval lost
	if !ok || math.Abs(j-200) > 1e-9 {
		t.Errorf("across reset: %v J, want 200", j)
	}
	if _, ok := CounterEnergyJ(reads, -1, 2e9); ok {
		t.Error("a window starting before the first read must not be ok")
	}
}

func TestIntegrateTrapezoids(t *testing.T) {
	// A ramp from 0 W at 0 s to 100 W at 10 s: 500 J overall, 125 J over 0..5 s.
	var p []PowerPoint
	for i := 0; i <= 10; i++ {
		p = append(p, PowerPoint{TimestampNs: int64(i) * 1e9, Watts: float64(10 * i)})
	}
	for _, tc := range []struct {
		a, b int64
		want float64
	}{{0, 10e9, 500}, {0, 5e9, 125}, {2.5e9, 7.5e9, 250}} {
		j, ok := IntegrateJ(p, tc.a, tc.b)
		if !ok || math.Abs(j-tc.want) > 1e-9 {
			t.Errorf("%d..%d: %v J, want %v", tc.a, tc.b, j, tc.want)
		}
	}
}

// A load step inside one read interval: the linear split puts half the
// interval's energy on each side; the shaped split follows the power.
func TestCounterWindowShapedSplit(t *testing.T) {
	// Reads at 0 and 1 s; power 100 W for 0.5 s then 500 W: 300 J.
	reads := []trace.EnergyRead{{TimestampNs: 0, EnergyMj: 0}, {TimestampNs: 1e9, EnergyMj: 300_000}, {TimestampNs: 2e9, EnergyMj: 800_000}}
	var p Series
	for ms := int64(0); ms <= 2000; ms += 10 {
		w := 100.0
		if ms > 500 {
			w = 500
		}
		p.add(ms*1e6, w)
	}
	tp := timedPower{Samples: new(SamplesOf(p)), name: "driver_power"}
	shaped := func(r []trace.EnergyRead, tp timedPower, a, b int64) (float64, bool) {
		e, _, ok := counterWindow(r, tp, Timing{}, a, b)
		return e, ok
	}
	lin, _ := CounterEnergyJ(reads, 0.5e9, 2e9)
	e, ok := shaped(reads, tp, 0.5e9, 2e9)
	if !ok {
		t.Fatal("not covered")
	}
	if math.Abs(lin-650) > 1e-9 {
		t.Errorf("linear split %v, want 650", lin)
	}
	// True energy after 0.5 s: 250 J in the first interval + 500 J.
	if math.Abs(e-750) > 2 {
		t.Errorf("shaped split %v, want ~750", e)
	}
	// Without power samples it falls back to the linear split.
	if e, _ := shaped(reads, timedPower{}, 0.5e9, 2e9); math.Abs(e-lin) > 1e-9 {
		t.Errorf("fallback %v, want %v", e, lin)
	}
	// Whole intervals are the counter's deltas exactly; a reset contributes nothing.
	if e, _ := shaped(reads, tp, 0, 2e9); e != 800 {
		t.Errorf("whole run %v, want 800", e)
	}
	reset := append(reads[:2:2], trace.EnergyRead{TimestampNs: 2e9, EnergyMj: 10})
	if e, _ := shaped(reset, tp, 0, 2e9); e != 300 {
		t.Errorf("with a reset %v, want 300", e)
	}
	if _, ok := shaped(reads, tp, -EdgeHoldNs-1, 2e9); ok {
		t.Error("a window further before the first read than EdgeHoldNs was accepted")
	}
}

// A lagging counter: each read holds the energy up to 60 ms before its
// stamp. Read as if it were exact, a window that starts at a step from
// 500 to 100 W takes the load's last 60 ms into it (24 J net of the end's
// lag); with the lag modelled the error is what the 20 ms power samples
// leave of the step, within the bound of the error terms.
func TestCounterWindowLag(t *testing.T) {
	var p Series
	power := func(ms int64) float64 {
		if ms < 1000 {
			return 500
		}
		return 100
	}
	truth := func(ms int64) float64 { // J from 0 to ms
		if ms < 1000 {
			return 0.5 * float64(ms)
		}
		return 500 + 0.1*float64(ms-1000)
	}
	for ms := int64(0); ms <= 3000; ms += 20 {
		p.add(ms*1e6, power(ms))
	}
	var reads []trace.EnergyRead
	for _, ms := range []int64{100, 1000, 2000, 2900} {
		reads = append(reads, trace.EnergyRead{TimestampNs: ms * 1e6, EnergyMj: int64(truth(ms-60) * 1000)})
	}
	tp := timedPower{Samples: new(SamplesOf(p)), name: "driver_power"}
	naive, _, _ := counterWindow(reads, tp, Timing{}, 1000e6, 2000e6)
	lagged, terms, ok := counterWindow(reads, tp, Timing{LagNs: 60e6, HalfNs: 50e6}, 1000e6, 2000e6)
	want := truth(2000) - truth(1000) // 100 J
	if !ok || math.Abs(lagged-want) > 5 || math.Abs(lagged-want) > q95(terms) {
		t.Errorf("with the lag modelled: %v J, want %v within %v", lagged, want, q95(terms))
	}
	if math.Abs(naive-want) < 20 {
		t.Errorf("read at face value: %v J; expected the step's 24 J in it", naive)
	}
	if b := q95(terms); b < 20 || b > 60 {
		t.Errorf("timing bound %v J from terms %v: want the load's 500 W x 50 ms at the start edge, and 100 W x 50 ms at the end", b, terms)
	}
}

// q95 of uniform errors: one term is its own bound; many independent ones
// add up like a normal's 1.96 sd.
func TestQ95(t *testing.T) {
	if got := q95([]float64{3}); got != 3 {
		t.Errorf("one term: %v", got)
	}
	if got := q95([]float64{1, 1, 1, 1}); math.Abs(got-1.96*math.Sqrt(4.0/3)) > 1e-12 {
		t.Errorf("four terms: %v", got)
	}
	if got := q95(nil); got != 0 {
		t.Errorf("no terms: %v", got)
	}
}

// A counter reset inside a window is counted (the timeline breaks its
// counter steps there) and contributes no energy.
func TestCounterResets(t *testing.T) {
	reads := []trace.EnergyRead{{TimestampNs: 0, EnergyMj: 1000}, {TimestampNs: 1e9, EnergyMj: 2000}, {TimestampNs: 2e9, EnergyMj: 10}, {TimestampNs: 3e9, EnergyMj: 1010}}
	for _, c := range []struct {
		a, b   int64
		j      float64
		resets int
		ok     bool
	}{
		{0, 1e9, 1, 0, true},
		{1e9, 2e9, 0, 1, true},
		{2.5e9, 3e9, 0.5, 0, true}, // linear between reads
		{2.5e9, 4e9, 0, 0, false},  // past the last read
	} {
		j, resets, ok := counterJ(reads, c.a, c.b)
		if ok != c.ok || (ok && (j != c.j || resets != c.resets)) {
			t.Errorf("%d..%d: %g J, %d resets, %v; want %g, %d, %v", c.a, c.b, j, resets, ok, c.j, c.resets, c.ok)
		}
	}
}
