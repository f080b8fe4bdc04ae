package bootstrap

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// clusterStream is the second PCG seed word of the cluster bootstrap.
const clusterStream = 0x6c6c656d2d636c75 // "llem-clu"

// ClusterRatioBCa is the BCa interval of sum(num)/sum(den) when the data
// come in clusters: num[i] and den[i] are cluster i's total and count
// (a request's inter-token gaps summed, and how many tokens they cover).
// Clusters, not the values inside them, are resampled with replacement
// (the paired bootstrap: scipy.stats.bootstrap((num, den), paired=True)),
// because values of one cluster are correlated: the gaps of one request
// share its batch, its context length and the load it met, and resampling
// them one by one as if independent gives intervals far too narrow
// (TestClusterRatioCoverage). The acceleration is the jackknife over
// clusters. One PCG seeded from seed draws every index: the result does
// not depend on the machine.
func ClusterRatioBCa(num, den []float64, opts Options) Interval {
	if opts.Resamples == 0 {
		opts.Resamples = DefaultResamples
	}
	if opts.Confidence == 0 {
		opts.Confidence = DefaultConfidence
	}
	iv := Interval{Estimate: math.NaN(), Low: math.NaN(), High: math.NaN(), Confidence: opts.Confidence,
		Method: MethodBCa, N: len(num), Resamples: opts.Resamples, Seed: opts.Seed}
	degenerate := func(format string, args ...any) Interval {
		iv.Degenerate, iv.Note = true, fmt.Sprintf(format, args...)
		return iv
	}
	if len(num) != len(den) {
		return degenerate("%d totals but %d counts", len(num), len(den))
	}
	sn, sd := 0.0, 0.0
	for i := range num {
		sn, sd = sn+num[i], sd+den[i]
	}
	iv.Estimate = sn / sd
	if !finite(iv.Estimate) {
		return degenerate("the counts sum to 0: the ratio is not defined")
	}
	n := len(num)
	if n < 2 {
		return degenerate("n = %d cluster(s): the cluster bootstrap needs at least two", n)
	}
	r := rand.New(rand.NewPCG(opts.Seed, clusterStream))
	dist := make([]float64, opts.Resamples)
	for b := range dist {
		a, c := 0.0, 0.0
		for range n {
			k := r.IntN(n)
			a, c = a+num[k], c+den[k]
		}
		dist[b] = a / c
		if !finite(dist[b]) {
			return degenerate("a resample's counts sum to 0: the ratio is not defined on every resample")
		}
	}
	return ratioInterval(iv, dist, ClusterRatioAcceleration(num, den))
}

// ClusterRatioAcceleration is the BCa acceleration of sum(num)/sum(den)
// from the jackknife over clusters: theta_(i) = (S_num - num_i)/(S_den -
// den_i), U_i = (n-1)(mean theta_(.) - theta_(i)), a = sum U^3 / (6 (sum
// U^2)^(3/2)). NaN with fewer than two clusters or all U zero.
func ClusterRatioAcceleration(num, den []float64) float64 {
	n := len(num)
	if n < 2 || len(den) != n {
		return math.NaN()
	}
	sn, sd := 0.0, 0.0
	for i := range num {
		sn, sd = sn+num[i], sd+den[i]
	}
	loo := make([]float64, n)
	for i := range num {
		loo[i] = (sn - num[i]) / (sd - den[i])
	}
	var s2, s3 float64
	for _, u := range uFromLeaveOneOut(loo) {
		s2 += u * u
		s3 += u * u * u
	}
	return s3 / (6 * math.Pow(s2, 1.5))
}
