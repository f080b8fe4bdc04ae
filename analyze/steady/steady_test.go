package steady

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// alternating returns n values a, b, a, b, ...
func alternating(n int, a, b float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = a
		if i%2 == 1 {
			x[i] = b
		}
	}
	return x
}

// Spec check (methodology-specs.md, "Steady state"): 50 values alternating
// 9/11 then 50 alternating 19/21, penalty 15*ln(100): changepoints at 50 and
// 100 (R's cpts convention: segment ends, n included).
func TestPELTSpecCheck(t *testing.T) {
	x := append(alternating(50, 9, 11), alternating(50, 19, 21)...)
	got := PELT(x, 15*math.Log(100), 2)
	if want := []int{50, 100}; !slices.Equal(got, want) {
		t.Fatalf("PELT = %v, want %v", got, want)
	}

	// Detect gives the same, and the segment parameters of R's param.est
	// (mean, variance divided by n): 10 and 1, 20 and 1.
	res := Detect(x, Options{})
	if want := []int{50, 100}; !slices.Equal(res.Changepoints, want) {
		t.Fatalf("Detect changepoints = %v, want %v", res.Changepoints, want)
	}
	wantSegs := []Segment{{0, 50, 10, 1}, {50, 100, 20, 1}}
	for i, s := range res.Segments {
		w := wantSegs[i]
		if s.Start != w.Start || s.End != w.End || math.Abs(s.Mean-w.Mean) > 1e-12 || math.Abs(s.Var-w.Var) > 1e-12 {
			t.Errorf("segment %d = %+v, want %+v", i, s, w)
		}
	}
	// The earlier segment is below the steady level: warmup for power.
	if res.Class != Warmup || res.SteadyStart != 50 {
		t.Errorf("class %q steady start %d, want warmup 50", res.Class, res.SteadyStart)
	}
}

// PELT against an exhaustive optimum: pruning must not change the answer.
func TestPELTMatchesExhaustive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1))
	for trial := range 40 {
		n := 20 + rng.IntN(40)
		x := make([]float64, n)
		level, sd := 0.0, 1.0
		for i := range x {
			if rng.Float64() < 0.08 {
				level, sd = rng.NormFloat64()*5, 0.5+rng.Float64()*2
			}
			x[i] = level + sd*rng.NormFloat64()
		}
		pen := 3 * math.Log(float64(n))
		got := PELT(x, pen, 2)
		want := optimalPartitioning(x, pen, 2)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: PELT %v, exhaustive %v", trial, got, want)
		}
	}
}

// optimalPartitioning is the O(n^2) dynamic programme PELT prunes.
func optimalPartitioning(x []float64, pen float64, minSeg int) []int {
	n := len(x)
	c := newNormalCost(x)
	best := make([]float64, n+1)
	last := make([]int, n+1)
	best[0] = -pen
	for t := 1; t <= n; t++ {
		best[t] = math.Inf(1)
		for tau := 0; tau <= t-minSeg; tau++ {
			if tau != 0 && tau < minSeg {
				continue
			}
			if s := best[tau] + c.cost(tau, t) + pen; s < best[t] {
				best[t], last[t] = s, tau
			}
		}
	}
	var ends []int
	for t := n; t > 0; t = last[t] {
		ends = append([]int{t}, ends...)
	}
	return ends
}

// powerTrace returns idle W for idleN samples, a linear ramp to plateau W
// over rampN samples, then the plateau, with Gaussian noise of sd W.
func powerTrace(rng *rand.Rand, idle, plateau, sd float64, idleN, rampN, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		level := plateau
		switch {
		case i < idleN:
			level = idle
		case i < idleN+rampN:
			level = idle + (plateau-idle)*float64(i-idleN+1)/float64(rampN)
		}
		x[i] = level + sd*rng.NormFloat64()
	}
	return x
}

func TestIdleRampPlateauIsWarmup(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 42))
		// 100 ms bins: 20 s idle at 75 W, 2 s ramp, 98 s at 300 W, sd 3 W.
		const idleN, rampN, n = 200, 20, 1200
		x := powerTrace(rng, 75, 300, 3, idleN, rampN, n)
		// Std-dev bounds (llem's for power): with the variance in W^2
		// the ramp counts as equivalent and the steady state takes it in.
		res := Detect(x, Options{StdDevBounds: true})
		if res.Class != Warmup {
			t.Errorf("seed %d: class %q, want warmup (segments %+v)", seed, res.Class, res.Segments)
		}
		if rampEnd := idleN + rampN; abs(res.SteadyStart-rampEnd) > 3 {
			t.Errorf("seed %d: steady start %d, want within 3 of the ramp end %d", seed, res.SteadyStart, rampEnd)
		}
	}
}

