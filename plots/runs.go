package plots

import (
	"fmt"

	"github.com/llem/llem/analyze"
)

// Run is an analysed run (analyze.Open): every number a figure draws is
// one analyze computed, so a figure shows what `llem analyze` reports.
type Run = analyze.Run

// windows are the run's windows of kind (any kind when empty) that are
// measured or not as asked.
func windows(r *Run, kind string, measured bool) []analyze.WindowResult {
	var out []analyze.WindowResult
	for _, w := range r.Result.Windows {
		if (kind == "" || w.Kind == kind) && w.Measured == measured {
			out = append(out, w)
		}
	}
	return out
}

// efficiency is a run's energy per output token and throughput.
type efficiency struct {
	ept, tps interval // J per output token; output tokens per second
	cycles   int      // cycles the intervals are over; 0 without intervals
	method   string   // of the intervals
}

// efficiencyOf is analyze's Run.Efficiency as the figures draw it.
func efficiencyOf(r *Run) (efficiency, bool) {
	e, ok := r.Efficiency()
	iv := func(x analyze.Estimate) interval { return interval{x.Value, x.Low, x.High} }
	return efficiency{ept: iv(e.EnergyPerOutputTokenJ), tps: iv(e.OutputTokensPerS), cycles: e.Cycles, method: e.Method}, ok
}

// xyOf is an analyze series as the figures draw it.
func xyOf(p analyze.XY) xy { return xy{x: p.X, y: p.Y} }

// withRequests keeps the runs that have output tokens (what latency,
// efficiency and pareto need) and says which it left out.
func withRequests(runs []*Run, kind Kind) (kept []*Run, notes []string, err error) {
	for _, r := range runs {
		if r.Requests().Len() == 0 {
			notes = append(notes, fmt.Sprintf("%s: %s has no requests (no request events, docs/events.md) and is left out", kind, r.Dir))
			continue
		}
		kept = append(kept, r)
	}
	if len(kept) == 0 {
		return nil, notes, fmt.Errorf("%s: no run has requests: the figure needs the request and token events a client sends (docs/events.md)", kind)
	}
	return kept, notes, nil
}
