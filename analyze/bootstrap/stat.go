package bootstrap

import (
	"github.com/llem/llem/internal/order"
	"math"
	"slices"
	"strings"
)

// Stat is a statistic to bootstrap. Func computes it from a sample; it must
// not modify or keep its argument and must be safe for concurrent use,
// because resamples are evaluated in parallel.
//
// Mean and Median have fast paths for the resamples and the jackknife; a Stat
// made with Statistic (or as a literal) uses the generic paths, which call
// Func on every resample and on every leave-one-out sample (O(n^2)).
type Stat struct {
	Name string
	Func func([]float64) float64
	kind statKind
}

type statKind int

const (
	kindGeneric statKind = iota // the zero value: a Stat literal is generic
	kindMean
	kindMedian
)

// Mean is the arithmetic mean.
var Mean = Stat{Name: "mean", Func: mean, kind: kindMean}

// Median is the median; for an even count, the mean of the two middle values
// (as numpy.median).
var Median = Stat{Name: "median", Func: order.Median[float64], kind: kindMedian}

// Statistic wraps any statistic; it uses the generic (slower) paths.
func Statistic(name string, f func([]float64) float64) Stat {
	return Stat{Name: name, Func: f}
}

// mean sums in slice order; the resampling fast path sums in the same order,
// so both give bit-identical results for the same draws.
func mean(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// jackknifeU returns scipy's U_i = (n-1)(mean(theta_(.)) - theta_(i)), where
// theta_(i) is the statistic without observation i, in some order (the
// acceleration depends only on their multiset). n must be at least 2.
func jackknifeU(x []float64, stat Stat) []float64 {
	switch stat.kind {
	case kindMean:
		return jackknifeMeanU(x)
	case kindMedian:
		return uFromLeaveOneOut(jackknifeMedian(x))
	}
	loo := make([]float64, len(x))
	buf := make([]float64, len(x)-1)
	for i := range x {
		copy(buf, x[:i])
		copy(buf[i:], x[i+1:])
		loo[i] = stat.Func(buf)
	}
	return uFromLeaveOneOut(loo)
}

// uFromLeaveOneOut averages deviations from the first value rather than the
// values themselves: when every theta_(i) is equal the U are then exactly
// zero (and a is NaN, no interval), where a plain sum's rounding would leave
// U of about 1e-16 and a meaningless a = ±1/(6 sqrt(n)).
func uFromLeaveOneOut(loo []float64) []float64 {
	n := float64(len(loo))
	shift := 0.0 // mean(loo) - loo[0]
	for _, t := range loo {
		shift += t - loo[0]
	}
	shift /= n
	u := make([]float64, len(loo))
	for i, t := range loo {
		u[i] = (n - 1) * ((loo[0] - t) + shift)
	}
	return u
}

// jackknifeMeanU: the mean without x_i is (S - x_i)/(n-1), and the mean of
// those n values is S/n = xbar, so U_i = (n-1)(xbar - (S-x_i)/(n-1)) = x_i - xbar
// exactly. Computing it that way is O(n) and, unlike differencing the
// leave-one-out means, loses no digits when the values share a large offset
// (energies in joules, powers near 300 W).
func jackknifeMeanU(x []float64) []float64 {
	xbar := mean(x)
	u := make([]float64, len(x))
	for i, v := range x {
		u[i] = v - xbar
	}
	return u
}

// jackknifeMedian sorts once; removing the value of sorted rank r leaves a
// median that is one of a few order statistics of the full sample, so each
// leave-one-out median costs O(1). Ties need no care: removing either of two
// equal values leaves the same multiset, and the rank rule below gives the
// same answer for both (the order statistics between them are equal too).
func jackknifeMedian(x []float64) []float64 {
	n := len(x)
	s := slices.Clone(x)
	slices.Sort(s)
	out := make([]float64, n)
	m := n / 2
	for r := range s {
		if n%2 == 0 {
			// n = 2m: n-1 values remain, median is the remaining value of rank m-1.
			if r <= m-1 {
				out[r] = s[m]
			} else {
				out[r] = s[m-1]
			}
			continue
		}
		// n = 2m+1: 2m values remain, median averages remaining ranks m-1 and m.
		switch {
		case r < m:
			out[r] = (s[m] + s[m+1]) / 2
		case r == m:
			out[r] = (s[m-1] + s[m+1]) / 2
		default:
			out[r] = (s[m-1] + s[m]) / 2
		}
	}
	return out
}

// acceleration is scipy's a-hat, sum U^3 / (6 (sum U^2)^(3/2)). It is NaN
// when all U are zero (0/0), as in scipy: BCa then gives no interval.
func acceleration(u []float64) float64 {
	var s2, s3 float64
	for _, v := range u {
		v2 := v * v
		s2 += v2
		s3 += v2 * v
	}
	return s3 / (6 * math.Pow(s2, 1.5))
}

// Acceleration returns the BCa acceleration a-hat of stat on x from the
// jackknife (NaN for fewer than two values or a flat jackknife).
func Acceleration(x []float64, stat Stat) float64 {
	if len(x) < 2 {
		return math.NaN()
	}
	return acceleration(jackknifeU(x, stat))
}

// StatNamed is the statistic of a name, "mean" or "median" (any case).
func StatNamed(name string) (Stat, bool) {
	switch strings.ToLower(name) {
	case "mean":
		return Mean, true
	case "median":
		return Median, true
	}
	return Stat{}, false
}
