package compare

import (
	"fmt"
	"math"

	"github.com/llem/llem/analyze"
)

// Metric is a compared quantity.
type Metric struct {
	Key  string `json:"key"`  // as in the JSON and CSV
	Name string `json:"name"` // as in the table
	Unit string `json:"unit"`
	// Sample is what one sample is: "cycle" (the measured windows of one
	// cycle, or of a run without cycles) or "request".
	Sample string `json:"sample"`
}

// Sample kinds.
const (
	PerCycle   = "cycle"
	PerRequest = "request"
)

// Metrics are the compared quantities, in the order they are reported.
var Metrics = []Metric{
	{Key: "energy_per_output_token_j", Name: "energy per output token", Unit: "J", Sample: PerCycle},
	{Key: "output_tokens_per_s", Name: "output tokens/s", Unit: "tokens/s", Sample: PerCycle},
	{Key: "mean_power_w", Name: "mean power", Unit: "W", Sample: PerCycle},
	{Key: "ttft_s", Name: "TTFT", Unit: "s", Sample: PerRequest},
	{Key: "itl_s", Name: "ITL", Unit: "s", Sample: PerRequest},
	{Key: "energy_per_request_j", Name: "energy per request", Unit: "J", Sample: PerCycle},
}

// Samples are one run's samples of every metric.
type Samples struct {
	Name   string            // how the run is called: the path given
	RunID  string            // meta.json run_id
	Labels map[string]string // llem record --label
	// Cycles counts the cycles with a measured window. 0: the run has none,
	// and its measured windows together are its one per-cycle sample.
	Cycles  int
	Samples map[string][]float64 // by Metric.Key; finite values only
	Notes   []string
}

// SamplesOf takes a run's samples from its analysis; nothing is computed
// here that `llem analyze` does not report.
//
// Per-cycle metrics: the per-cycle values of RunResult.Cycles (each
// cycle's measured windows summed), or, for a run without cycles, the one
// value of RunResult.Measured (its measured windows pooled).
//
// Per-request metrics: TTFT and ITL of every request that starts in a
// measured window (Run.Latency), pooled as `llem analyze` pools them.
func SamplesOf(r *analyze.Run) Samples {
	rr := &r.Result
	run := Samples{Name: rr.Run, RunID: rr.RunID, Labels: rr.Labels, Samples: map[string][]float64{}}
	if run.Labels == nil {
		run.Labels = map[string]string{}
	}
	var units []analyze.Totals
	switch {
	case rr.Cycles != nil:
		for _, cv := range rr.Cycles.PerCycle {
			units = append(units, cv.Totals)
		}
		run.Cycles = len(units)
	case rr.Measured != nil:
		units = append(units, *rr.Measured)
	}
	dropped := map[string]int{}
	put := func(key string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			run.Samples[key] = append(run.Samples[key], v)
		} else {
			dropped[key]++
		}
	}
	for _, u := range units {
		put("energy_per_output_token_j", float64(u.EnergyPerOutputTokenJ))
		put("output_tokens_per_s", float64(u.OutputTokensPerS))
		put("mean_power_w", float64(u.MeanPowerW))
		put("energy_per_request_j", float64(u.EnergyPerRequestJ))
	}
	unit := "cycle"
	if run.Cycles == 0 {
		unit = "run"
	}
	for _, m := range Metrics {
		// All missing is said per metric (no values); some missing, here.
		if k := dropped[m.Key]; m.Sample == PerCycle && k > 0 && k < len(units) {
			run.Notes = append(run.Notes, fmt.Sprintf("%s: %d of %d %s(s) have no value (no energy, output tokens or ended requests in the measured windows)",
				m.Key, k, len(units), unit))
		}
	}
	for _, v := range r.Latency.TTFT {
		put("ttft_s", v)
	}
	for _, v := range r.Latency.ITL {
		put("itl_s", v)
	}
	for _, key := range []string{"ttft_s", "itl_s"} {
		if k := dropped[key]; k > 0 {
			run.Notes = append(run.Notes, fmt.Sprintf("%s: %d request(s) with a value that is not finite left out", key, k))
		}
	}
	return run
}
