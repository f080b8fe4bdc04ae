package plots

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/compare"
)

// TestOneSourceOfNumbers: for every shipped run, the per-cycle and
// per-run numbers of `llem analyze --json`, of `llem compare` and of what
// the figures draw are the same numbers (issue 16). The JSON documents
// are decoded back, as a user of either would read them.
func TestOneSourceOfNumbers(t *testing.T) {
	dirs := []string{bs8, bs32, long, matmul}
	s := analyze.DefaultSettings()
	runs, err := analyze.Open(dirs, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc analyze.Results
	roundTrip(t, analyze.Document(runs, s, "test"), &doc)
	res, err := compare.Compare(runs, s, compare.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var cmp compare.Result
	roundTrip(t, res, &cmp)
	rows := map[string]map[string]compare.Row{} // metric -> run -> row
	for _, m := range cmp.Metrics {
		rows[m.Key] = map[string]compare.Row{}
		for _, r := range m.Rows {
			rows[m.Key][r.Group] = r
		}
	}

	for i, rr := range doc.Runs {
		r := runs[i]
		// Per cycle: compare's samples are analyze's per-cycle values, and
		// its estimates analyze's intervals over cycles.
		type metric struct {
			key   string
			value func(analyze.Totals) analyze.Num
			iv    func(*analyze.CycleResult) *analyze.Interval
		}
		metrics := []metric{
			{"energy_per_output_token_j", func(t analyze.Totals) analyze.Num { return t.EnergyPerOutputTokenJ },
				func(c *analyze.CycleResult) *analyze.Interval { return c.EnergyPerOutputTokenJ }},
			{"output_tokens_per_s", func(t analyze.Totals) analyze.Num { return t.OutputTokensPerS },
				func(c *analyze.CycleResult) *analyze.Interval { return c.OutputTokensPerS }},
			{"mean_power_w", func(t analyze.Totals) analyze.Num { return t.MeanPowerW },
				func(c *analyze.CycleResult) *analyze.Interval { return c.MeanPowerW }},
			{"energy_per_request_j", func(t analyze.Totals) analyze.Num { return t.EnergyPerRequestJ },
				func(c *analyze.CycleResult) *analyze.Interval { return c.EnergyPerRequestJ }},
		}
		for _, m := range metrics {
			row, ok := rows[m.key][rr.Run]
			var want []float64
			for _, cv := range rr.Cycles.PerCycle {
				if v := m.value(cv.Totals); v.Valid() {
					want = append(want, float64(v))
				}
			}
			if !ok {
				if len(want) > 0 {
					t.Errorf("%s %s: compare has no row", rr.Run, m.key)
				}
				continue
			}
			if !equalFloats(row.Samples, want) {
				t.Errorf("%s %s: compare's samples %v, analyze's per-cycle values %v", rr.Run, m.key, row.Samples, want)
			}
			if iv := m.iv(rr.Cycles); iv != nil && (row.Estimate.Estimate != iv.Estimate || row.Estimate.Low != iv.Low || row.Estimate.High != iv.High) {
				t.Errorf("%s %s: compare %v [%v, %v], analyze %v [%v, %v]", rr.Run, m.key,
					row.Estimate.Estimate, row.Estimate.Low, row.Estimate.High, iv.Estimate, iv.Low, iv.High)
			}
		}
		// The figures: energy per output token and tokens/s with their
		// intervals are analyze's over cycles, else its pooled measured
		// windows'.
		e, ok := efficiencyOf(r)
		hasTokens := rr.Measured != nil && rr.Measured.OutputTokens > 0
		if ok != hasTokens {
			t.Errorf("%s: figure has efficiency %v, analyze has output tokens %v", rr.Run, ok, hasTokens)
		}
		if ok {
			wantEPT, wantTPS := estimateOf(rr.Measured.EnergyPerOutputTokenJ, nil), estimateOf(rr.Measured.OutputTokensPerS, nil)
			if c := rr.Cycles; c != nil && c.EnergyPerOutputTokenJ != nil {
				wantEPT, wantTPS = estimateOf(0, c.EnergyPerOutputTokenJ), estimateOf(0, c.OutputTokensPerS)
			}
			if !sameInterval(e.ept, wantEPT) || !sameInterval(e.tps, wantTPS) {
				t.Errorf("%s: figure %+v %+v, analyze %+v %+v", rr.Run, e.ept, e.tps, wantEPT, wantTPS)
			}
		}
		// Latency: the figure's and compare's requests are analyze's.
		if rr.Latency != nil {
			if len(r.Latency.TTFT) != rr.Latency.Requests {
				t.Errorf("%s: figure draws %d TTFTs, analyze counts %d requests", rr.Run, len(r.Latency.TTFT), rr.Latency.Requests)
			}
			if row := rows["ttft_s"][rr.Run]; !equalFloats(row.Samples, r.Latency.TTFT) {
				t.Errorf("%s: compare's TTFT samples differ from the figure's", rr.Run)
			}
		}
		// The timeline's counter steps integrate to the run's counter energy.
		var energy float64
		for _, seg := range r.PowerTraces().Counter {
			for k := 1; k < len(seg.X); k++ {
				energy += seg.Y[k-1] * (seg.X[k] - seg.X[k-1])
			}
		}
		reads := r.Data.GPUs[0].Energy
		if want := float64(reads[len(reads)-1].EnergyMj-reads[0].EnergyMj) / 1000; math.Abs(energy-want) > 1e-6*want {
			t.Errorf("%s: counter steps integrate to %.3f J, the counter reads %.3f J", rr.Run, energy, want)
		}
	}
}

func roundTrip(t *testing.T, v, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// estimateOf is the interval a figure should draw: iv's, else v without
// bounds.
func estimateOf(v analyze.Num, iv *analyze.Interval) interval {
	if iv != nil {
		return interval{iv.Estimate, iv.Low, iv.High}
	}
	return interval{float64(v), math.NaN(), math.NaN()}
}

func sameInterval(a, b interval) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return eq(a.est, b.est) && eq(a.lo, b.lo) && eq(a.hi, b.hi)
}
