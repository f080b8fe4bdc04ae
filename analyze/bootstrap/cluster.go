package bootstrap

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
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
// clusters. One PCG stream seeded from seed draws every index, in order
// (rand.New(rand.NewPCG(seed, clusterStream)).IntN(n) for each), drawn in
// parts on every core (clusterDistribution): the result does not depend
// on the machine.
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
	dist := clusterDistribution(num, den, seeded(opts.Seed, clusterStream), opts.Resamples,
		defaultWorkers(), pcgState.advance)
	for _, v := range dist {
		if !finite(v) {
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

// clusterChunk is how many resamples one part of the stream draws.
const clusterChunk = 64

// clusterBatch is how many indices a resample draws before it reads their
// clusters.
const clusterBatch = 256

// clusterDistribution is the cluster bootstrap's distribution of
// sum(num)/sum(den) over b resamples: the numbers one PCG starting at s0
// would draw in order, n indices a resample. The resamples are drawn in
// chunks on up to workers goroutines, each chunk starting at the state
// guess(s0, draws before it) gives (pcgState.advance: where the stream is
// when no draw before was rejected). A chunk then checks that it starts
// where the previous one ended; where a rejected draw (less than n/2^64
// of draws) shifted the stream, it and the chunks after it are drawn
// again in order. guess is a parameter so that tests can make it wrong.
func clusterDistribution(num, den []float64, s0 pcgState, b, workers int,
	guess func(pcgState, uint64) pcgState) []float64 {
	n := len(num)
	// A cluster's total and count side by side: a draw reads one place
	// in memory, not two (the arrays of a day's requests outgrow the cache).
	pairs := make([][2]float64, n)
	for i := range pairs {
		pairs[i] = [2]float64{num[i], den[i]}
	}
	dist := make([]float64, b)
	chunks := (b + clusterChunk - 1) / clusterChunk
	starts, ends := make([]pcgState, chunks), make([]pcgState, chunks)
	draw := func(c int) {
		p := starts[c].pcg()
		var idx [clusterBatch]int
		for i := c * clusterChunk; i < min(b, (c+1)*clusterChunk); i++ {
			a, d := 0.0, 0.0
			for k := 0; k < n; k += clusterBatch {
				// The batch's indices first, then its clusters, summed in
				// the order drawn: the loads of the second loop do not
				// wait on the generator, so many are in flight at once
				// (a day's clusters outgrow the caches).
				m := min(clusterBatch, n-k)
				for j := range m {
					idx[j] = intN(p, uint64(n))
				}
				for _, j := range idx[:m] {
					pr := &pairs[j]
					a, d = a+pr[0], d+pr[1]
				}
			}
			dist[i] = a / d
		}
		ends[c] = stateOf(p)
	}
	for c := range starts {
		starts[c] = guess(s0, uint64(c)*clusterChunk*uint64(n))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, chunks)) {
		wg.Go(func() {
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				draw(c)
			}
		})
	}
	wg.Wait()
	if chunks > 0 && starts[0] != s0 {
		starts[0] = s0
		draw(0)
	}
	for c := 1; c < chunks; c++ {
		if starts[c] != ends[c-1] {
			starts[c] = ends[c-1]
			draw(c)
		}
	}
	return dist
}
