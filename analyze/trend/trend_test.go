package trend

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func near(got, want, relTol float64) bool {
	return math.Abs(got-want) <= relTol*math.Max(math.Abs(want), 1e-300)
}

func mustFit(t *testing.T, x, y []float64) Trend {
	t.Helper()
	tr, err := Fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func seq(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i)
	}
	return x
}

// Spec checks, methodology-specs.md "Trend and thermal drift".

// P = 300 + 0.1 t, t = 0..99: slope 0.1, drift 3.2464% (= 0.1*99/304.95*100).
func TestSpecDrift(t *testing.T) {
	ts := seq(100)
	p := make([]float64, 100)
	for i, v := range ts {
		p[i] = 300 + 0.1*v
	}
	tr := mustFit(t, ts, p)
	if !near(tr.Slope, 0.1, 1e-12) || !near(tr.Intercept, 300, 1e-12) {
		t.Errorf("slope %v intercept %v, want 0.1 and 300", tr.Slope, tr.Intercept)
	}
	if math.Abs(tr.DriftPct-3.2464) > 5e-5 { // the spec gives 4 decimals
		t.Errorf("drift %v%%, want 3.2464%%", tr.DriftPct)
	}
	if !near(tr.DriftPct, 0.1*99/304.95*100, 1e-12) {
		t.Errorf("drift %v%%, want exactly 0.1*99/304.95*100", tr.DriftPct)
	}
	if !near(tr.TheilSenSlope, 0.1, 1e-12) {
		t.Errorf("Theil-Sen %v, want 0.1", tr.TheilSenSlope)
	}
}

// x = 0..9, y = [0..8, 100]: Theil-Sen 1.0, least squares 5.963636 (one
// outlier drags least squares, not Theil-Sen).
func TestSpecTheilSen(t *testing.T) {
	y := seq(10)
	y[9] = 100
	tr := mustFit(t, seq(10), y)
	if !near(tr.TheilSenSlope, 1.0, 1e-12) {
		t.Errorf("Theil-Sen %v, want 1", tr.TheilSenSlope)
	}
	if math.Abs(tr.Slope-5.963636) > 5e-7 { // the spec gives 6 decimals
		t.Errorf("least squares %v, want 5.963636", tr.Slope)
	}
}

// Strictly increasing, n = 10: S = 45, Var = 125, Z = 3.93548, p = 8.303e-5.
func TestSpecMannKendall(t *testing.T) {
	tr := mustFit(t, seq(10), seq(10))
	if tr.MKS != 45 || tr.MKVar != 125 {
		t.Errorf("S %v Var %v, want 45 and 125", tr.MKS, tr.MKVar)
	}
	if math.Abs(tr.MKZ-3.93548) > 5e-6 {
		t.Errorf("Z %v, want 3.93548", tr.MKZ)
	}
	if math.Abs(tr.MKP-8.303e-5) > 5e-9 {
		t.Errorf("p %v, want 8.303e-5", tr.MKP)
	}
	// Decreasing mirrors it.
	down := seq(10)
	slices.Reverse(down)
	tr = mustFit(t, seq(10), down)
	if tr.MKS != -45 || math.Abs(tr.MKZ+3.93548) > 5e-6 || math.Abs(tr.MKP-8.303e-5) > 5e-9 {
		t.Errorf("decreasing: S %v Z %v p %v", tr.MKS, tr.MKZ, tr.MKP)
	}
}

func TestMannKendallTiesAndFlat(t *testing.T) {
	// y = [1 1 2 2 2 3]: ties of 2 and 3. S = 11 (by hand: 1s vs later 2s
	// and 3 give 2*4 = 8, the 2s vs the 3 give 3).
	// Var = [6*5*17 - 2*1*9 - 3*2*11] / 18 = (510 - 18 - 66) / 18.
	tr := mustFit(t, seq(6), []float64{1, 1, 2, 2, 2, 3})
	if tr.MKS != 11 || !near(tr.MKVar, 426.0/18, 1e-12) {
		t.Errorf("S %v Var %v, want 11 and %v", tr.MKS, tr.MKVar, 426.0/18)
	}
	flat := mustFit(t, seq(5), []float64{7, 7, 7, 7, 7})
	if flat.MKS != 0 || flat.MKVar != 0 || flat.MKZ != 0 || flat.MKP != 1 {
		t.Errorf("flat: %+v", flat)
	}
}

