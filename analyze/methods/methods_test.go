package methods

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

// t0 is an arbitrary epoch stamp, so that nothing depends on times near 0.
const t0 = int64(1_700_000_000_000_000_000)

const sec = int64(time.Second)

// truePower is a known power signal, W at ns from t0.
type truePower func(ns int64) float64

// sample samples p every period over [0, span] into a Series, each sample
// holding the value at its stamp (a sensor read at that instant).
func sample(p truePower, span, period int64) analyze.Samples {
	var s analyze.Series
	for t := int64(0); t <= span; t += period {
		s.T = append(s.T, t0+t)
		s.V = append(s.V, p(t))
	}
	return analyze.SamplesOf(s)
}

// energyOf integrates p exactly enough (1 µs steps) over [a, b] ns from t0.
func energyOf(p truePower, a, b int64) float64 {
	const step = int64(time.Microsecond)
	var e float64
	for t := a; t < b; t += step {
		e += p(t) * float64(min(step, b-t)) / 1e9
	}
	return e
}

// counterReads are cumulative counter reads (mJ) of p every period.
func counterReads(p truePower, span, period int64) []trace.EnergyRead {
	var out []trace.EnergyRead
	var mj float64
	for t := int64(0); t <= span; t += period {
		if t > 0 {
			mj += energyOf(p, t-period, t) * 1000
		}
		out = append(out, trace.EnergyRead{TimestampNs: t0 + t, EnergyMj: int64(math.Round(mj))})
	}
	return out
}

// oneGPU builds the Data of one GPU.
func oneGPU(g *analyze.GPU, span int64) *analyze.Data {
	return &analyze.Data{GPUs: []*analyze.GPU{g}, Origin: t0, End: t0 + span}
}

func mustParse(t *testing.T, spec string) Method {
	t.Helper()
	m, err := Parse(spec)
	if err != nil {
		t.Fatalf("Parse(%q): %v", spec, err)
	}
	return m
}

func measure(t *testing.T, spec string, d *analyze.Data, a, b int64) float64 {
	t.Helper()
	e, p, ok := mustParse(t, spec).Measure(d, t0+a, t0+b)
	if !ok {
		t.Fatalf("%s over [%d, %d] ns: not measurable", spec, a, b)
	}
	if want := e / (float64(b-a) / 1e9); math.Abs(p-want) > 1e-9*math.Abs(want) {
		t.Errorf("%s: mean power %g W, want energy/duration %g W", spec, p, want)
	}
	return e
}

// square is 300 W for the first second of every two, 100 W for the next.
func square(ns int64) float64 {
	if (ns/sec)%2 == 0 {
		return 300
	}
	return 100
}

// TestPollInstantRecoversSquareWave: instant power sampled at 10 Hz and
// polled at 100 ms gives the square wave's energy. Each edge is smeared
// into one 100 ms trapezoid (+-10 J), and rising and falling edges cancel.
func TestPollInstantRecoversSquareWave(t *testing.T) {
	span := 20 * sec
	d := oneGPU(&analyze.GPU{InstantPower: sample(square, span, sec/10)}, span)
	for _, w := range [][2]int64{{0, 10 * sec}, {2 * sec, 18 * sec}, {250_000_000, 12_250_000_000}} {
		truth := energyOf(square, w[0], w[1])
		got := measure(t, "poll:100ms:instant", d, w[0], w[1])
		if math.Abs(got-truth) > 10.5 { // one edge's half-trapezoid at most
			t.Errorf("window %v: poll:100ms:instant %.2f J, truth %.2f J", w, got, truth)
		}
		if y := measure(t, "yang4", d, w[0], w[1]); math.Abs(y-truth) > 10.5 {
			t.Errorf("window %v: yang4 %.2f J, truth %.2f J", w, y, truth)
		}
	}
	// Polled at 1 s, in phase with the wave, every read lands on a 300 W
	// second's first sample or a 100 W one's: still the right energy.
	if got, truth := measure(t, "poll:1s:instant", d, 0, 10*sec), energyOf(square, 0, 10*sec); math.Abs(got-truth) > 101 {
		t.Errorf("poll:1s:instant %.1f J, truth %.1f J", got, truth)
	}
}

