package steady

import "math"

// Classes of a series, as Barrett et al. name them.
const (
	Flat     = "flat"     // no changepoint, or every segment equivalent to the last
	Warmup   = "warmup"   // reaches a steady state from below (power) / from slower (times)
	Slowdown = "slowdown" // reaches a steady state from above (power) / from faster (times)
	None     = "none"     // no steady state: the series still changes near its end
)

// Defaults, from warmup_stats unless said otherwise.
const (
	DefaultOutlierWindow = 200  // samples in the rolling outlier window
	DefaultMinSegLen     = 2    // R's minimum for a change in mean and variance
	DefaultPenaltyFactor = 15.0 // penalty = 15 * ln(n)
	DefaultTailFraction  = 0.25 // Barrett: steady by the last 500 of 2000 iterations
	DefaultDeltaPct      = 1.0  // llem, for power: see the package comment
	// DefaultMaxFitPoints bounds the series PELT sees. PELT keeps every
	// candidate since the last changepoint, so a long stretch without one
	// costs O(n^2): 2.3 s for 18,000 samples. Longer series are fitted as
	// means of consecutive blocks; 2,000 is the length of Barrett's series
	// and takes at most ~30 ms.
	DefaultMaxFitPoints = 2000
)

// Options tune Detect. The zero value means the defaults above.
type Options struct {
	// Penalty per changepoint; 0 means DefaultPenaltyFactor * ln(n), with n
	// the number of samples left after outliers.
	Penalty float64
	// MinSegLen is the shortest segment PELT may cut; 0 means 2.
	MinSegLen int
	// OutlierWindow is the rolling window for outliers; 0 means 200.
	OutlierWindow int
	// MaxFitPoints: when more samples than this are left after outliers,
	// PELT runs on the means of MaxFitPoints consecutive blocks of them
	// (block sizes differ by at most one) and changepoints fall on block
	// edges. 0 means DefaultMaxFitPoints; negative fits every sample.
	MaxFitPoints int
	// KeepOutliers fits the changepoints on every finite sample.
	KeepOutliers bool
	// MaxOutlierRun, when above 0, keeps runs of more consecutive outliers
	// than this: a sustained change of level (a GPU's power dropping at the
	// end of a load) is not a spike. 0 drops every outlier, as Barrett et
	// al. do for iteration times.
	MaxOutlierRun int
	// Delta is the smallest difference from the steady level that counts,
	// in the units of x. 0 means DeltaPct percent of the steady mean.
	Delta float64
	// DeltaPct is used when Delta is 0; 0 means DefaultDeltaPct.
	DeltaPct float64
	// TailFraction: a non-equivalent segment ending in this last fraction
	// of the series means no steady state; 0 means 0.25.
	TailFraction float64
	// Times says that x is iteration times or latencies (higher = slower),
	// as in Barrett et al.; the default is power (higher = more load).
	Times bool
	// StdDevBounds widens the steady bounds and the segments by the standard
	// deviation instead of the variance (see the package comment).
	StdDevBounds bool
}

// Segment is one stretch between changepoints: x[Start:End]. Mean and Var
// (maximum-likelihood variance) are over its samples that were not outliers.
type Segment struct {
	Start int     `json:"start"`
	End   int     `json:"end"`
	Mean  float64 `json:"mean"`
	Var   float64 `json:"var"`
}

// Result of Detect.
type Result struct {
	Class string `json:"class"` // Flat, Warmup, Slowdown or None
	// SteadyStart is the first index of the steady state (the segments at
	// the end equivalent to the last one), -1 when
	// Class is None or the series is empty.
	SteadyStart int `json:"steady_start"`
	// Changepoints are the exclusive ends of the segments, len(x) included.
	Changepoints []int     `json:"changepoints"`
	Segments     []Segment `json:"segments"`
	Outliers     int       `json:"outliers"` // samples left out of the fit
	// Penalty and Delta are the values used, for the report.
	Penalty float64 `json:"penalty"`
	Delta   float64 `json:"delta"`
}

