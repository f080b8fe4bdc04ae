// Package order holds selection, shared by the statistics packages: the
// k-th smallest value without sorting (O(n) on average).
package order

// SelectKth reorders x so that x[k] is the value a sort would put there,
// with x[:k] <= x[k] <= x[k+1:], and returns it (Hoare's quickselect with a
// median-of-three pivot; deterministic).
func SelectKth(x []float64, k int) float64 {
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
