package steady

import (
	"math"
	"slices"
	"sort"
)

// outlierMask marks the samples of x that fall outside median +/- 3*(P90-P10)
// of their rolling window of the given size (see the package comment for
// how the window is placed at the edges). Non-finite samples are always
// marked and never enter a window.
func outlierMask(x []float64, window int) []bool {
	n := len(x)
	mask := make([]bool, n)
	for i, v := range x {
		if !isFinite(v) {
			mask[i] = true
		}
	}
	half := window / 2

	// The window [lo, hi) only moves right, so a sorted copy of it is kept
	// up to date with one insertion and one deletion per step instead of
	// sorting 200 values for every sample.
	var sorted []float64
	lo, hi := 0, 0
	for i := range x {
		newLo, newHi := max(i-half, 0), min(i+half, n)
		for ; hi < newHi; hi++ {
			if isFinite(x[hi]) {
				sorted = insertSorted(sorted, x[hi])
			}
		}
		for ; lo < newLo; lo++ {
			if isFinite(x[lo]) {
				sorted = removeSorted(sorted, x[lo])
			}
		}
		// As warmup_stats: a window that is cut short by the start of the
		// series is not trusted, so those first samples are never flagged.
		if newLo == 0 && newHi < window {
			continue
		}
		if mask[i] || len(sorted) == 0 {
			continue
		}
		median := percentileSorted(sorted, 50)
		band := 3 * (percentileSorted(sorted, 90) - percentileSorted(sorted, 10))
		if x[i] > median+band || x[i] < median-band {
			mask[i] = true
		}
	}
	return mask
}

func insertSorted(s []float64, v float64) []float64 {
	i := sort.SearchFloat64s(s, v)
	return slices.Insert(s, i, v)
}

func removeSorted(s []float64, v float64) []float64 {
	i := sort.SearchFloat64s(s, v) // v is present: it was inserted before
	return slices.Delete(s, i, i+1)
}

// percentileSorted is numpy's default percentile (linear interpolation
// between the order statistics at (n-1)*p/100), which warmup_stats uses.
func percentileSorted(sorted []float64, p float64) float64 {
	pos := float64(len(sorted)-1) * p / 100
	below := math.Floor(pos)
	i := int(below)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - below
	return sorted[i] + frac*(sorted[i+1]-sorted[i])
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
