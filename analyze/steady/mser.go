package steady

// mserBatch is the batch size of MSER-5.
const mserBatch = 5

// MSER5 returns the warm-up truncation of x by the Marginal Standard Error
// Rule on batch means of 5 (White, "An effective truncation heuristic for
// bias reduction in simulation output", Simulation 69(6), 1997; Spratt,
// "An evaluation of contemporary heuristics for the startup problem",
// MSc thesis, University of Virginia, 1998).
//
// x is cut into m = len(x)/5 batches from the start (a remainder of up to 4
// samples at the end is ignored) and Z_i is the mean of batch i. For each d
// the statistic is
//
//	MSER(d) = sum_{i>d} (Z_i - mean_d)^2 / (m-d)^2,  mean_d = mean of Z_{d+1..m},
//
// the squared standard error of the mean of what is left after dropping d
// batches. d* is its minimum (the smallest d on ties) and the truncation is
// 5*d* samples.
//
// Search range: d = 0 .. m-2. Two batches must remain, because with one left
// the statistic is 0 and would always win. The range deliberately runs past
// m/2: the rule of White and of Hoad, Robinson and Davies (2010) is that a
// minimum in the second half means the series never settled, so ok is false
// when d* > m/2. Searching only [0, m/2] would make that test impossible to
// fail. With fewer than 3 batches (15 samples) ok is false.
func MSER5(x []float64) (truncate int, ok bool) {
	m := len(x) / mserBatch
	if m < 3 {
		return 0, false
	}
	z := make([]float64, m)
	for i := range z {
		var s float64
		for _, v := range x[i*mserBatch : (i+1)*mserBatch] {
			s += v
		}
		z[i] = s / mserBatch
	}

	// Walk d from m-2 down to 0, growing the tail Z_{d+1..m} one batch at a
	// time with Welford's update of its mean and sum of squared deviations:
	// O(m), and no cancellation from sums of squares.
	bestD := -1
	var bestStat float64
	var mean, sumSq float64
	count := 0
	stats := make([]float64, m-1)
	for d := m - 1; d >= 0; d-- {
		count++
		delta := z[d] - mean
		mean += delta / float64(count)
		sumSq += delta * (z[d] - mean)
		if d <= m-2 {
			stats[d] = sumSq / float64(count*count)
		}
	}
	for d, s := range stats {
		if bestD < 0 || s < bestStat {
			bestD, bestStat = d, s
		}
	}
	return bestD * mserBatch, 2*bestD <= m
}