// Cross-check against scipy (testdata/reference.json, written by
// gen_reference.py with scipy.stats.linregress, scipy.stats.theilslopes and
// a hand-written Mann-Kendall with scipy.stats.norm). The datasets include
// ties and irregular timestamps. Tolerance: relative 1e-9, since both sides
// compute the same formulas in double precision with different summation
// orders.
func TestAgainstScipy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		ScipyVersion string `json:"scipy_version"`
		Cases        []struct {
			Name          string    `json:"name"`
			T             []float64 `json:"t"`
			Y             []float64 `json:"y"`
			Slope         float64   `json:"slope"`
			Intercept     float64   `json:"intercept"`
			DriftPct      float64   `json:"drift_pct"`
			TheilSenSlope float64   `json:"theil_sen_slope"`
			MKS           float64   `json:"mk_s"`
			MKVar         float64   `json:"mk_var"`
			MKZ           float64   `json:"mk_z"`
			MKP           float64   `json:"mk_p"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) != 3 || ref.ScipyVersion == "" {
		t.Fatalf("reference.json: %d cases, scipy %q", len(ref.Cases), ref.ScipyVersion)
	}
	const rel = 1e-9
	for _, c := range ref.Cases {
		tr := mustFit(t, c.T, c.Y)
		check := func(what string, got, want float64) {
			if !near(got, want, rel) {
				t.Errorf("%s: %s = %.15g, scipy %.15g", c.Name, what, got, want)
			}
		}
		check("slope", tr.Slope, c.Slope)
		check("intercept", tr.Intercept, c.Intercept)
		check("drift_pct", tr.DriftPct, c.DriftPct)
		check("theil_sen_slope", tr.TheilSenSlope, c.TheilSenSlope)
		check("mk_s", tr.MKS, c.MKS)
		check("mk_var", tr.MKVar, c.MKVar)
		check("mk_z", tr.MKZ, c.MKZ)
		check("mk_p", tr.MKP, c.MKP)
		if tr.N != len(c.Y) || tr.RankN != len(c.Y) {
			t.Errorf("%s: N %d RankN %d, want %d", c.Name, tr.N, tr.RankN, len(c.Y))
		}
	}
}

func TestFitErrors(t *testing.T) {
	cases := []struct {
		name string
		t, y []float64
		want string
	}{
		{"lengths", seq(4), seq(3), "t has 4 values but y has 3"},
		{"too few", seq(2), seq(2), "at least 3"},
		{"NaN y", seq(3), []float64{1, math.NaN(), 2}, "y[1] is NaN"},
		{"Inf t", []float64{0, 1, math.Inf(1)}, seq(3), "t[2] is +Inf"},
		{"unordered t", []float64{0, 2, 1}, seq(3), "not strictly increasing"},
		{"zero mean", seq(3), []float64{-1, 0, 1}, "mean of y is 0"},
	}
	for _, c := range cases {
		_, err := Fit(c.t, c.y)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// A long series uses 2,000 evenly spaced samples for the rank statistics
// and every sample for least squares; on a clean line all agree.
func TestLongSeriesSubsamples(t *testing.T) {
	const n = 36_000
	ts := make([]float64, n)
	y := make([]float64, n)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range ts {
		ts[i] = 1.7e9 + 0.1*float64(i) // Unix seconds: centring matters
		y[i] = 300 + 0.002*(ts[i]-1.7e9) + rng.NormFloat64()
	}
	tr := mustFit(t, ts, y)
	if tr.N != n || tr.RankN != MaxRankPoints {
		t.Errorf("N %d RankN %d, want %d and %d", tr.N, tr.RankN, n, MaxRankPoints)
	}
	if math.Abs(tr.Slope-0.002) > 1e-4 || math.Abs(tr.TheilSenSlope-0.002) > 2e-4 {
		t.Errorf("slope %v Theil-Sen %v, want about 0.002", tr.Slope, tr.TheilSenSlope)
	}
	if tr.MKZ < 10 || tr.MKP > 1e-20 {
		t.Errorf("Z %v p %v, want a clear upward trend", tr.MKZ, tr.MKP)
	}
	sub := evenlySpaced(ts, MaxRankPoints)
	if sub[0] != ts[0] || sub[len(sub)-1] != ts[n-1] {
		t.Error("subsample must keep the first and last samples")
	}
}

func TestTempSlopePerMin(t *testing.T) {
	// 40 C rising 0.05 C/s over 2 minutes at 1 Hz: 3 C/min.
	ts := seq(120)
	temp := make([]float64, 120)
	for i, v := range ts {
		temp[i] = 40 + 0.05*v
	}
	if got := TempSlopePerMin(ts, temp); !near(got, 3, 1e-12) {
		t.Errorf("slope %v C/min, want 3", got)
	}
	if !math.IsNaN(TempSlopePerMin(seq(3), seq(2))) || !math.IsNaN(TempSlopePerMin([]float64{1, 1}, []float64{2, 3})) {
		t.Error("want NaN for mismatched lengths and a single time")
	}
}

func BenchmarkFit36k(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	ts, y := make([]float64, 36_000), make([]float64, 36_000)
	for i := range ts {
		ts[i] = 0.1 * float64(i)
		y[i] = 300 + 0.01*ts[i] + 5*rng.NormFloat64()
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Fit(ts, y); err != nil {
			b.Fatal(err)
		}
	}
}
