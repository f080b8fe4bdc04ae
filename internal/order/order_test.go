package order

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Selection gives the values, bit for bit, that sorting gives: the
// median, and the quantiles of numpy's default (type 7), with many ties.
func TestSelectionIsSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for n := 1; n < 80; n++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(rng.IntN(7)) + rng.Float64()*float64(n%3) // ties for n%3 == 0
		}
		sorted := slices.Clone(x)
		slices.Sort(sorted)
		want := sorted[n/2]
		if n%2 == 0 {
			want = (sorted[n/2-1] + sorted[n/2]) / 2
		}
		if got := MedianSelect(slices.Clone(x)); got != want {
			t.Fatalf("n %d: MedianSelect %v, want %v", n, got, want)
		}
		if got := Median(x); got != want {
			t.Fatalf("n %d: Median %v, want %v", n, got, want)
		}
		for _, q := range []float64{0, 0.05, 0.5, 0.9, 0.99, 1} {
			if a, b := QuantileSelect(slices.Clone(x), q), Quantile(sorted, q); a != b {
				t.Fatalf("n %d q %g: QuantileSelect %v, Quantile %v", n, q, a, b)
			}
		}
	}
}

// numpy.quantile([1, 2, 3, 4, 10], q) and numpy.median, by hand.
func TestQuantileReference(t *testing.T) {
	x := []float64{1, 2, 3, 4, 10}
	for q, want := range map[float64]float64{0: 1, 0.25: 2, 0.5: 3, 0.9: 7.6000000000000005, 0.99: 9.76, 1: 10} {
		if got := Quantile(x, q); math.Abs(got-want) > 1e-12 {
			t.Errorf("Quantile(%g) = %v, want %v", q, got, want)
		}
	}
	if got := Median([]int64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("Median of 4 ints = %v, want 2.5", got)
	}
	if !math.IsNaN(Median([]float64{})) || !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("no values: want NaN")
	}
}

// The median of integers is selected, not sorted: the same number, with
// ties, large values whose sum is not exact in float64, and x untouched.
func TestMedianOfIntegersIsSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for n := 1; n < 200; n++ {
		x := make([]int64, n)
		for i := range x {
			x[i] = 20_000_000 + int64(rng.IntN(5))*1000 // sample intervals in ns, with ties
			if n%4 == 0 {
				x[i] = 1<<60 + int64(rng.IntN(1000))
			}
		}
		before := slices.Clone(x)
		sorted := slices.Clone(x)
		slices.Sort(sorted)
		if got, want := Median(x), MedianSorted(sorted); got != want {
			t.Fatalf("n %d: Median %v, sorting gives %v", n, got, want)
		}
		if !slices.Equal(x, before) {
			t.Fatalf("n %d: Median reordered its input", n)
		}
	}
}
