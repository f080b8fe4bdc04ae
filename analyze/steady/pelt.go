package steady

import "math"

// varianceFloor keeps log(sigma^2) finite for a segment whose values are all
// equal; R's changepoint package uses the same 1e-11.
const varianceFloor = 1e-11

// log2Pi is log(2*pi), the constant of the normal log-likelihood.
var log2Pi = math.Log(2 * math.Pi)

// normalCost holds prefix sums of x and x^2 so that the cost of any segment
// x[a:b] is O(1).
type normalCost struct {
	sum, sumSq []float64 // sum[i] = x[0] + ... + x[i-1]
}

func newNormalCost(x []float64) normalCost {
	// Centre the data first: the variance is sumSq/n - (sum/n)^2, and for
	// power around 300 W both terms are ~1e5 while the variance may be ~1,
	// so without centring the subtraction would lose five digits.
	var centre float64
	for _, v := range x {
		centre += v
	}
	if len(x) > 0 {
		centre /= float64(len(x))
	}
	c := normalCost{sum: make([]float64, len(x)+1), sumSq: make([]float64, len(x)+1)}
	for i, v := range x {
		d := v - centre
		c.sum[i+1] = c.sum[i] + d
		c.sumSq[i+1] = c.sumSq[i] + d*d
	}
	return c
}

// cost is twice the negative maximised normal log-likelihood of x[a:b] with
// its own mean and variance: n*(log 2*pi + log sigma^2 + 1).
func (c normalCost) cost(a, b int) float64 {
	n := float64(b - a)
	s := c.sum[b] - c.sum[a]
	variance := (c.sumSq[b] - c.sumSq[a] - s*s/n) / n
	// R floors only variances <= 0; flooring everything below 1e-11 also
	// catches the rounding residue of a constant segment, so that equal
	// values always cost the same whatever their level.
	if variance < varianceFloor {
		variance = varianceFloor
	}
	return n * (log2Pi + math.Log(variance) + 1)
}

// meanVar returns the mean and the maximum-likelihood variance (divided by n,
// as R's param.est for cpt.meanvar) of x, computed directly rather than
// from the centred prefix sums so that they are exact to the last digit.
func meanVar(x []float64) (mean, variance float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		d := v - mean
		variance += d * d
	}
	return mean, variance / float64(len(x))
}

// PELT returns the optimal segmentation of x under the normal mean-and-variance
// cost with the given penalty per changepoint and minimum segment length
// (values below 2 are raised to 2: a one-sample segment has no variance).
//
// The result lists the exclusive end index of every segment, ending with
// len(x), as R's changepoint package reports cpts: [50 100] means segments
// x[0:50] and x[50:100]. An empty x gives nil.
//
// The algorithm is PELT as in R's changepoint (src/PELT_one_func_minseglen.c):
// F(0) = -penalty, F(t) = min over candidates tau of
// F(tau) + cost(tau, t) + penalty, the first (earliest) tau wins ties, and a
// candidate is dropped for good once F(tau) + cost(tau, t) > F(t), because it
// can then never be the best last changepoint for a later t. That only
// removes candidates from before a changepoint: with changes every few
// hundred samples the run time is close to linear, but a plateau of m
// samples costs O(m^2) (2.3 s for 18,000), which is why Detect fits block
// means of long series.
func PELT(x []float64, penalty float64, minSegLen int) []int {
	n := len(x)
	if n == 0 {
		return nil
	}
	if minSegLen < 2 {
		minSegLen = 2
	}
	if n < 2*minSegLen {
		return []int{n}
	}
	c := newNormalCost(x)

	best := make([]float64, n+1) // F(t): optimal cost of x[0:t]
	lastCut := make([]int, n+1)  // the last changepoint of that optimum
	best[0] = -penalty           // so that the first segment pays no penalty

	// Each live candidate carries what the inner loop needs (its F and its
	// prefix sums) side by side, so the loop reads memory in order: it runs
	// once per candidate per sample and dominates the run time.
	type candidate struct {
		tau        int
		best       float64
		sum, sumSq float64
	}
	candidates := make([]candidate, 1, 64)
	candidates[0] = candidate{tau: 0, best: best[0]}
	scores := make([]float64, 0, 64)

	for t := minSegLen; t <= n; t++ {
		sumT, sumSqT := c.sum[t], c.sumSq[t]
		scores = scores[:0]
		minScore, argmin := math.Inf(1), 0
		for _, cand := range candidates {
			m := float64(t - cand.tau)
			s := sumT - cand.sum
			variance := (sumSqT - cand.sumSq - s*s/m) / m
			if variance < varianceFloor {
				variance = varianceFloor
			}
			score := cand.best + m*(log2Pi+math.Log(variance)+1) + penalty
			scores = append(scores, score)
			if score < minScore {
				minScore, argmin = score, cand.tau
			}
		}
		best[t], lastCut[t] = minScore, argmin

		// Prune: drop tau for good once F(tau) + cost(tau, t) > F(t).
		kept := candidates[:0]
		for i, cand := range candidates {
			if scores[i] <= minScore+penalty {
				kept = append(kept, cand)
			}
		}
		candidates = kept
		// The next t may end a segment of minSegLen that starts here.
		if next := t + 1 - minSegLen; next >= minSegLen {
			candidates = append(candidates, candidate{tau: next, best: best[next], sum: c.sum[next], sumSq: c.sumSq[next]})
		}
	}

	var ends []int
	for t := n; t > 0; t = lastCut[t] {
		ends = append(ends, t)
	}
	// Backtracking gives the ends last to first.
	for i, j := 0, len(ends)-1; i < j; i, j = i+1, j-1 {
		ends[i], ends[j] = ends[j], ends[i]
	}
	return ends
}