// A steady state cut in several equivalent segments (noise, a small
// step within the bounds) starts at the first of them, not at the last:
// a flat series is steady from its start.
func TestSteadyStartsAtFirstEquivalentSegment(t *testing.T) {
	segs := []Segment{
		{Start: 0, End: 30, Mean: 100, Var: 1},     // idle: below the steady level
		{Start: 30, End: 70, Mean: 300, Var: 0.25}, // equivalent to the last
		{Start: 70, End: 110, Mean: 300, Var: 4},   // equivalent (noisier)
		{Start: 110, End: 150, Mean: 301, Var: 0.25},
	}
	opts := Options{StdDevBounds: true}.withDefaults()
	class, _, first := classify(segs, 150, opts)
	if class != Warmup || segs[first].Start != 30 {
		t.Errorf("class %q, steady from segment %d (start %d), want warmup from 30", class, first, segs[first].Start)
	}
	// All equivalent: flat, steady from the first sample.
	class, _, first = classify(segs[1:], 150, opts)
	if class != Flat || first != 0 {
		t.Errorf("class %q, first %d, want flat from 0", class, first)
	}
	// A non-equivalent segment between equivalent ones ends the run.
	segs[2].Mean = 250
	class, _, first = classify(segs, 150, opts)
	if class != Warmup || segs[first].Start != 110 {
		t.Errorf("class %q, steady start %d, want warmup from 110", class, segs[first].Start)
	}
}

// An hour of 100 ms bins is fitted as 2,000 block means of 18 samples: the
// steady start is found to within a block of the ramp end.
func TestLongTraceIsFittedInBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const idleN, rampN, n = 600, 100, 36_000
	x := powerTrace(rng, 75, 300, 5, idleN, rampN, n)
	// Standard-deviation bounds, as llem analyze uses for power: with the
	// variance (W^2) the 10 s ramp's block is "equivalent" to the plateau
	// and the steady state would take it in.
	res := Detect(x, Options{StdDevBounds: true})
	block := n / DefaultMaxFitPoints
	if res.Class != Warmup || abs(res.SteadyStart-(idleN+rampN)) > block+3 {
		t.Errorf("class %q steady start %d, want warmup within %d of %d (changepoints %v)",
			res.Class, res.SteadyStart, block+3, idleN+rampN, res.Changepoints)
	}
	if want := DefaultPenaltyFactor * math.Log(DefaultMaxFitPoints); math.Abs(res.Penalty-want) > 1e-9 {
		t.Errorf("penalty %v, want 15*ln(2000) = %v", res.Penalty, want)
	}
}

// The same shape upside down: power that starts high and settles lower (a
// boost, then thermal throttling) is a slowdown for power; read as iteration
// times (Options.Times) the same numbers are a warmup, as in Barrett et al.
func TestDirectionPowerAndTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	x := powerTrace(rng, 450, 300, 3, 300, 30, 1500)

	if res := Detect(x, Options{}); res.Class != Slowdown {
		t.Errorf("power falling to a plateau: class %q, want slowdown", res.Class)
	}
	if res := Detect(x, Options{Times: true}); res.Class != Warmup {
		t.Errorf("times falling to a plateau: class %q, want warmup", res.Class)
	}
	rising := powerTrace(rng, 75, 300, 3, 300, 30, 1500)
	if res := Detect(rising, Options{Times: true}); res.Class != Slowdown {
		t.Errorf("times rising to a plateau: class %q, want slowdown", res.Class)
	}
}

// Barrett: a segment faster than the steady state anywhere before it makes
// the series a slowdown even if a slower segment lies in between.
func TestSlowdownOverrulesWarmup(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float64, 1500)
	for i := range x {
		level := 300.0
		switch {
		case i < 300:
			level = 400 // earliest: above steady -> slowdown for power
		case i < 600:
			level = 200 // then below steady -> warmup
		}
		x[i] = level + 3*rng.NormFloat64()
	}
	if res := Detect(x, Options{}); res.Class != Slowdown {
		t.Errorf("class %q, want slowdown (segments %+v)", res.Class, res.Segments)
	}
}

func TestPureNoiseIsFlat(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 11))
		x := make([]float64, 3000)
		for i := range x {
			x[i] = 300 + 5*rng.NormFloat64()
		}
		res := Detect(x, Options{})
		if res.Class != Flat || res.SteadyStart != 0 {
			t.Errorf("seed %d: class %q steady start %d, want flat 0 (changepoints %v)",
				seed, res.Class, res.SteadyStart, res.Changepoints)
		}
	}
}

