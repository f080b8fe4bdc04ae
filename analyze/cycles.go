package analyze

import (
	"fmt"
	"math"
	"slices"

	"github.com/llem/llem/analyze/bootstrap"
)

// latency pools the requests that start in the measured windows and gives
// each metric's mean with a BCa CI over requests (per-request latencies are
// genuine samples, unlike per-request energy: audit CP-5).
func (c *runCtx) latency(ws []Window) *LatencyResult {
	var ttft, itl, e2e []float64
	for _, w := range ws {
		if !w.Measured {
			continue
		}
		l := c.reqs.Latency(w.StartNs, w.EndNs)
		ttft = append(ttft, l.TTFT...)
		itl = append(itl, l.ITL...)
		e2e = append(e2e, l.E2E...)
	}
	n := max(len(ttft), len(e2e))
	if n == 0 {
		return nil
	}
	return &LatencyResult{Requests: n, TTFT: c.latencyMetric(ttft), ITL: c.latencyMetric(itl), E2E: c.latencyMetric(e2e),
		Clock: "the client's own timestamps where every event of a request carries one, else the recorder's arrival stamps"}
}

func (c *runCtx) latencyMetric(x []float64) *LatencyMetric {
	if len(x) == 0 {
		return nil
	}
	s := sortedFinite(x)
	m := &LatencyMetric{Mean: c.interval(x, bootstrap.Mean), Median: Num(quantile(s, 0.5)),
		P90: Num(quantile(s, 0.9)), P99: Num(quantile(s, 0.99))}
	return m
}

// interval is a BCa interval, or a degenerate one saying why there is
// none (a single value, all values equal).
func (c *runCtx) interval(x []float64, stat bootstrap.Stat) bootstrap.Interval {
	iv, err := bootstrap.BCa(x, stat, c.bootOpts())
	if err != nil {
		est := math.NaN()
		if len(x) > 0 {
			est = stat.Func(x)
		}
		return bootstrap.Interval{Estimate: est, Low: math.NaN(), High: math.NaN(), Confidence: c.s.Confidence,
			Method: "bca", N: len(x), Resamples: c.s.Resamples, Seed: c.s.Seed, Degenerate: true, Note: err.Error()}
	}
	return iv
}

// cycles gathers each cycle's measured energy and tokens (the measured
// windows that lie in it, summed) and bootstraps over cycles: the energy
// of a cycle is one sample, as the audit asks (CP-5); per-request energy
// is not a sample. Fewer than MinCycles cycles give the values and no CI.
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
		cv.EnergyJ += wr.EnergyJ // NaN stays NaN
		cv.OutputTokens += wr.OutputTokens
	}
	if len(order) == 0 {
		return nil
	}
	slices.Sort(order)
	cr := &CycleResult{N: len(order), PerCycle: []CycleValue{}}
	var energy, ept []float64
	for _, k := range order {
		cv := byCycle[k]
		cv.EnergyPerOutputTokenJ = NaN
		if cv.OutputTokens.Valid() && cv.OutputTokens > 0 && cv.EnergyJ.Valid() {
			cv.EnergyPerOutputTokenJ = cv.EnergyJ / cv.OutputTokens
			ept = append(ept, float64(cv.EnergyPerOutputTokenJ))
		}
		if cv.EnergyJ.Valid() {
			energy = append(energy, float64(cv.EnergyJ))
		}
		cr.PerCycle = append(cr.PerCycle, *cv)
	}
	if cr.N < c.s.MinCycles {
		cr.Note = fmt.Sprintf("%d cycle(s): at least %d are needed for a CI of energy over cycles (record with --cycles %d)",
			cr.N, c.s.MinCycles, c.s.MinCycles)
		return cr
	}
	if len(energy) == cr.N {
		iv := c.interval(energy, bootstrap.Mean)
		cr.EnergyJ = &iv
	}
	if len(ept) == cr.N {
		iv := c.interval(ept, bootstrap.Mean)
		cr.EnergyPerOutputTokenJ = &iv
	}
	return cr
}
