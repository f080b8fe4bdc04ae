package trend

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/llem/llem/internal/order"
)

// theilSenAll is theilSen the long way: every slope kept, the median
// selected.
func theilSenAll(t, y []float64) float64 {
	var slopes []float64
	for i := range y {
		for j := i + 1; j < len(y); j++ {
			slopes = append(slopes, (y[j]-y[i])/(t[j]-t[i]))
		}
	}
	return order.MedianSelect(slopes)
}

// The bracketed Theil-Sen is the same number as the long way, bit for bit,
// on smooth, trending, heavy-tailed and integer (tie-heavy, like a
// temperature in whole degrees) series, odd and even counts of pairs.
func TestTheilSenBracketedIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for trial := range 60 {
		n := 320 + r.IntN(1700)
		ts, ys := make([]float64, n), make([]float64, n)
		for i := range n {
			ts[i] = 1.7e9 + float64(i)*0.1 + r.Float64()*0.01
			switch trial % 6 {
			case 0:
				ys[i] = 300 + r.NormFloat64()
			case 1:
				ys[i] = 250 + 0.05*float64(i) + 3*r.NormFloat64()
			case 2:
				ys[i] = 400 + r.NormFloat64()/math.Max(r.Float64(), 1e-3) // Cauchy-like spikes
			case 3:
				ys[i] = math.Round(45 + float64(i)/400 + r.NormFloat64()/2)
			case 4:
				// Whole degrees without a trend: the median is among
				// millions of slopes that are exactly 0.
				ys[i] = math.Round(45 + r.NormFloat64()/3)
			case 5:
				// Whole degrees on a regular grid: every slope is one of
				// a few values, each repeated, bounds of the bracket too.
				ts[i] = 1.7e9 + float64(i)*0.125
				ys[i] = math.Round(40 + float64(i)/(float64(n)/3) + r.NormFloat64()/4)
			}
		}
		got, ok := theilSenBracketed(ts, ys)
		want := theilSenAll(ts, ys)
		if !ok {
			t.Errorf("trial %d (n=%d): the bracket missed", trial, n)
			continue
		}
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("trial %d (n=%d): %v, the long way %v", trial, n, got, want)
		}
	}
}

func BenchmarkTheilSen2000(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	t, y := make([]float64, 2000), make([]float64, 2000)
	for i := range t {
		t[i] = float64(i)
		y[i] = 300 + 0.01*float64(i) + r.NormFloat64()
	}
	for b.Loop() {
		theilSen(t, y)
	}
}

// Counting group by group places every slope where counting pair by pair
// does: the same counts and the same inside slopes, for brackets whose
// bounds are slopes of the series (so that equal slopes are counted),
// lo == hi, 0 inside the bracket, and brackets beyond every slope.
func TestBracketGroupsMatchPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for trial := range 200 {
		n := 3 + r.IntN(400)
		ts, ys := make([]float64, n), make([]float64, n)
		levels := 1 + r.IntN(8)
		for i := range n {
			ts[i] = float64(i)*0.1 + r.Float64()*0.05
			if trial%3 == 0 {
				ts[i] = float64(i) * 0.125 // a regular grid: many equal slopes
			}
			ys[i] = float64(40 + r.IntN(levels) + i*levels/n)
		}
		groups := wholeValueGroups(ys, n)
		if groups == nil {
			t.Fatalf("trial %d: whole values not grouped", trial)
		}
		slope := func() float64 {
			i, j := r.IntN(n), r.IntN(n)
			if i == j {
				return 0
			}
			i, j = min(i, j), max(i, j)
			return (ys[j] - ys[i]) / (ts[j] - ts[i])
		}
		lo, hi := slope(), slope()
		switch trial % 5 {
		case 1:
			hi = lo
		case 2:
			lo, hi = -math.Abs(lo)-1, math.Abs(hi)+1
		case 3:
			lo, hi = -1e9, 1e9
		}
		lo, hi = min(lo, hi), max(lo, hi)
		pairs, grouped := bracket{lo: lo, hi: hi}, bracket{lo: lo, hi: hi}
		pairs.countPairs(ts, ys)
		grouped.countGroups(ts, ys, groups)
		slices.Sort(pairs.inside)
		slices.Sort(grouped.inside)
		if pairs.below != grouped.below || pairs.atLo != grouped.atLo || pairs.atHi != grouped.atHi || !slices.Equal(pairs.inside, grouped.inside) {
			t.Errorf("trial %d (n=%d, %d groups, [%v, %v]): pairs %d/%d/%d/%d inside, groups %d/%d/%d/%d", trial, n, len(groups), lo, hi,
				pairs.below, pairs.atLo, pairs.atHi, len(pairs.inside), grouped.below, grouped.atLo, grouped.atHi, len(grouped.inside))
		}
	}
}

// A series that is not whole numbers, has -0 or too many values is not
// grouped.
func TestWholeValueGroups(t *testing.T) {
	for _, c := range []struct {
		y    []float64
		max  int
		want bool
	}{
		{[]float64{40, 41, 40, 42}, 3, true},
		{[]float64{40, 41, 40, 42}, 2, false},
		{[]float64{40, 41.5}, 8, false},
		{[]float64{0, math.Copysign(0, -1)}, 8, false},
		{[]float64{1 << 53, 1}, 8, false},
	} {
		if got := wholeValueGroups(c.y, c.max) != nil; got != c.want {
			t.Errorf("%v (at most %d groups): grouped %v, want %v", c.y, c.max, got, c.want)
		}
	}
}

// Mann-Kendall's S counted with a Fenwick tree is the pair-by-pair sum,
// with ties, -0 beside +0, and values spread or few.
func TestSignSumMatchesPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for trial := range 100 {
		n := 1 + r.IntN(600)
		y := make([]float64, n)
		for i := range y {
			switch trial % 3 {
			case 0:
				y[i] = r.NormFloat64()
			case 1:
				y[i] = float64(r.IntN(5))
			case 2:
				y[i] = float64(r.IntN(2)) // 0 or 1, some zeros -0
				if y[i] == 0 && r.IntN(2) == 0 {
					y[i] = math.Copysign(0, -1)
				}
			}
		}
		want := 0
		for i := range n {
			for j := i + 1; j < n; j++ {
				switch {
				case y[j] > y[i]:
					want++
				case y[j] < y[i]:
					want--
				}
			}
		}
		sorted := slices.Clone(y)
		slices.Sort(sorted)
		if got := signSum(y, slices.Compact(sorted)); got != want {
			t.Errorf("trial %d (n=%d): S = %d, pair by pair %d", trial, n, got, want)
		}
	}
}