// TestPollAverageLagsAfterStep: the 1 s average (nvidia-smi's power.draw)
// after a 100 -> 500 W step rises linearly over one second (a boxcar).
// Polled at 1 s from the step, a 2 s window misses exactly the boxcar's
// lag: 400 W x 0.5 s = 200 J of the true 1000 J (-20%).
func TestPollAverageLagsAfterStep(t *testing.T) {
	step := 5 * sec
	p := func(ns int64) float64 {
		if ns < step {
			return 100
		}
		return 500
	}
	boxcar := func(ns int64) float64 { // mean of p over [ns - 1 s, ns]
		f := math.Min(math.Max(float64(ns-step)/float64(sec), 0), 1)
		return 100 + 400*f
	}
	span := 10 * sec
	d := oneGPU(&analyze.GPU{
		InstantPower: sample(p, span, sec/10),
		AveragePower: sample(boxcar, span, sec/10),
	}, span)
	truth := energyOf(p, step, step+2*sec)
	if math.Abs(truth-1000) > 1e-6 {
		t.Fatalf("truth %.3f J, want 1000", truth)
	}
	for _, spec := range []string{"poll:1s:average", "nvidia-smi:1s"} {
		got := measure(t, spec, d, step, step+2*sec)
		if math.Abs((got-truth)-(-200)) > 1e-6 {
			t.Errorf("%s: %.3f J, want truth - 200 J = %.3f J (the 1 s boxcar's lag)", spec, got, truth-200)
		}
	}
	// Over a long window the lag is a fixed 200 J, a small share.
	long := measure(t, "nvidia-smi:1s", d, step, step+4*sec)
	if math.Abs(long-(energyOf(p, step, step+4*sec)-200)) > 1e-6 {
		t.Errorf("4 s window: %.3f J, want truth - 200 J", long)
	}
	// Instant power, polled at 100 ms, has no such lag.
	if got := measure(t, "poll:100ms:instant", d, step, step+2*sec); math.Abs(got-truth) > 1e-6 {
		t.Errorf("poll:100ms:instant: %.3f J, want %.3f J", got, truth)
	}
}

// TestCounterStaleReads: with reads every second, a Zeus-style counter
// delta uses the latest read at or before each edge. On a constant 300 W
// the error is the power times the difference of the two staleness
// times; on any signal it is at most one read interval's energy.
func TestCounterStaleReads(t *testing.T) {
	span := 20 * sec
	flat := func(int64) float64 { return 300 }
	d := oneGPU(&analyze.GPU{Energy: counterReads(flat, span, sec)}, span)
	a, b := 700*int64(time.Millisecond), 5300*int64(time.Millisecond)
	got := measure(t, "counter", d, a, b)
	// The reads at 0 s and 5 s: 5 s x 300 W, where the truth is 4.6 s.
	if want := 1500.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("counter %.3f J, want %.3f J (the reads at 0 s and 5 s)", got, want)
	}
	if e := got - 300*4.6; math.Abs(e-300*(0.7-0.3)) > 1e-9 {
		t.Errorf("error %.3f J, want 300 W x (0.7 - 0.3) s", e)
	}

	// A step and a ramp: the bound over many windows.
	shape := func(ns int64) float64 {
		switch {
		case ns < 4*sec:
			return 80
		case ns < 12*sec:
			return 650
		}
		return 650 - 30*float64(ns-12*sec)/float64(sec)
	}
	reads := counterReads(shape, span, sec)
	d = oneGPU(&analyze.GPU{Energy: reads}, span)
	var maxRead float64 // the largest energy of one read interval
	for i := 1; i < len(reads); i++ {
		maxRead = math.Max(maxRead, float64(reads[i].EnergyMj-reads[i-1].EnergyMj)/1000)
	}
	for a := int64(0); a < 15*sec; a += 370 * int64(time.Millisecond) {
		b := a + 3*sec + a/7
		got := measure(t, "counter", d, a, b)
		truth := energyOf(shape, a, b)
		if math.Abs(got-truth) > maxRead+0.01 {
			t.Errorf("[%d, %d] ms: counter %.1f J, truth %.1f J: off by more than one read interval (%.1f J)",
				a/1e6, b/1e6, got, truth, maxRead)
		}
		// CodeCarbon's deltas every 15 s (or 1 s) telescope to the same.
		for _, spec := range []string{"codecarbon", "codecarbon:1s"} {
			if cc := measure(t, spec, d, a, b); math.Abs(cc-got) > 1e-9 {
				t.Errorf("[%d, %d] ms: %s %.3f J, counter %.3f J", a/1e6, b/1e6, spec, cc, got)
			}
		}
	}
	// At read stamps the counter is exact.
	if got, truth := measure(t, "counter", d, 3*sec, 13*sec), energyOf(shape, 3*sec, 13*sec); math.Abs(got-truth) > 0.01 {
		t.Errorf("counter between reads: %.3f J, truth %.3f J", got, truth)
	}
}

