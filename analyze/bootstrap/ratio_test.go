package bootstrap

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// ratioReference is the ratio part of analyze/compare's reference.json,
// written by its gen_reference.py from scipy.stats.bootstrap with two
// samples (llem compare is where the ratio is used).
type ratioReference struct {
	ScipyVersion string `json:"scipy_version"`
	Confidence   float64
	Ratios       []struct {
		Name         string
		A, B         []float64
		ThetaHat     float64   `json:"theta_hat"`
		ThetaStar    []float64 `json:"theta_star"`
		Acceleration float64
		BCa          [2]float64 `json:"bca"`
	} `json:"ratios"`
}

func loadRatioReference(t *testing.T) ratioReference {
	t.Helper()
	b, err := os.ReadFile("../compare/testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref ratioReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Ratios) == 0 {
		t.Fatal("reference.json holds no ratio cases")
	}
	return ref
}

func relNear(got, want, rel float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

func TestRatioBCaMatchesScipy(t *testing.T) {
	ref := loadRatioReference(t)
	for _, c := range ref.Ratios {
		if got := RatioOfMeans(c.A, c.B); !relNear(got, c.ThetaHat, 1e-14) {
			t.Errorf("%s: ratio %g, scipy %g", c.Name, got, c.ThetaHat)
		}
		a := RatioAcceleration(c.A, c.B)
		if !relNear(a, c.Acceleration, 1e-9) && math.Abs(a-c.Acceleration) > 1e-15 {
			t.Errorf("%s: acceleration %.17g, scipy %.17g", c.Name, a, c.Acceleration)
		}
		iv := Interval{Estimate: RatioOfMeans(c.A, c.B), Confidence: ref.Confidence}
		iv = ratioInterval(iv, c.ThetaStar, a)
		if iv.Degenerate || !relNear(iv.Low, c.BCa[0], 1e-9) || !relNear(iv.High, c.BCa[1], 1e-9) {
			t.Errorf("%s: BCa [%.17g, %.17g] (%s), scipy [%.17g, %.17g]", c.Name, iv.Low, iv.High, iv.Note, c.BCa[0], c.BCa[1])
		}
	}
}

func TestRatioBCa(t *testing.T) {
	a := []float64{10, 11, 9, 10.5, 9.5}
	b := []float64{5, 5.5, 4.5, 5.2, 4.8}
	opts := Options{Resamples: 2000, Confidence: 0.95, Seed: 3}
	iv := RatioBCa(a, b, opts)
	if iv.Degenerate || !(iv.Low < iv.Estimate && iv.Estimate < iv.High) || !(iv.High < 0.6 && iv.Low > 0.4) {
		t.Errorf("ratio about 0.5: got %+v", iv)
	}
	if again := RatioBCa(a, b, opts); again != iv {
		t.Errorf("same seed, different interval: %+v then %+v", iv, again)
	}
	opts.Seed = 4
	if other := RatioBCa(a, b, opts); other.Low == iv.Low && other.High == iv.High {
		t.Error("another seed gives the same bounds")
	}
	for name, c := range map[string][2][]float64{
		"one value":     {{1}, {2, 3}},
		"empty":         {{}, {2, 3}},
		"zero baseline": {{0, 0}, {2, 3}},
		"both constant": {{2, 2, 2}, {3, 3}},
	} {
		iv := RatioBCa(c[0], c[1], opts)
		if !iv.Degenerate || iv.Note == "" || !math.IsNaN(iv.Low) || !math.IsNaN(iv.High) {
			t.Errorf("%s: %+v, want a degenerate interval with a note", name, iv)
		}
	}
}
