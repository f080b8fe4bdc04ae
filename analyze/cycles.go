package analyze

import (
	"fmt"
	"github.com/llem/llem/internal/order"
	"math"
	"slices"
	"sync"

	"github.com/llem/llem/analyze/bootstrap"
	"github.com/llem/llem/analyze/serving"
)

// pooledLatency gathers the per-request latencies of the requests that
// start in the measured windows: the samples of the run's latency
// summary, of the latency figure and of llem compare.
func (c *runCtx) pooledLatency(ws []Window) serving.Latency {
	var spans [][2]int64
	for _, w := range ws {
		if w.Measured {
			spans = append(spans, [2]int64{w.StartNs, w.EndNs})
		}
	}
	return c.reqs.PooledLatency(spans)
}

// latency gives each metric's mean with its CI over requests (per-request
// latencies are genuine samples, unlike per-request energy: audit CP-5),
// and its percentiles.
func (c *runCtx) latency(l serving.Latency) *LatencyResult {
	n := max(len(l.TTFT), len(l.E2E))
	if n == 0 {
		return nil
	}
	// The ITL quantiles are selected by a pass over the token log, on one
	// core, and the bootstraps below use every core: run after them, the
	// pass kept a day's run going for seconds on one core
	// (docs/performance.md, ninth round). They share no state.
	var q []float64
	var pass sync.WaitGroup
	if l.ITL.Len() > 0 {
		pass.Go(func() { q = l.ITL.Quantiles(0.5, 0.9, 0.99) })
	}
	// The three means are over the same requests: their bootstraps share
	// each resample's draw (meanIntervals), one draw instead of three.
	samples := [][]float64{l.TTFT, l.TPOT, l.E2E}
	var present [][]float64
	for _, x := range samples {
		if len(x) > 0 {
			present = append(present, x)
		}
	}
	ivs := meanIntervals(present, c.s)
	metrics := make([]*LatencyMetric, len(samples)) // nil for a metric without values
	for k, x := range samples {
		if len(x) > 0 {
			metrics[k], ivs = latencyOf(x, ivs[0]), ivs[1:]
		}
	}
	ttft, tpot, e2e := metrics[0], metrics[1], metrics[2]
	var itl *LatencyMetric
	if l.ITL.Len() > 0 {
		// Its interval resamples requests, not gaps: see serving.Latency.
		// Its quantiles are exact, selected over the token log, not over
		// a slice of a value per token (serving.Gaps).
		mean := bootstrap.ClusterRatioBCa(l.ITLSum, l.ITLTokens, c.s.Bootstrap())
		pass.Wait()
		itl = &LatencyMetric{Mean: mean, Median: Num(q[0]), P90: Num(q[1]), P99: Num(q[2])}
	}
	return &LatencyResult{Requests: n, TTFT: ttft, TPOT: tpot, ITL: itl,
		E2E: e2e, ITLDeprecated: tpot,
		Clock: "the client's own timestamps where every event of a request carries one, else the recorder's arrival stamps"}
}

// latencyOf is the metric of values x whose mean has the interval mean.
func latencyOf(x []float64, mean bootstrap.Interval) *LatencyMetric {
	// Selection, not a sort: the ITL of a long run has a value per token
	// (millions), and three quantiles need only their neighbourhoods.
	s := make([]float64, 0, len(x))
	for _, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return &LatencyMetric{Mean: mean, Median: NaN, P90: NaN, P99: NaN}
	}
	return &LatencyMetric{Mean: mean, Median: Num(order.QuantileSelect(s, 0.5)),
		P90: Num(order.QuantileSelect(s, 0.9)), P99: Num(order.QuantileSelect(s, 0.99))}
}

// interval is a BCa interval, or a degenerate one saying why there is
// none (a single value, all values equal).
func (c *runCtx) interval(x []float64, stat bootstrap.Stat) bootstrap.Interval {
	return IntervalOf(x, stat, c.s)
}

// IntervalOf is the interval of stat over x with the settings'
// resampling, or a degenerate one that says why there is none. For a mean
// of fewer than bca_min_n values it is the Student-t interval, with BCa
// beside it as the alternative: BCa under-covers at small n (82% for a
// nominal 95% at n = 5 on normal data, the coverage study of
// docs/results.md); from bca_min_n on it is BCa, with Student-t beside it.
func IntervalOf(x []float64, stat bootstrap.Stat, s Settings) bootstrap.Interval {
	return withStudentT(x, stat, s, bcaOf(x, stat, s))
}

// meanIntervals is IntervalOf(x, bootstrap.Mean, s) for each x, the same
// intervals, with the bootstraps of samples of one length sharing each
// resample's draw (bootstrap.BCaMeans).
func meanIntervals(xs [][]float64, s Settings) []bootstrap.Interval {
	ivs, errs := bootstrap.BCaMeans(xs, s.Bootstrap())
	out := make([]bootstrap.Interval, len(xs))
	for i, x := range xs {
		out[i] = withStudentT(x, bootstrap.Mean, s, bcaResult(x, bootstrap.Mean, s, ivs[i], errs[i]))
	}
	return out
}

