package trend

import (
	"math"
	"math/rand/v2"
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
