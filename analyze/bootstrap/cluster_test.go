package bootstrap

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Reference: scipy 1.10.1, the jackknife over pairs that
// scipy.stats.bootstrap((num, den), ..., paired=True, method='BCa') uses
// (scipy.stats._resampling._bca_interval with the paired index sample), and
// its interval with 50,000 resamples (random_state=1).
var clusterNum = []float64{1.2, 0.8, 2.5, 0.3, 1.9, 0.7, 3.1, 1.1, 0.45, 2.2}
var clusterDen = []float64{10, 7, 20, 3, 15, 6, 26, 9, 4, 18}

func TestClusterRatioAgainstScipy(t *testing.T) {
	if a := ClusterRatioAcceleration(clusterNum, clusterDen); math.Abs(a-0.039538299198653946) > 1e-12 {
		t.Errorf("acceleration %.17g, scipy 0.039538299198653946", a)
	}
	iv := ClusterRatioBCa(clusterNum, clusterDen, Options{Resamples: 50000, Seed: 3})
	if want := 14.25 / 118; math.Abs(iv.Estimate-want) > 1e-15 {
		t.Errorf("estimate %v, want %v", iv.Estimate, want)
	}
	// Different random numbers: the bounds agree to Monte Carlo error.
	if math.Abs(iv.Low-0.11785714285714285) > 3e-4 || math.Abs(iv.High-0.12339449541284403) > 3e-4 {
		t.Errorf("interval [%v, %v], scipy [0.117857, 0.123394]", iv.Low, iv.High)
	}
}

func TestClusterRatioDegenerate(t *testing.T) {
	for _, c := range []struct {
		num, den []float64
	}{{[]float64{1}, []float64{2}}, {[]float64{1, 2}, []float64{0, 0}}, {[]float64{1, 2}, []float64{1}}} {
		if iv := ClusterRatioBCa(c.num, c.den, Options{}); !iv.Degenerate || iv.Note == "" || !math.IsNaN(iv.Low) {
			t.Errorf("%v / %v: %+v, want a degenerate interval with a note", c.num, c.den, iv)
		}
	}
}

// TestClusterRatioCoverage: requests whose inter-token gaps share a
// per-request level (batching, context length) and vary in length. The
// cluster interval of the mean gap covers the true mean in about 95% of
// seeded experiments; resampling the gaps one by one, as if independent,
// covers it far less often, which is why the latency summary does not.
func TestClusterRatioCoverage(t *testing.T) {
	const trials, naiveTrials, requests = 300, 40, 40
	rng := rand.New(rand.NewPCG(11, 13))
	const trueMean = 0.05 // s: E[level], levels symmetric around it, independent of length
	covered, naiveCovered := 0, 0
	for trial := range trials {
		var num, den, gaps []float64
		for range requests {
			level := trueMean * math.Exp(0.4*rng.NormFloat64()-0.08) // E = trueMean
			tokens := 20 + rng.IntN(200)
			s := 0.0
			for range tokens {
				g := level * (0.8 + 0.4*rng.Float64())
				s += g
				gaps = append(gaps, g)
			}
			num, den = append(num, s), append(den, float64(tokens))
		}
		iv := ClusterRatioBCa(num, den, Options{Resamples: 1000, Seed: uint64(trial)})
		if iv.Low <= trueMean && trueMean <= iv.High {
			covered++
		}
		if trial < naiveTrials { // dearer: thousands of gaps a resample
			naive, err := BCa(gaps, Mean, Options{Resamples: 1000, Seed: uint64(trial)})
			if err == nil && naive.Low <= trueMean && trueMean <= naive.High {
				naiveCovered++
			}
		}
	}
	cov, naive := float64(covered)/trials, float64(naiveCovered)/naiveTrials
	t.Logf("coverage of the 95%% interval: cluster %.1f%% of %d trials, gaps as independent %.1f%% of %d", cov*100, trials, naive*100, naiveTrials)
	if cov < 0.91 || cov > 0.99 {
		t.Errorf("cluster coverage %.1f%%, want about 95%%", cov*100)
	}
	if naive > 0.6 {
		t.Errorf("independent-gap coverage %.1f%%: the experiment does not show the clustering", naive*100)
	}
}

// Values whose sums overflow are refused with a reason, not turned into
// an interval of +Inf.
func TestHugeValuesAreRefused(t *testing.T) {
	x := []float64{1e308, 1.5e308, 0.9e308, 1.2e308}
	if _, err := BCa(x, Mean, Options{Resamples: 100}); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("BCa of values near 1e308: error %v, want one about overflow", err)
	}
	if _, err := BCa([]float64{1e300, 2e300, 3e300}, Mean, Options{Resamples: 100}); err != nil {
		t.Errorf("values of 1e300 are fine: %v", err)
	}
}

// BenchmarkClusterRatioBCa: the ITL's interval of a cycle of a 4 h
// serving run (24k requests) and of a day's (136k requests: its clusters
// outgrow the caches), 2,000 resamples, drawn on every core. ns/draw is
// the time of one of the b*n draws.
func BenchmarkClusterRatioBCa(b *testing.B) {
	for _, n := range []int{110_000, 650_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(5, 6))
			num, den := make([]float64, n), make([]float64, n)
			for i := range num {
				den[i] = float64(20 + rng.IntN(200))
				num[i] = den[i] * 0.025 * (0.8 + 0.4*rng.Float64())
			}
			for b.Loop() {
				ClusterRatioBCa(num, den, Options{Seed: 1})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n*DefaultResamples), "ns/draw")
		})
	}
}