// withStudentT puts the Student-t interval of a mean beside its BCa
// interval, and makes it the interval below bca_min_n values.
func withStudentT(x []float64, stat bootstrap.Stat, s Settings, bca bootstrap.Interval) bootstrap.Interval {
	if stat.Name != bootstrap.Mean.Name {
		return bca
	}
	t, err := bootstrap.StudentT(x, s.Confidence)
	if err != nil {
		return bca
	}
	if len(x) < s.BCaMinN {
		t.Alternative = &bca
		return t
	}
	bca.Alternative = &t
	return bca
}

func bcaOf(x []float64, stat bootstrap.Stat, s Settings) bootstrap.Interval {
	iv, err := bootstrap.BCa(x, stat, s.Bootstrap())
	return bcaResult(x, stat, s, iv, err)
}

// bcaResult is a BCa interval, or for an error a degenerate one saying it.
func bcaResult(x []float64, stat bootstrap.Stat, s Settings, iv bootstrap.Interval, err error) bootstrap.Interval {
	if err != nil {
		est := math.NaN()
		if len(x) > 0 {
			est = stat.Func(x)
		}
		return bootstrap.Interval{Estimate: est, Low: math.NaN(), High: math.NaN(), Confidence: s.Confidence,
			Method: bootstrap.MethodBCa, N: len(x), Resamples: s.Resamples, Seed: s.Seed, Degenerate: true, Note: err.Error()}
	}
	return iv
}

// add sums a window into t (the metrics are made by finish).
func (t *Totals) add(wr WindowResult) {
	t.EnergyJ += bestEnergy(wr.EnergyJ, wr.EnergyIntegratedJ) // NaN stays NaN
	t.OutputTokens += wr.OutputTokens
	t.DurationS += wr.DurationS
	t.Requests += wr.Requests
}

// finish makes the metrics of the sums: a ratio without a positive
// denominator is NaN.
func (t *Totals) finish() {
	ratio := func(a, b Num) Num {
		if !a.Valid() || !b.Valid() || b <= 0 {
			return NaN
		}
		return a / b
	}
	t.EnergyPerOutputTokenJ = ratio(t.EnergyJ, t.OutputTokens)
	t.OutputTokensPerS = ratio(t.OutputTokens, Num(t.DurationS))
	t.MeanPowerW = ratio(t.EnergyJ, Num(t.DurationS))
	t.EnergyPerRequestJ = ratio(t.EnergyJ, Num(t.Requests))
}

// measuredTotals pools the measured windows; nil when there are none.
func measuredTotals(results []WindowResult) *Totals {
	var t Totals
	n := 0
	for _, wr := range results {
		if wr.Measured {
			t.add(wr)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	t.finish()
	return &t
}

// cycles gathers each cycle's measured windows (summed: Totals) and
// bootstraps each metric over cycles: the energy of a cycle is one sample,
// as the audit asks (CP-5); per-request energy is not a sample. Fewer
// than MinCycles cycles give the values and no CI.
func (c *runCtx) cycles(results []WindowResult) *CycleResult {
	byCycle := map[int]*CycleValue{}
	var order []int
	for _, wr := range results {
		if !wr.Measured || wr.Cycle == 0 {
			continue
		}
		cv := byCycle[wr.Cycle]
		if cv == nil {
			cv = &CycleValue{Cycle: wr.Cycle}
			byCycle[wr.Cycle] = cv
			order = append(order, wr.Cycle)
		}
		cv.add(wr)
	}
	if len(order) == 0 {
		return nil
	}
	slices.Sort(order)
	cr := &CycleResult{N: len(order), PerCycle: []CycleValue{}}
	for _, k := range order {
		cv := byCycle[k]
		cv.finish()
		cr.PerCycle = append(cr.PerCycle, *cv)
	}
	if cr.N < c.s.MinCycles {
		cr.Note = fmt.Sprintf("%d cycle(s): at least %d are needed for a CI of energy over cycles (record at least %[2]d cycles)",
			cr.N, c.s.MinCycles)
		return cr
	}
	over := func(value func(CycleValue) Num) *bootstrap.Interval {
		var x []float64
		for _, cv := range cr.PerCycle {
			if v := value(cv); v.Valid() {
				x = append(x, float64(v))
			}
		}
		if len(x) < cr.N { // a cycle without a value: no interval
			return nil
		}
		iv := c.interval(x, bootstrap.Mean)
		return &iv
	}
	cr.EnergyJ = over(func(v CycleValue) Num { return v.EnergyJ })
	cr.EnergyPerOutputTokenJ = over(func(v CycleValue) Num { return v.EnergyPerOutputTokenJ })
	cr.OutputTokensPerS = over(func(v CycleValue) Num { return v.OutputTokensPerS })
	cr.MeanPowerW = over(func(v CycleValue) Num { return v.MeanPowerW })
	cr.EnergyPerRequestJ = over(func(v CycleValue) Num { return v.EnergyPerRequestJ })
	return cr
}
