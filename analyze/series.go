package analyze

import (
	"math"
	"slices"
	"sort"

	"github.com/llem/llem/internal/order"
)

// Series is one field of one GPU over time: T in ns since the Unix epoch
// (ascending), V in the field's analysis unit (W, C, MHz). A null in the
// trace is simply absent, so a Series never holds a placeholder value.
type Series struct {
	T []int64
	V []float64
}

// addSized is add, making the series room for n samples at its first.
func (s *Series) addSized(t int64, v float64, n int) {
	if s.T == nil && n > 0 {
		s.T, s.V = make([]int64, 0, n), make([]float64, 0, n)
	}
	s.add(t, v)
}

func (s *Series) add(t int64, v float64) {
	s.T = append(s.T, t)
	s.V = append(s.V, v)
}

// Len is the number of samples.
func (s Series) Len() int { return len(s.T) }

// Span returns the indexes [i, j) of the samples with startNs <= T <= endNs.
func (s Series) Span(startNs, endNs int64) (i, j int) {
	i = sort.Search(len(s.T), func(k int) bool { return s.T[k] >= startNs })
	j = sort.Search(len(s.T), func(k int) bool { return s.T[k] > endNs })
	return i, j
}

// Slice is the part of s with startNs <= T <= endNs (sharing memory).
func (s Series) Slice(startNs, endNs int64) Series {
	i, j := s.Span(startNs, endNs)
	return Series{T: s.T[i:j], V: s.V[i:j]}
}

// At is the value at t, linear between the samples around it; ok is false
// outside the series.
func (s Series) At(t int64) (v float64, ok bool) {
	n := len(s.T)
	if n == 0 || t < s.T[0] || t > s.T[n-1] {
		return 0, false
	}
	k := sort.Search(n, func(k int) bool { return s.T[k] >= t })
	if s.T[k] == t || k == 0 {
		return s.V[k], true
	}
	a, b := k-1, k
	f := float64(t-s.T[a]) / float64(s.T[b]-s.T[a])
	return s.V[a] + f*(s.V[b]-s.V[a]), true
}

// Bins returns the time-weighted mean of s in consecutive bins of binNs
// over [startNs, endNs): the value of bin k covers [start + k*bin, start +
// (k+1)*bin). The series is treated as piecewise linear between samples,
// so the mean of a bin is its integral over the bin divided by the bin's
// length; a bin the series does not cover entirely is NaN.
func (s Series) Bins(startNs, endNs, binNs int64) []float64 {
	if binNs <= 0 || endNs <= startNs {
		return nil
	}
	n := int((endNs - startNs) / binNs)
	out := make([]float64, n)
	// Each bin's integral is Integrate's, but the first sample after a
	// bin's start is found by walking on from the previous bin's rather
	// than by a binary search of the whole series for every bin: 100 ms
	// bins of 50 Hz samples hold five samples each.
	t := s.T
	first := sort.Search(len(t), func(i int) bool { return t[i] > startNs })
	for k := range out {
		lo := startNs + int64(k)*binNs
		hi := lo + binNs
		if !s.covers(lo, hi) {
			out[k] = math.NaN()
			continue
		}
		for first < len(t) && t[first] <= lo {
			first++
		}
		out[k] = s.integrateFrom(first, lo, hi) / (float64(binNs) / 1e9)
	}
	return out
}

// sortedFinite returns the finite values of v, sorted, in a new slice.
func sortedFinite(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func meanOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// powerStats are the 5th and 95th percentiles and the maximum of v (NaN
// when v holds no finite value), which it reorders (its callers own it).
// Percentiles are found by selection, not sorting: a window of an
// hour-long 50 Hz trace holds 180,000 samples per GPU, and the analysis
// asks for every window.
func powerStats(v []float64) (p5, p95, mx Num) {
	x := v[:0] // the finite values, in their order
	for _, f := range v {
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			x = append(x, f)
		}
	}
	if len(x) == 0 {
		return NaN, NaN, NaN
	}
	m := x[0]
	for _, f := range x {
		m = max(m, f)
	}
	return Num(order.QuantileSelect(x, 0.05)), Num(order.QuantileSelect(x, 0.95)), Num(m)
}
