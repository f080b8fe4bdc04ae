package trend

import (
	"math"
	"slices"

	"github.com/llem/llem/internal/order"
)

// bracket is every pairwise slope (y_j - y_i) / (t_j - t_i), i < j, placed
// against a bracket [lo, hi]: how many are below lo, equal to lo, equal to
// hi (with lo == hi every equal slope is in atLo), and the ones strictly
// inside, kept, in no particular order. Slopes above hi are not counted.
type bracket struct {
	lo, hi            float64
	below, atLo, atHi int
	inside            []float64
}

// kth is the k-th smallest slope (0-based), when the bracket holds it:
// ranks below+[0, atLo) are lo, then the inside ones, then atHi of hi
// (with lo == hi every equal slope was counted in atLo). It reorders
// inside.
func (b *bracket) kth(k int) (float64, bool) {
	switch k -= b.below; {
	case k < 0:
		return 0, false
	case k < b.atLo:
		return b.lo, true
	case k < b.atLo+len(b.inside):
		return order.SelectKth(b.inside, k-b.atLo), true
	case k < b.atLo+len(b.inside)+b.atHi:
		return b.hi, true
	}
	return 0, false
}

// countPairs places every pair's slope, one pair at a time.
func (b *bracket) countPairs(t, y []float64) {
	lo, hi := b.lo, b.hi
	for i := range y {
		for j := i + 1; j < len(y); j++ {
			s := (y[j] - y[i]) / (t[j] - t[i])
			switch {
			case s < lo:
				b.below++
			case s == lo:
				b.atLo++
			case s < hi:
				b.inside = append(b.inside, s)
			case s == hi:
				b.atHi++
			}
		}
	}
}

// wholeValueGroups returns the indices of y grouped by value, in order
// within each group, when y is whole numbers (a temperature in whole
// degrees) of at most maxGroups distinct values; else nil. Whole numbers
// below 2^53 make every slope between two groups a nonzero number and every
// slope within one +0, so the slopes' order in bracket.inside cannot change
// the median's bits (there is no -0 to tell from +0).
func wholeValueGroups(y []float64, maxGroups int) [][]int {
	var values []float64
	var groups [][]int
	for i, v := range y {
		if v != math.Trunc(v) || math.Abs(v) >= 1<<53 || math.Signbit(v) && v == 0 {
			return nil
		}
		k := slices.Index(values, v)
		if k < 0 {
			if len(values) == maxGroups {
				return nil
			}
			values = append(values, v)
			groups = append(groups, nil)
			k = len(values) - 1
		}
		groups[k] = append(groups[k], i)
	}
	return groups
}

// countGroups places every pair's slope as countPairs does, the same
// numbers computed the same way, for y in groups of equal values
// (wholeValueGroups): in time O(groups x n) slopes rather than n^2/2.
//
// Between group A and group B every pair has the same dy = y_B - y_A, so
// for i in A the slopes to the later j in B are monotone in t_j (IEEE
// subtraction and division round monotonically): down for dy > 0, up for
// dy < 0. Written as u = s for dy > 0 and u = -s for dy < 0 (negation is
// exact), u falls along B, and the slopes above, at, inside, at and below
// the bracket are consecutive runs of B. Each run starts where u first
// drops to or below a bound, and as i moves later that place only moves
// later (a later t_i shortens every dt, which raises u), so one pointer a
// bound walks B once for all of A. Within a group every slope is +0.
func (b *bracket) countGroups(t, y []float64, groups [][]int) {
	for ga, A := range groups {
		for gb, B := range groups {
			if ga == gb {
				b.place(0, len(A)*(len(A)-1)/2)
				continue
			}
			b.countBetween(t, y, A, B)
		}
	}
}

// place counts n slopes all equal to s.
func (b *bracket) place(s float64, n int) {
	switch {
	case s < b.lo:
		b.below += n
	case s == b.lo:
		b.atLo += n
	case s < b.hi:
		for range n {
			b.inside = append(b.inside, s)
		}
	case s == b.hi:
		b.atHi += n
	}
}

// countBetween places the slopes from each i in A to every later j in B.
func (b *bracket) countBetween(t, y []float64, A, B []int) {
	dy := y[B[0]] - y[A[0]]
	// u's bounds in the order u meets them falling: first b1 (hi, or -lo
	// for dy < 0), then b2.
	sign, b1, b2 := 1.0, b.hi, b.lo
	if dy < 0 {
		sign, b1, b2 = -1, -b.lo, -b.hi
	}
	start := 0
	var p [4]int // first place with u <= b1, u < b1, u <= b2, u < b2
	for _, i := range A {
		for start < len(B) && B[start] <= i {
			start++
		}
		if start == len(B) {
			return
		}
		u := func(q int) float64 {
			j := B[q]
			return sign * ((y[j] - y[i]) / (t[j] - t[i]))
		}
		for k := range p {
			p[k] = max(p[k], start)
		}
		for p[0] < len(B) && !(u(p[0]) <= b1) {
			p[0]++
		}
		for p[1] = max(p[1], p[0]); p[1] < len(B) && !(u(p[1]) < b1); p[1]++ {
		}
		for p[2] = max(p[2], p[0]); p[2] < len(B) && !(u(p[2]) <= b2); p[2]++ {
		}
		for p[3] = max(p[3], p[2]); p[3] < len(B) && !(u(p[3]) < b2); p[3]++ {
		}
		// Runs: [start,p0) above b1, [p0,p1) at b1, [p1,p2) inside,
		// [p2,p3) at b2, [p3,len) below b2.
		above, at1, at2, below := p[0]-start, p[1]-p[0], p[3]-p[2], len(B)-p[3]
		if b.lo == b.hi {
			// One run of equal slopes, both at1 and at2: atLo's.
			b.atLo += at2
			at1, at2 = 0, 0
		}
		if dy > 0 {
			b.atHi += at1
			b.atLo += at2
			b.below += below
		} else {
			b.below += above
			b.atLo += at1
			b.atHi += at2
		}
		for q := p[1]; q < p[2]; q++ {
			j := B[q]
			b.inside = append(b.inside, (y[j]-y[i])/(t[j]-t[i]))
		}
	}
}