// Detect finds the changepoints of x and classifies it (see the package
// comment). A series with fewer than 2*MinSegLen usable samples is one
// segment; with no usable sample at all it is None.
func Detect(x []float64, opts Options) Result {
	opts = opts.withDefaults()
	n := len(x)

	// Outliers are dropped before the fit; kept maps fit indices back to x.
	var mask []bool
	if opts.KeepOutliers {
		mask = make([]bool, n)
		for i, v := range x {
			mask[i] = !isFinite(v)
		}
	} else {
		mask = outlierMask(x, opts.OutlierWindow)
		if opts.MaxOutlierRun > 0 {
			keepRuns(mask, x, opts.MaxOutlierRun)
		}
	}
	kept := make([]int, 0, n)
	values := make([]float64, 0, n)
	for i, v := range x {
		if !mask[i] {
			kept = append(kept, i)
			values = append(values, v)
		}
	}
	res := Result{Outliers: n - len(kept), SteadyStart: -1, Class: None}
	if len(values) == 0 {
		return res
	}

	// blockEdges[j] is the first kept sample of fitted point j.
	fitted, blockEdges := blockMeans(values, opts.MaxFitPoints)
	res.Penalty = opts.Penalty
	if res.Penalty == 0 {
		res.Penalty = DefaultPenaltyFactor * math.Log(float64(len(fitted)))
	}
	fitEnds := PELT(fitted, res.Penalty, opts.MinSegLen)

	// Back to indices of x: a segment ends just after its last kept sample,
	// so an outlier between two segments goes to the later one (as
	// warmup_stats shifts R's changepoints past removed outliers); the last
	// segment runs to len(x).
	start, fitStart := 0, 0
	for k, blockEnd := range fitEnds {
		fitEnd := blockEdges[blockEnd]
		end := kept[fitEnd-1] + 1
		if k == len(fitEnds)-1 {
			end = n
		}
		mean, variance := meanVar(values[fitStart:fitEnd])
		res.Segments = append(res.Segments, Segment{Start: start, End: end, Mean: mean, Var: variance})
		res.Changepoints = append(res.Changepoints, end)
		start, fitStart = end, fitEnd
	}

	var first int
	res.Class, res.Delta, first = classify(res.Segments, n, opts)
	if res.Class != None {
		res.SteadyStart = res.Segments[first].Start
	}
	return res
}

// blockMeans returns x itself when it has at most maxPoints values (or
// maxPoints < 0), else the means of maxPoints consecutive blocks; edges has
// one more entry than the result and edges[j]:edges[j+1] is block j.
func blockMeans(x []float64, maxPoints int) (means []float64, edges []int) {
	n := len(x)
	if maxPoints < 0 || n <= maxPoints {
		edges = make([]int, n+1)
		for i := range edges {
			edges[i] = i
		}
		return x, edges
	}
	means = make([]float64, maxPoints)
	edges = make([]int, maxPoints+1)
	for j := range edges {
		edges[j] = j * n / maxPoints
	}
	for j := range means {
		block := x[edges[j]:edges[j+1]]
		var s float64
		for _, v := range block {
			s += v
		}
		means[j] = s / float64(len(block))
	}
	return means, edges
}

func (o Options) withDefaults() Options {
	if o.MinSegLen == 0 {
		o.MinSegLen = DefaultMinSegLen
	}
	if o.MaxFitPoints == 0 {
		o.MaxFitPoints = DefaultMaxFitPoints
	}
	if o.OutlierWindow == 0 {
		o.OutlierWindow = DefaultOutlierWindow
	}
	if o.DeltaPct == 0 {
		o.DeltaPct = DefaultDeltaPct
	}
	if o.TailFraction == 0 {
		o.TailFraction = DefaultTailFraction
	}
	return o
}

// classify applies Barrett's rule to the segments of a series of n samples
// and returns the class and the delta it used.
// classify also returns the first segment of the steady state: the
// earliest of the segments at the end that are all equivalent to the last
// one (all of them for a flat series), so that changepoints cut by noise
// inside a steady state do not shorten it.
func classify(segs []Segment, n int, opts Options) (string, float64, int) {
	steady := segs[len(segs)-1]
	delta := opts.Delta
	if delta == 0 {
		delta = opts.DeltaPct / 100 * math.Abs(steady.Mean)
	}
	spread := func(s Segment) float64 {
		if opts.StdDevBounds {
			return math.Sqrt(s.Var)
		}
		return s.Var // Barrett: the variance, whatever the units
	}
	width := max(spread(steady), delta)
	lower, upper := steady.Mean-width, steady.Mean+width
	tailStart := n - int(opts.TailFraction*float64(n))

	class := Flat
	first, trailing := len(segs)-1, true
	for k := len(segs) - 2; k >= 0; k-- {
		s := segs[k]
		sLow, sHigh := s.Mean-spread(s), s.Mean+spread(s)
		if sHigh >= lower && sLow <= upper {
			if trailing {
				first = k
			}
			continue // overlaps the steady bounds: equivalent
		}
		trailing = false
		if s.End > tailStart {
			return None, delta, -1 // still changing near the end
		}
		below := sHigh < lower
		// For times, an earlier segment below (faster) is a slowdown; for
		// power, an earlier segment below is the GPU still ramping up.
		if below == opts.Times {
			return Slowdown, delta, first // overrules a warmup seen on a later segment
		}
		class = Warmup // keep scanning: an earlier slowdown overrules it
	}
	return class, delta, first
}

// keepRuns unmarks the finite samples of every run of more than maxRun
// consecutive outliers.
func keepRuns(mask []bool, x []float64, maxRun int) {
	for i := 0; i < len(mask); {
		if !mask[i] || !isFinite(x[i]) {
			i++
			continue
		}
		j := i
		for j < len(mask) && mask[j] && isFinite(x[j]) {
			j++
		}
		if j-i > maxRun {
			for k := i; k < j; k++ {
				mask[k] = false
			}
		}
		i = j
	}
}
