package steady

import (
	"fmt"
	"math"

	"github.com/llem/llem/analyze/trend"
)

// Steady-state methods of Power.
const (
	MethodPELT  = "pelt"  // PELT changepoints (Detect), segments merged by tolerance
	MethodMSER5 = "mser5" // MSER-5 truncation
)

// PowerOptions tune Power. Zero fields take the defaults in brackets.
type PowerOptions struct {
	Method string // MethodPELT or MethodMSER5 [pelt]
	// Changepoints tunes PELT (penalty, minimum segment, outliers).
	Changepoints Options
	// ToleranceAbs and TolerancePct make the practical tolerance: two
	// levels closer than max(ToleranceAbs, TolerancePct% of the higher)
	// are one steady state. The caller sets ToleranceAbs to the
	// instrument's accuracy (NVML's 5 W per GPU) [0, 1%].
	ToleranceAbs, TolerancePct float64
	// MinPoints is the shortest series judged at all [50]: shorter, the
	// result says it is too short.
	MinPoints int
	// TailFrac: trailing segments below this fraction of the highest
	// level are a shutdown or idle tail, left out of the steady state [0.5].
	TailFrac float64
	// TrendAlpha: a steady candidate whose Mann-Kendall p is below this and
	// whose fitted drift exceeds the tolerance is a ramp, not steady [0.05].
	TrendAlpha float64
	// SecondsPerPoint converts indices to seconds in notes [1].
	SecondsPerPoint float64
}

func (o PowerOptions) withDefaults() PowerOptions {
	if o.Method == "" {
		o.Method = MethodPELT
	}
	if o.TolerancePct == 0 {
		o.TolerancePct = 1
	}
	if o.MinPoints == 0 {
		o.MinPoints = 50
	}
	if o.TailFrac == 0 {
		o.TailFrac = 0.5
	}
	if o.TrendAlpha == 0 {
		o.TrendAlpha = 0.05
	}
	if o.SecondsPerPoint == 0 {
		o.SecondsPerPoint = 1
	}
	return o
}

// Step is a change of level between two merged stretches of the series.
type Step struct {
	At     int     `json:"at"`     // index where the later level starts
	From   float64 `json:"from"`   // level before
	To     float64 `json:"to"`     // level after
	Merged bool    `json:"merged"` // within the tolerance: one steady state
}

// PowerResult is the steady state of a power series.
type PowerResult struct {
	Method string `json:"method"`
	Class  string `json:"class"` // Flat, Warmup, Slowdown or None
	// SteadyStart and SteadyEnd bound the steady state, x[SteadyStart:
	// SteadyEnd]; -1 when there is none. SteadyEnd is before len(x) when a
	// tail was left out.
	SteadyStart int `json:"steady_start"`
	SteadyEnd   int `json:"steady_end"`
	// Level is the steady state's mean.
	Level float64 `json:"level"`
	// Tolerance is the tolerance at the steady level (the units of x).
	Tolerance float64 `json:"tolerance"`
	// Steps between the stretches PELT found (merged or not); none for
	// MSER-5.
	Steps []Step `json:"steps"`
	// TailStart is where a shutdown or idle tail begins (-1: none).
	TailStart int `json:"tail_start"`
	// Drift is the trend test of the steady candidate.
	Drift *trend.Trend `json:"drift,omitempty"`
	// Changepoints, Segments, Outliers and Penalty are PELT's (Detect).
	Changepoints []int     `json:"changepoints"`
	Segments     []Segment `json:"segments"`
	Outliers     int       `json:"outliers"`
	Penalty      float64   `json:"penalty"`
	Note         string    `json:"note,omitempty"`
}

// level is a stretch of merged segments.
type level struct {
	start, end int
	mean       float64
}

