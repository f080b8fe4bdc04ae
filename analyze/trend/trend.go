// Package trend measures drift in a power (or any) series over time: the
// least-squares slope and the drift it implies over the window, the
// Theil-Sen slope, which a few spikes cannot drag, and the Mann-Kendall test
// for a monotonic trend. No published threshold says how much drift is too
// much (methodology-specs.md, "Trend and thermal drift"), so the package
// reports numbers and leaves flagging to documented defaults in the caller.
//
// Drift: DriftPct = slope * T / mean(y) * 100, with T = t_last - t_first the
// length of the window. It is the change of the fitted line across the
// window relative to the mean level: P = 300 + 0.1 t over t = 0..99 gives
// 0.1 * 99 / 304.95 * 100 = 3.2464%, the spec's value. (T = n = 100 would
// give 3.279%, and dividing by the intercept 3.3%.)
//
// Rank statistics and long series: Theil-Sen needs all n(n-1)/2 pairwise
// slopes and Mann-Kendall's S all n(n-1)/2 pairwise signs. Up to
// MaxRankPoints (2,000) samples both use every sample; a longer series is
// subsampled deterministically to 2,000 evenly spaced samples (indices
// floor(k*(n-1)/1999)) for both, and Trend.RankN says how many were used.
// That keeps them exact on what they see, reproducible, and at ~2 million
// pairs (tens of ms). Least squares always uses every sample.
//
// Mann-Kendall assumes independent samples. Power traces are autocorrelated,
// which makes its p-value too small; thinning to 2,000 samples reduces but
// does not remove that, so read MKP as descriptive, next to the slope.
package trend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/llem/llem/internal/order"
)

// MaxRankPoints is the most samples Theil-Sen and Mann-Kendall use.
const MaxRankPoints = 2000

// Trend of y over t.
type Trend struct {
	Slope     float64 `json:"slope"`     // least squares, units of y per unit of t
	Intercept float64 `json:"intercept"` // least squares, y at t = 0
	DriftPct  float64 `json:"drift_pct"` // Slope * (t_last - t_first) / mean(y) * 100
	// TheilSenSlope is the median of the pairwise slopes.
	TheilSenSlope float64 `json:"theil_sen_slope"`
	MKS           float64 `json:"mk_s"`   // Mann-Kendall S
	MKVar         float64 `json:"mk_var"` // Var(S) with the correction for ties in y
	MKZ           float64 `json:"mk_z"`   // Z with continuity correction
	MKP           float64 `json:"mk_p"`   // two-sided p-value
	N             int     `json:"n"`      // samples fitted by least squares
	// RankN is the number of samples Theil-Sen and Mann-Kendall used:
	// N, or MaxRankPoints for a longer series.
	RankN int `json:"rank_n"`
}

// Fit computes the Trend of y over t. t must be strictly increasing (a time
// series in order), t and y of equal length, at least 3 samples, all finite,
// and mean(y) must not be 0 (drift is relative to it).
func Fit(t, y []float64) (Trend, error) {
	if len(t) != len(y) {
		return Trend{}, fmt.Errorf("trend: t has %d values but y has %d", len(t), len(y))
	}
	n := len(y)
	if n < 3 {
		return Trend{}, fmt.Errorf("trend: need at least 3 samples, got %d", n)
	}
	for i := range n {
		if !isFinite(t[i]) {
			return Trend{}, fmt.Errorf("trend: t[%d] is %v", i, t[i])
		}
		if !isFinite(y[i]) {
			return Trend{}, fmt.Errorf("trend: y[%d] is %v", i, y[i])
		}
		if i > 0 && t[i] <= t[i-1] {
			return Trend{}, fmt.Errorf("trend: t is not strictly increasing: t[%d] = %v after t[%d] = %v", i, t[i], i-1, t[i-1])
		}
	}

	slope, intercept, meanY := leastSquares(t, y)
	if meanY == 0 {
		return Trend{}, fmt.Errorf("trend: mean of y is 0, so drift in %% is undefined")
	}
	tr := Trend{
		Slope:     slope,
		Intercept: intercept,
		DriftPct:  slope * (t[n-1] - t[0]) / meanY * 100,
		N:         n,
	}

	rt, ry := evenlySpaced(t, MaxRankPoints), evenlySpaced(y, MaxRankPoints)
	tr.RankN = len(ry)
	tr.TheilSenSlope = theilSen(rt, ry)
	tr.MKS, tr.MKVar, tr.MKZ, tr.MKP = mannKendall(ry)
	return tr, nil
}

