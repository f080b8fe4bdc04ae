package compare

import (
	"fmt"
	"math"
	"slices"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/serving"
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

// Run is one run's samples of every metric.
type Run struct {
	Name   string            // how the run is called: the path given
	RunID  string            // meta.json run_id
	Labels map[string]string // llem record --label
	// Cycles counts the cycles with a measured window. 0: the run has none,
	// and its measured windows together are its one per-cycle sample.
	Cycles  int
	Samples map[string][]float64 // by Metric.Key; finite values only
	Notes   []string
}

// Load reads and analyses the run in dir with the analysis settings s and
// returns its samples.
func Load(dir string, s analyze.Settings) (Run, error) {
	d, err := analyze.Load(dir)
	if err != nil {
		return Run{}, err
	}
	rr := analyze.AnalyzeRun(d, dir, s)
	return FromAnalysis(d, &rr), nil
}

// FromAnalysis takes a run's samples from its analysis rr of the data d.
//
// Per-cycle metrics: for each cycle, its measured windows (rr.Windows with
// measured set and that cycle) are summed: energy E (the counter's, else
// integrated power's, as each window's own figures use), output tokens T,
// duration D and ended requests R; the samples are E/T, T/D, E/D and E/R.
// This is how `llem analyze` forms its cycles (results.md: per-request
// energy is not a sample, the energy of a cycle is). A run without cycles
// gives one sample from all its measured windows together.
//
// Per-request metrics: TTFT and ITL of every request that starts in a
// measured window (serving.Set.Latency), pooled over the measured windows
// as `llem analyze` pools its latency.
func FromAnalysis(d *analyze.Data, rr *analyze.RunResult) Run {
	run := Run{Name: rr.Run, RunID: rr.RunID, Labels: rr.Labels, Samples: map[string][]float64{}}
	if run.Labels == nil {
		run.Labels = map[string]string{}
	}
	type sums struct{ e, tok, dur, req float64 }
	byCycle := map[int]*sums{}
	var cycles []int
	var whole sums
	var measured []analyze.WindowResult
	for _, w := range rr.Windows {
		if !w.Measured {
			continue
		}
		measured = append(measured, w)
		e := w.EnergyJ
		if !e.Valid() {
			e = w.EnergyIntegratedJ
		}
		add := func(s *sums) {
			s.e += float64(e) // NaN stays NaN: the sample is dropped
			s.tok += float64(w.OutputTokens)
			s.dur += w.DurationS
			s.req += float64(w.Requests)
		}
		add(&whole)
		if w.Cycle > 0 {
			s := byCycle[w.Cycle]
			if s == nil {
				s = &sums{}
				byCycle[w.Cycle] = s
				cycles = append(cycles, w.Cycle)
			}
			add(s)
		}
	}
	slices.Sort(cycles)
	units := []sums{whole}
	if len(cycles) > 0 {
		units = units[:0]
		for _, c := range cycles {
			units = append(units, *byCycle[c])
		}
		run.Cycles = len(cycles)
	}
	dropped := map[string]int{}
	put := func(key string, v float64) {
		if finite(v) {
			run.Samples[key] = append(run.Samples[key], v)
		} else {
			dropped[key]++
		}
	}
	for _, u := range units {
		ratio := func(a, b float64) float64 {
			if !(b > 0) {
				return math.NaN()
			}
			return a / b
		}
		put("energy_per_output_token_j", ratio(u.e, u.tok))
		put("output_tokens_per_s", ratio(u.tok, u.dur))
		put("mean_power_w", ratio(u.e, u.dur))
		put("energy_per_request_j", ratio(u.e, u.req))
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

	// Latency: serving's request set over the windows' own spans. A
	// window's start_s is (t - origin) / 1e9 in float64, which rounds back
	// to the nanosecond for runs shorter than ~50 days.
	if len(d.Events) > 0 {
		reqs := serving.Build(d.Events, d.Tokens, d.IDs)
		for _, w := range measured {
			start := d.Origin + int64(math.Round(w.StartS*1e9))
			end := d.Origin + int64(math.Round(w.EndS*1e9))
			l := reqs.Latency(start, end)
			for _, v := range l.TTFT {
				put("ttft_s", v)
			}
			for _, v := range l.ITL {
				put("itl_s", v)
			}
		}
	}
	for _, key := range []string{"ttft_s", "itl_s"} {
		if k := dropped[key]; k > 0 {
			run.Notes = append(run.Notes, fmt.Sprintf("%s: %d request(s) with a value that is not finite left out", key, k))
		}
	}
	return run
}