// Power finds the steady state of a power series x (one value per time
// bin, NaN where no sample covers a bin) for measurement: where the power
// has settled, as Barrett et al.'s classification asks, and judged with
// the tolerance a measurement has, so that a 0.7% step on a 6 kW system is
// not a change of steady state (docs/results.md, "Steady state"):
//
//  1. A series shorter than MinPoints is too short to judge.
//  2. PELT (Detect) cuts the series into segments; adjacent segments whose
//     levels differ by less than the tolerance are merged, the closest pair
//     first. With MSER-5, the truncation point is the only cut.
//  3. Trailing stretches below TailFrac of the highest level are a tail
//     (the GPU idling or shutting down after the load) and are left out:
//     the steady state of a loaded window is never its idle tail.
//  4. The last stretch left is the steady candidate. If it starts in the
//     last quarter of what is left, the power still changes near the end:
//     none. A lower stretch before it makes the class warmup, a higher one
//     slowdown; no other stretch: flat.
//  5. A candidate whose fitted drift exceeds the tolerance with a
//     significant Mann-Kendall trend is a ramp, not a steady state.
func Power(x []float64, o PowerOptions) PowerResult {
	o = o.withDefaults()
	res := PowerResult{Method: o.Method, Class: None, SteadyStart: -1, SteadyEnd: -1, TailStart: -1,
		Steps: []Step{}, Changepoints: []int{}, Segments: []Segment{}}
	finite := 0
	for _, v := range x {
		if isFinite(v) {
			finite++
		}
	}
	if finite < o.MinPoints {
		res.Note = fmt.Sprintf("too short to judge a steady state: %.1f s of power, at least %.1f s wanted",
			float64(finite)*o.SecondsPerPoint, float64(o.MinPoints)*o.SecondsPerPoint)
		return res
	}
	var levels []level
	if o.Method == MethodMSER5 {
		var ok bool
		if levels, ok = mserLevels(x); !ok {
			res.Note = "MSER-5 found no truncation in the first half: the power did not settle"
			return res
		}
	} else {
		cp := o.Changepoints
		if cp.MaxOutlierRun == 0 {
			cp.MaxOutlierRun = 3 // a sustained drop is a level, not a spike
		}
		d := Detect(x, cp)
		res.Changepoints, res.Segments, res.Outliers, res.Penalty = d.Changepoints, d.Segments, d.Outliers, d.Penalty
		if res.Segments == nil {
			res.Segments = []Segment{}
			res.Changepoints = []int{}
		}
		levels = mergeLevels(d.Segments, o, &res.Steps)
	}
	levels, res.TailStart = trimTail(levels, o)
	n := levels[len(levels)-1].end
	last := levels[len(levels)-1]
	res.Tolerance = o.tolerance(last.mean, last.mean)
	if len(levels) > 1 && last.start >= n-int(DefaultTailFraction*float64(n)) {
		res.Note = fmt.Sprintf("no steady state: the power still changes in the last quarter of the window (to %.4g from %.4g at %.1f s)",
			last.mean, levels[len(levels)-2].mean, float64(last.start)*o.SecondsPerPoint)
		return res
	}
	res.Class = Flat
	if len(levels) > 1 {
		res.Class = Warmup
		if levels[len(levels)-2].mean > last.mean {
			res.Class = Slowdown
		}
	}
	res.SteadyStart, res.SteadyEnd, res.Level = last.start, last.end, last.mean
	if d, tr, ok := drift(x[last.start:last.end]); ok {
		res.Drift = &tr
		if math.Abs(d) > res.Tolerance && tr.MKP < o.TrendAlpha {
			res.Note = fmt.Sprintf("no steady state: the power moves by %+.4g from the first to the last third of the last %.1f s (Mann-Kendall p = %.2g over tenths), more than the tolerance %.4g: a ramp",
				d, float64(last.end-last.start)*o.SecondsPerPoint, tr.MKP, res.Tolerance)
			res.Class, res.SteadyStart, res.SteadyEnd = None, -1, -1
			return res
		}
	}
	if res.TailStart >= 0 {
		res.Note = fmt.Sprintf("the last %.1f s are a tail at %.4g (below %.0f%% of the load's %.4g), left out of the steady state",
			float64(len(x)-res.TailStart)*o.SecondsPerPoint, meanOf(x[res.TailStart:]), o.TailFrac*100, maxLevel(levels))
	}
	return res
}