// TempSlopePerMin is the least-squares slope of temperature (C) over time
// (s), in C per minute. It returns NaN when the slope is undefined: fewer
// than 2 samples, unequal lengths, non-finite values or a single time.
func TempSlopePerMin(tSeconds, tempC []float64) float64 {
	if len(tSeconds) != len(tempC) || len(tSeconds) < 2 {
		return math.NaN()
	}
	for i := range tSeconds {
		if !isFinite(tSeconds[i]) || !isFinite(tempC[i]) {
			return math.NaN()
		}
	}
	slope, _, _ := leastSquares(tSeconds, tempC)
	return slope * 60
}

// leastSquares fits y = intercept + slope*t. Both are centred first, so
// that timestamps in Unix seconds (~1.7e9) do not swamp the sums. The
// slope is NaN when all t are equal.
func leastSquares(t, y []float64) (slope, intercept, meanY float64) {
	meanT := mean(t)
	meanY = mean(y)
	var sxy, sxx float64
	for i := range t {
		dt := t[i] - meanT
		sxy += dt * (y[i] - meanY)
		sxx += dt * dt
	}
	slope = sxy / sxx
	return slope, meanY - slope*meanT, meanY
}

// theilSen is the median of (y_j - y_i) / (t_j - t_i) over all pairs i < j,
// as scipy.stats.theilslopes (t is strictly increasing, so every pair has
// t_j > t_i); an even count takes the mean of the two middle slopes.
func theilSen(t, y []float64) float64 {
	if m, ok := theilSenBracketed(t, y); ok {
		return m
	}
	n := len(y)
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := range n {
		for j := i + 1; j < n; j++ {
			slopes = append(slopes, (y[j]-y[i])/(t[j]-t[i]))
		}
	}
	return order.MedianSelect(slopes)
}

// bracketMinPairs: below it, theilSen keeps every slope and selects.
const bracketMinPairs = 50_000

// theilSenBracketed is theilSen without keeping two million slopes: a
// seeded sample of slopes brackets the middle ones, one pass over every
// pair counts the slopes below the bracket and keeps those inside it (a
// few percent), and the middle ones are selected among those. Each slope
// is the same expression as theilSen's, so the median is the same number,
// bit for bit. ok is false (for theilSen to do it the long way) for a short
// series or, rarely, a bracket that missed.
func theilSenBracketed(t, y []float64) (float64, bool) {
	n := len(y)
	pairs := n * (n - 1) / 2
	if pairs < bracketMinPairs {
		return 0, false
	}
	kLo, kHi := (pairs-1)/2, pairs/2 // the middle ranks, 0-based (one for an odd count)
	const m = 8192
	r := rand.New(rand.NewPCG(0x7e11, 0x5e17))
	sample := make([]float64, m)
	for k := range sample {
		i, j := r.IntN(n), r.IntN(n-1)
		if j >= i {
			j++
		} else {
			i, j = j, i
		}
		sample[k] = (y[j] - y[i]) / (t[j] - t[i])
	}
	slices.Sort(sample)
	// The middle's rank in the sample has a standard deviation of
	// sqrt(m)/2 (45 here); 5 of them either side miss about once in 3
	// million fits.
	margin := 5 * int(math.Sqrt(m)) / 2
	at := int(float64(kLo) / float64(pairs) * m)
	lo, hi := sample[max(at-margin, 0)], sample[min(at+margin, m-1)]
	// Slopes equal to a bound are counted, not kept: a series of whole
	// degrees has millions of equal slopes (0 most of all), which kept
	// made the bracket a third of every pair (0.9 s of growing a slice
	// on the 4 h run, 45 MB). Such a series (a few whole values) is
	// counted group by group, in a fraction of the slopes.
	br := bracket{lo: lo, hi: hi}
	if groups := wholeValueGroups(y, n/32); groups != nil {
		br.countGroups(t, y, groups)
	} else {
		br.inside = make([]float64, 0, 4*margin*pairs/m)
		br.countPairs(t, y)
	}
	a, ok := br.kth(kLo)
	if !ok || kHi == kLo {
		return a, ok
	}
	b, ok := br.kth(kHi)
	return (a + b) / 2, ok
}

