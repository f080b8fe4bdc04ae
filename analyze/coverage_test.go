package analyze_test

import (
	"math/rand/v2"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
)

// A seeded property test of the intervals llem gives a mean over cycles:
// at n = 5 (the fewest cycles it gives an interval for), the default
// covers the true mean of normal data close to its nominal 95%, where BCa
// alone would cover about 83% (bench/coverage has the full study).
func TestSmallNIntervalCovers(t *testing.T) {
	if testing.Short() {
		t.Skip("400 replications")
	}
	s := analyze.DefaultSettings()
	s.Resamples = 500
	r := rand.New(rand.NewPCG(13, 5))
	const reps = 400
	covered, bcaCovered := 0, 0
	for range reps {
		x := make([]float64, 5)
		for i := range x {
			x[i] = 100 + 10*r.NormFloat64()
		}
		iv := analyze.IntervalOf(x, bootstrap.Mean, s)
		if iv.Method != bootstrap.MethodStudentT || iv.Alternative == nil {
			t.Fatalf("n = 5: method %s, alternative %v", iv.Method, iv.Alternative)
		}
		if iv.Low <= 100 && 100 <= iv.High {
			covered++
		}
		if a := iv.Alternative; a.Low <= 100 && 100 <= a.High {
			bcaCovered++
		}
	}
	cov, bca := float64(covered)/reps, float64(bcaCovered)/reps
	t.Logf("n = 5, normal data, %d replications: the default (Student-t) covers %.1f%%, BCa %.1f%%", reps, cov*100, bca*100)
	// Binomial sd at 400 replications is ~1.1 points: 92% is 2.7 sd below 95%.
	if cov < 0.92 {
		t.Errorf("the default interval covers %.1f%% at n = 5, want about 95%%", cov*100)
	}
	if bca > cov {
		t.Errorf("BCa covers more than the default at n = 5 (%.1f%% vs %.1f%%): revisit bca_min_n", bca*100, cov*100)
	}
	// From bca_min_n values on, BCa is the interval.
	x := make([]float64, s.BCaMinN)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	if iv := analyze.IntervalOf(x, bootstrap.Mean, s); iv.Method != bootstrap.MethodBCa || iv.Alternative == nil || iv.Alternative.Method != bootstrap.MethodStudentT {
		t.Errorf("n = %d: %s with alternative %v", s.BCaMinN, iv.Method, iv.Alternative)
	}
}