func TestLateStepIsNone(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const n = 2000
	x := make([]float64, n)
	for i := range x {
		level := 300.0
		if i >= n*93/100 { // a step in the last 10% of the run
			level = 330
		}
		x[i] = level + 3*rng.NormFloat64()
	}
	res := Detect(x, Options{})
	if res.Class != None || res.SteadyStart != -1 {
		t.Errorf("class %q steady start %d, want none -1 (segments %+v)", res.Class, res.SteadyStart, res.Segments)
	}
}

// Single-sample spikes (a power reading caught mid-transient) must not cut
// the series; the same series fitted with the spikes kept does get cut, so
// the test shows the outlier rule at work.
func TestSpikesDoNotMakeChangepoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	x := make([]float64, 2000)
	for i := range x {
		x[i] = 300 + 3*rng.NormFloat64()
	}
	spikes := []int{150, 400, 401, 900, 1333, 1700, 1990}
	for _, i := range spikes {
		x[i] += 150
	}
	x[1200] -= 200 // and a dip
	x[1500] = math.NaN()

	res := Detect(x, Options{})
	if len(res.Changepoints) != 1 || res.Class != Flat {
		t.Errorf("with outlier removal: class %q changepoints %v, want flat [2000]", res.Class, res.Changepoints)
	}
	if want := len(spikes) + 2; res.Outliers < want {
		t.Errorf("outliers = %d, want at least %d", res.Outliers, want)
	}
	if kept := Detect(x, Options{KeepOutliers: true}); len(kept.Changepoints) <= 1 {
		t.Errorf("spikes kept: changepoints %v, want the spikes to cut the series", kept.Changepoints)
	}
}

// The first window/2 samples are never flagged (warmup_stats): a short
// idle start must survive as a segment, not vanish as outliers.
func TestOutlierWindowStartEdge(t *testing.T) {
	x := make([]float64, 1000)
	for i := range x {
		x[i] = 300 + float64(i%7) // deterministic ripple
	}
	x[10] = 900 // inside the first 100 samples: not tested
	x[500] = 900
	x[995] = 900 // near the end: the window is cut short but still used
	mask := outlierMask(x, 200)
	var flagged []int
	for i, m := range mask {
		if m {
			flagged = append(flagged, i)
		}
	}
	if want := []int{500, 995}; !slices.Equal(flagged, want) {
		t.Errorf("flagged %v, want %v", flagged, want)
	}
}

// Barrett's bounds add the variance, which for noisy power in W^2 swallows a
// real 30 W warmup; the standard deviation keeps it.
func TestStdDevBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	x := make([]float64, 2000)
	for i := range x {
		level := 300.0
		if i < 400 {
			level = 270
		}
		x[i] = level + 6*rng.NormFloat64() // variance 36 W^2 > 30 W step
	}
	if res := Detect(x, Options{}); res.Class != Flat {
		t.Errorf("variance bounds: class %q, want flat (changepoints %v)", res.Class, res.Changepoints)
	}
	if res := Detect(x, Options{StdDevBounds: true}); res.Class != Warmup || abs(res.SteadyStart-400) > 3 {
		t.Errorf("std-dev bounds: class %q start %d, want warmup near 400", res.Class, res.SteadyStart)
	}
}

func TestDeltaMakesSmallStepsEquivalent(t *testing.T) {
	// Steps of 2 W with almost no noise: PELT cuts them, the 1% default
	// delta (3 W) calls them equivalent; a 1 W absolute delta does not.
	x := make([]float64, 1000)
	for i := range x {
		x[i] = 298 + 0.01*float64(i%3)
		if i >= 300 {
			x[i] += 2
		}
	}
	if res := Detect(x, Options{}); len(res.Segments) != 2 || res.Class != Flat {
		t.Errorf("default delta: class %q segments %+v, want flat with 2 segments", res.Class, res.Segments)
	}
	if res := Detect(x, Options{Delta: 1}); res.Class != Warmup || res.Delta != 1 {
		t.Errorf("delta 1 W: class %q delta %v, want warmup", res.Class, res.Delta)
	}
}