// mannKendall returns S = sum over i<j of sign(y_j - y_i), its variance under
// no trend with the tie correction
// Var(S) = [n(n-1)(2n+5) - sum_g g(g-1)(2g+5)] / 18 over groups of g equal
// values, Z = (S - sign(S)) / sqrt(Var(S)) (continuity correction) and the
// two-sided p = 2 * (1 - Phi(|Z|)). With Var(S) = 0 (all y equal) Z = 0 and
// p = 1.
func mannKendall(y []float64) (s, variance, z, p float64) {
	n := len(y)
	sorted := slices.Clone(y)
	slices.Sort(sorted)

	nf := float64(n)
	variance = nf * (nf - 1) * (2*nf + 5)
	for i := 0; i < n; {
		j := i + 1
		for j < n && sorted[j] == sorted[i] {
			j++
		}
		g := float64(j - i)
		variance -= g * (g - 1) * (2*g + 5)
		i = j
	}
	variance /= 18
	s = float64(signSum(y, slices.Compact(sorted))) // the ties counted, sorted is no longer needed whole

	if variance <= 0 {
		return s, variance, 0, 1
	}
	switch {
	case s > 0:
		z = (s - 1) / math.Sqrt(variance)
	case s < 0:
		z = (s + 1) / math.Sqrt(variance)
	}
	// Phi(-|Z|) rather than 1 - Phi(|Z|): gonum's CDF is erfc-based and
	// keeps tiny p-values (1e-110 for a strong drift), whereas its Survival
	// computes 1 - erf and rounds to 0 beyond |Z| ~ 8.
	p = 2 * distuv.UnitNormal.CDF(-math.Abs(z))
	return s, variance, z, p
}

// signSum is S = sum over i<j of sign(y_j - y_i), counted in O(n log n)
// rather than pair by pair: as j goes through y, a Fenwick tree over the
// ranks of the distinct values (uniq, sorted) counts the earlier values
// below y_j and above it. Equal values (-0 and +0 among them) are one rank.
func signSum(y, uniq []float64) int {
	tree := make([]int, len(uniq)+1) // tree[r] holds counts of ranks (r - r&-r, r]
	count := func(r int) int {       // earlier values of rank below r
		c := 0
		for ; r > 0; r -= r & -r {
			c += tree[r]
		}
		return c
	}
	sum := 0
	for j, v := range y {
		r, _ := slices.BinarySearch(uniq, v)
		sum += count(r) - (j - count(r+1))
		for k := r + 1; k < len(tree); k += k & -k {
			tree[k]++
		}
	}
	return sum
}

// evenlySpaced returns x when it has at most m values, else the m values at
// indices floor(k*(n-1)/(m-1)), k = 0..m-1: first and last included, and
// deterministic, so the same trace always gives the same numbers.
func evenlySpaced(x []float64, m int) []float64 {
	n := len(x)
	if n <= m {
		return x
	}
	out := make([]float64, m)
	for k := range out {
		out[k] = x[k*(n-1)/(m-1)]
	}
	return out
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// median selects the middle order statistic(s) in linear expected time
// instead of sorting the ~2 million pairwise slopes. It reorders x.

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
