package analyze

import (
	"github.com/llem/llem/internal/order"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Selection gives exactly what sorting gives, ties and all.
func TestQuantileSelectMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + r.IntN(200)
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(r.IntN(20)) // many ties
			if trial%2 == 0 {
				x[i] = r.NormFloat64()
			}
		}
		sorted := slices.Clone(x)
		slices.Sort(sorted)
		for _, q := range []float64{0, 0.05, 0.5, 0.95, 1} {
			want := order.Quantile(sorted, q)
			if got := order.QuantileSelect(slices.Clone(x), q); got != want {
				t.Fatalf("n=%d q=%v: select %v, sort %v", n, q, got, want)
			}
		}
		p5, p95, mx := powerStats(append(slices.Clone(x), math.NaN()))
		if float64(p5) != order.Quantile(sorted, 0.05) || float64(p95) != order.Quantile(sorted, 0.95) || float64(mx) != sorted[n-1] {
			t.Fatalf("powerStats %v %v %v", p5, p95, mx)
		}
	}
	if p5, _, _ := powerStats(nil); p5.Valid() {
		t.Error("no values gave a percentile")
	}
}
