// Package order holds order statistics, shared by the analysis and the
// load generator: the k-th smallest value without sorting (O(n) on
// average), quantiles and medians, each computed one way everywhere.
package order

import (
	"math"
	"slices"
)

// SelectKth reorders x so that x[k] is the value a sort would put there,
// with x[:k] <= x[k] <= x[k+1:], and returns it (Hoare's quickselect with a
// median-of-three pivot; deterministic).
func SelectKth[T int32 | int64 | float64](x []T, k int) T {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to the middle, as the pivot.
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k] // between j and i: equal to the pivot
		}
	}
	return x[k]
}

// Quantile is the q-quantile of sorted x, interpolated linearly between
// order statistics (Hyndman and Fan's type 7, numpy's and R's default);
// NaN for no values.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// QuantileSelect is Quantile of x sorted, without sorting: it reorders x.
func QuantileSelect(x []float64, q float64) float64 {
	n := len(x)
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	a := SelectKth(x, lo)
	if lo >= n-1 {
		return a
	}
	b := x[lo+1]
	for _, f := range x[lo+1:] { // all >= a after selection
		b = min(b, f)
	}
	return a + (h-float64(lo))*(b-a)
}

// MedianSelect is the median of x, the mean of the two middle values for
// an even count, without sorting: it reorders x. x must not be empty.
func MedianSelect(x []float64) float64 {
	n := len(x)
	hi := SelectKth(x, n/2)
	if n%2 == 1 {
		return hi
	}
	// After selection every value left of n/2 is <= hi; the other middle
	// value is the largest of them.
	return (slices.Max(x[:n/2]) + hi) / 2
}

// Median is the median of x (the mean of the two middle values for an
// even count) without modifying x; NaN for no values. Integers (sample
// intervals, millions of them in a day's run) are selected, not sorted;
// floats are sorted, where NaNs go first.
func Median[T int64 | float64](x []T) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	return MedianInPlace(slices.Clone(x))
}

// MedianInPlace is Median of x, which it reorders: for a caller that owns
// x and no longer needs its order (a day's intervals are 35 MB, which a
// copy doubles).
func MedianInPlace[T int32 | int64 | float64](s []T) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	switch ints := any(s).(type) {
	case []int64:
		return selectMedian(ints)
	case []int32:
		return selectMedian(ints)
	}
	slices.Sort(s)
	return MedianSorted(s)
}

// selectMedian is the median of non-empty ints by selection. Both middle
// values convert to float64 exactly (below 2^53), so int32 and int64
// copies of the same values give the same median.
func selectMedian[I int32 | int64](ints []I) float64 {
	n := len(ints)
	hi := SelectKth(ints, n/2)
	if n%2 == 1 {
		return float64(hi)
	}
	// After selection every value left of n/2 is <= hi; the other
	// middle value is the largest of them.
	return (float64(slices.Max(ints[:n/2])) + float64(hi)) / 2
}

// MedianSorted is the median of sorted, non-empty s.
func MedianSorted[T int32 | int64 | float64](s []T) float64 {
	m := len(s) / 2
	if len(s)%2 == 1 {
		return float64(s[m])
	}
	return (float64(s[m-1]) + float64(s[m])) / 2
}