// TestMLPerfConstantExact: on a constant signal the mean of the samples
// strictly inside the window times the duration is the energy.
func TestMLPerfConstantExact(t *testing.T) {
	span := 20 * sec
	flat := func(int64) float64 { return 250 }
	d := oneGPU(&analyze.GPU{InstantPower: sample(flat, span, sec/10)}, span)
	got := measure(t, "mlperf", d, 350*int64(time.Millisecond), 7850*int64(time.Millisecond))
	if want := 250 * 7.5; got != want {
		t.Errorf("mlperf %.6f J, want %.6f J", got, want)
	}
	// A window with no whole-second tick strictly inside has no sample.
	if _, _, ok := mustParse(t, "mlperf").Measure(d, t0+2*sec, t0+3*sec); ok {
		t.Error("mlperf over (2 s, 3 s): the ticks at 2 s and 3 s are not strictly inside; want not measurable")
	}
}

// TestMLPerfSamplesStrictlyInside: the samples are the whole-second ticks
// strictly inside the window, and only they.
func TestMLPerfSamplesStrictlyInside(t *testing.T) {
	span := 10 * sec
	// 1000 W at the whole-second ticks 2 s and 5 s, 0 W elsewhere: the
	// window (2 s, 5 s] sees ticks 3 and 4 only.
	p := func(ns int64) float64 {
		if ns == 2*sec || ns == 5*sec {
			return 1000
		}
		return 0
	}
	d := oneGPU(&analyze.GPU{InstantPower: sample(p, span, sec/10)}, span)
	if got := measure(t, "mlperf", d, 2*sec, 5*sec); got != 0 {
		t.Errorf("mlperf (2 s, 5 s): %g J, want 0 (the 1000 W ticks lie on the edges)", got)
	}
	if got := measure(t, "mlperf", d, 2*sec-1, 5*sec+1); got <= 0 {
		t.Errorf("mlperf (2 s - 1 ns, 5 s + 1 ns): %g J, want the edge ticks counted", got)
	}
}

// TestSumsOverGPUs: two GPUs measure as their sum; a GPU without the
// field makes the window unmeasurable.
func TestSumsOverGPUs(t *testing.T) {
	span := 10 * sec
	a := func(int64) float64 { return 100 }
	b := func(int64) float64 { return 300 }
	d := &analyze.Data{Origin: t0, End: t0 + span, GPUs: []*analyze.GPU{
		{Index: 0, InstantPower: sample(a, span, sec/10), Energy: counterReads(a, span, sec)},
		{Index: 1, InstantPower: sample(b, span, sec/10), Energy: counterReads(b, span, sec)},
	}}
	for _, spec := range []string{"poll:100ms:instant", "counter", "codecarbon", "mlperf", "yang4"} {
		if got := measure(t, spec, d, sec, 6*sec); math.Abs(got-2000) > 1e-6 {
			t.Errorf("%s: %.3f J, want 2000 J (100 W + 300 W for 5 s)", spec, got)
		}
	}
	for _, spec := range []string{"poll:1s:average", "poll:20ms:driver"} {
		if e, p, ok := mustParse(t, spec).Measure(d, t0+sec, t0+6*sec); ok || !math.IsNaN(e) || !math.IsNaN(p) {
			t.Errorf("%s without that field: %g J, %g W, ok %v; want NaN, NaN, false", spec, e, p, ok)
		}
	}
}