func TestDetectEdgeCases(t *testing.T) {
	if res := Detect(nil, Options{}); res.Class != None || res.SteadyStart != -1 {
		t.Errorf("empty: %+v", res)
	}
	if res := Detect([]float64{1, 2, 3}, Options{}); res.Class != Flat || !slices.Equal(res.Changepoints, []int{3}) {
		t.Errorf("three samples: %+v", res)
	}
	constant := make([]float64, 500)
	for i := range constant {
		constant[i] = 250
	}
	if res := Detect(constant, Options{}); res.Class != Flat || len(res.Segments) != 1 {
		t.Errorf("constant: %+v", res)
	}
}

// Spec check (methodology-specs.md, "Steady state", MSER-5): 25 values of
// 10.0 then 75 values alternating 0/1 truncates 25 samples.
func TestMSER5SpecCheck(t *testing.T) {
	x := make([]float64, 25, 100)
	for i := range x {
		x[i] = 10
	}
	x = append(x, alternating(75, 0, 1)...)
	truncate, ok := MSER5(x)
	if truncate != 25 || !ok {
		t.Fatalf("MSER5 = %d, %v; want 25, true", truncate, ok)
	}
}

func TestMSER5(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Warmup over the first 300 samples, then noise: truncation near 300.
	x := make([]float64, 3000)
	for i := range x {
		x[i] = 300 + 2*rng.NormFloat64()
		if i < 300 {
			x[i] -= 100 * float64(300-i) / 300
		}
	}
	if truncate, ok := MSER5(x); !ok || truncate < 250 || truncate > 400 {
		t.Errorf("ramp: MSER5 = %d, %v; want about 300, true", truncate, ok)
	}
	// A series that only settles in its second half is invalid.
	y := make([]float64, 1000)
	for i := range y {
		y[i] = 300 + 0.01*rng.NormFloat64()
		if i < 700 {
			y[i] = float64(i)
		}
	}
	if truncate, ok := MSER5(y); ok {
		t.Errorf("late settling: MSER5 = %d, %v; want ok false", truncate, ok)
	}
	if _, ok := MSER5(make([]float64, 14)); ok {
		t.Error("14 samples: want ok false")
	}
	if truncate, ok := MSER5(make([]float64, 100)); truncate != 0 || !ok {
		t.Errorf("constant: MSER5 = %d, %v; want 0, true", truncate, ok)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// BenchmarkPELT50k: raw PELT on a 50,000-sample power series (idle, ramp,
// then one plateau with slow thermal drift and noise). This is PELT's worst
// case: no pruning happens on the plateau, so it is O(n^2) (~17 s). Detect
// never does this; see BenchmarkDetect50k.
func BenchmarkPELT50k(b *testing.B) { benchmarkPELT(b, benchTrace(50_000)) }

// BenchmarkPELT50kSteps: 50,000 samples whose level changes every 500 (load
// phases): pruning keeps few candidates and PELT is close to linear.
func BenchmarkPELT50kSteps(b *testing.B) {
	rng := rand.New(rand.NewPCG(2024, 7))
	x := make([]float64, 50_000)
	for i := range x {
		x[i] = 250 + 40*float64(i/500%3) + 5*rng.NormFloat64()
	}
	benchmarkPELT(b, x)
}

// BenchmarkPELT18k: 1 h of 5 Hz bins, one long plateau (worst case).
func BenchmarkPELT18k(b *testing.B) { benchmarkPELT(b, benchTrace(18_000)) }

// BenchmarkPELT2k: the most Detect fits by default, one long plateau.
func BenchmarkPELT2k(b *testing.B) { benchmarkPELT(b, benchTrace(2_000)) }

// BenchmarkDetect36k and 50k: the whole Detect (outliers, block means,
// PELT, classification) on 1 h of 100 ms bins and on 50,000 samples.
func BenchmarkDetect36k(b *testing.B) { benchmarkDetect(b, 36_000) }
func BenchmarkDetect50k(b *testing.B) { benchmarkDetect(b, 50_000) }

func benchmarkDetect(b *testing.B, n int) {
	x := benchTrace(n)
	b.ResetTimer()
	for b.Loop() {
		Detect(x, Options{})
	}
}

func benchmarkPELT(b *testing.B, x []float64) {
	pen := DefaultPenaltyFactor * math.Log(float64(len(x)))
	b.ResetTimer()
	for b.Loop() {
		PELT(x, pen, 2)
	}
}

func benchTrace(n int) []float64 {
	rng := rand.New(rand.NewPCG(2024, 6))
	x := powerTrace(rng, 75, 300, 5, n/20, n/100, n)
	for i := range x {
		x[i] += 10 * (1 - math.Exp(-float64(i)/float64(n/10))) // thermal drift
	}
	return x
}