// tolerance between two levels.
func (o PowerOptions) tolerance(a, b float64) float64 {
	return max(o.ToleranceAbs, o.TolerancePct/100*max(math.Abs(a), math.Abs(b)))
}

// mergeLevels turns PELT's segments into levels, merging the closest
// adjacent pair while their means differ by no more than the tolerance;
// every boundary between segments is reported as a step, merged or not.
func mergeLevels(segs []Segment, o PowerOptions, steps *[]Step) []level {
	type lv struct {
		level
		weight float64 // samples, for the merged mean
	}
	var ls []lv
	for _, s := range segs {
		ls = append(ls, lv{level{s.Start, s.End, s.Mean}, float64(s.End - s.Start)})
	}
	for i := 1; i < len(ls); i++ {
		*steps = append(*steps, Step{At: ls[i].start, From: ls[i-1].mean, To: ls[i].mean})
	}
	for {
		best, bestGap := -1, math.Inf(1)
		for i := 1; i < len(ls); i++ {
			gap := math.Abs(ls[i].mean - ls[i-1].mean)
			if gap <= o.tolerance(ls[i].mean, ls[i-1].mean) && gap < bestGap {
				best, bestGap = i, gap
			}
		}
		if best < 0 {
			break
		}
		a, b := ls[best-1], ls[best]
		w := a.weight + b.weight
		ls[best-1] = lv{level{a.start, b.end, (a.mean*a.weight + b.mean*b.weight) / w}, w}
		ls = append(ls[:best], ls[best+1:]...)
	}
	out := make([]level, len(ls))
	for i := range ls {
		out[i] = ls[i].level
	}
	// A step inside a merged level was merged.
	for i := range *steps {
		for _, l := range out {
			if (*steps)[i].At > l.start && (*steps)[i].At < l.end {
				(*steps)[i].Merged = true
			}
		}
	}
	return out
}

// mserLevels: MSER-5's truncation as two levels (before and after it).
func mserLevels(x []float64) ([]level, bool) {
	var clean []float64
	for _, v := range x {
		if isFinite(v) {
			clean = append(clean, v)
		}
	}
	if len(clean) != len(x) {
		return nil, false // MSER-5 needs a gap-free series
	}
	d, ok := MSER5(x)
	if !ok {
		return nil, false
	}
	if d == 0 {
		return []level{{0, len(x), meanOf(x)}}, true
	}
	return []level{{0, d, meanOf(x[:d])}, {d, len(x), meanOf(x[d:])}}, true
}

// trimTail drops the trailing levels below TailFrac of the highest level;
// it returns the levels left and where the tail starts (-1: no tail).
func trimTail(ls []level, o PowerOptions) ([]level, int) {
	top := maxLevel(ls)
	k := len(ls)
	for k > 1 && ls[k-1].mean < o.TailFrac*top {
		k--
	}
	if k == len(ls) {
		return ls, -1
	}
	return ls[:k], ls[k].start
}

func maxLevel(ls []level) float64 {
	m := math.Inf(-1)
	for _, l := range ls {
		m = max(m, l.mean)
	}
	return m
}

// drift is how far the steady candidate x moves: the mean of its last
// third minus that of its first (means of thirds average out the
// oscillation of a power-capped GPU, which fools a slope), with the trend
// of its tenths (Mann-Kendall over ten block means, which damps the
// autocorrelation that makes a per-sample test too eager).
func drift(x []float64) (float64, trend.Trend, bool) {
	n := len(x)
	if n < 10 {
		return 0, trend.Trend{}, false
	}
	d := meanOf(x[n-n/3:]) - meanOf(x[:n/3])
	var t, y []float64
	for k := range 10 {
		m := meanOf(x[k*n/10 : (k+1)*n/10])
		if isFinite(m) {
			t = append(t, float64(k))
			y = append(y, m)
		}
	}
	tr, err := trend.Fit(t, y)
	return d, tr, err == nil && isFinite(d)
}

func meanOf(x []float64) float64 {
	var s float64
	n := 0
	for _, v := range x {
		if isFinite(v) {
			s += v
			n++
		}
	}
	return s / float64(n)
}