// TestCoverage: reads before the first sample are held back for at most
// EdgeHoldNs; reads past the last sample for at most MaxStale.
func TestCoverage(t *testing.T) {
	span := 10 * sec
	flat := func(int64) float64 { return 200 }
	d := oneGPU(&analyze.GPU{InstantPower: sample(flat, span, sec/10), Energy: counterReads(flat, span, sec)}, span)
	cases := []struct {
		a, b int64
		ok   bool
	}{
		{-analyze.EdgeHoldNs, span, true},
		{-analyze.EdgeHoldNs - 1, span, false},
		{0, span + int64(MaxStale), true},
		{0, span + int64(MaxStale) + 1, false},
	}
	for _, spec := range []string{"poll:100ms:instant", "counter"} {
		for _, c := range cases {
			if _, _, ok := mustParse(t, spec).Measure(d, t0+c.a, t0+c.b); ok != c.ok {
				t.Errorf("%s over [%d, %d] ns from the first sample: ok %v, want %v", spec, c.a, c.b, ok, c.ok)
			}
		}
	}
	if _, _, ok := mustParse(t, "counter").Measure(d, t0+5*sec, t0+5*sec); ok {
		t.Error("an empty window measured")
	}
	if _, _, ok := (Method{}).Measure(d, t0, t0+sec); ok {
		t.Error("the zero Method measured")
	}
}

func TestParse(t *testing.T) {
	good := map[string]struct {
		kind     kind
		interval time.Duration
		field    Field
	}{
		"poll:100ms:instant": {kindPoll, 100 * time.Millisecond, Instant},
		"poll:1s:average":    {kindPoll, time.Second, Average},
		"poll:20ms:driver":   {kindPoll, 20 * time.Millisecond, Driver},
		" nvidia-smi:1s ":    {kindPoll, time.Second, Average},
		"NVIDIA-SMI:500ms":   {kindPoll, 500 * time.Millisecond, Average},
		"codecarbon":         {kindCodeCarbon, 15 * time.Second, ""},
		"codecarbon:1s":      {kindCodeCarbon, time.Second, ""},
		"counter":            {kindCounter, 0, ""},
		"mlperf":             {kindMLPerf, time.Second, Instant},
		"yang4":              {kindYang4, 100 * time.Millisecond, Instant},
	}
	for spec, want := range good {
		m := mustParse(t, spec)
		if m.kind != want.kind || m.interval != want.interval || m.field != want.field {
			t.Errorf("Parse(%q) = %+v, want %+v", spec, m, want)
		}
		if m.String() != strings.ToLower(strings.TrimSpace(spec)) {
			t.Errorf("Parse(%q).String() = %q", spec, m.String())
		}
		if m.Describe() == "" {
			t.Errorf("Parse(%q).Describe() is empty", spec)
		}
	}
	bad := map[string]string{
		"":                    "empty",
		"zeus":                "unknown method",
		"poll":                "poll takes an interval and a field",
		"poll:1s":             "poll takes an interval and a field",
		"poll:1s:power":       `unknown field "power"`,
		"poll:fast:instant":   `interval "fast"`,
		"poll:0s:instant":     "at least 1ms",
		"poll:-1s:instant":    "at least 1ms",
		"poll:1s:instant:x":   "poll takes an interval and a field",
		"nvidia-smi":          "nvidia-smi takes an interval",
		"nvidia-smi:1":        `interval "1"`,
		"codecarbon:15s:x":    "at most an interval",
		"codecarbon:soon":     `interval "soon"`,
		"counter:1s":          "counter takes no arguments",
		"mlperf:instant":      "mlperf takes no arguments",
		"yang4:100ms":         "yang4 takes no arguments",
		"poll:100us:instant":  "at least 1ms",
		"poll:1s:instant,x=1": `unknown field`,
	}
	for spec, why := range bad {
		_, err := Parse(spec)
		if err == nil {
			t.Errorf("Parse(%q): no error", spec)
			continue
		}
		msg := err.Error()
		for _, part := range []string{`"` + spec + `"`, why, "valid forms: " + Forms} {
			if !strings.Contains(msg, part) {
				t.Errorf("Parse(%q) error %q does not say %q", spec, msg, part)
			}
		}
	}
}

func TestParseList(t *testing.T) {
	ms, err := ParseList("nvidia-smi:1s, counter,mlperf")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.String())
	}
	if got := strings.Join(names, " "); got != "nvidia-smi:1s counter mlperf" {
		t.Errorf("ParseList: %q", got)
	}
	for _, s := range []string{"counter,", "counter,,mlperf", "counter,bogus"} {
		if _, err := ParseList(s); err == nil {
			t.Errorf("ParseList(%q): no error", s)
		}
	}
}
