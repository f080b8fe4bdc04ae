package analyze

import (
	"fmt"
	"math"
	"slices"

	"github.com/llem/llem/analyze/steady"
	"github.com/llem/llem/internal/order"
)

// SteadyDetail is the steady-state detection of one measured window.
type SteadyDetail struct {
	result         steady.PowerResult
	ok             bool  // a steady window exists
	startNs, endNs int64 // where it opens and closes
	binNs          int64
	events         *eventSpan
}

type eventSpan struct {
	startNs, endNs int64
	concurrency    int
}

// detectSteady finds the steady state of the summed power over w
// (steady.Power, docs/results.md "Steady state"), binned to SteadyBinMs
// (100 ms: one sensor update, so a bin holds one new reading) or, for a
// slower series (a 1 Hz wall meter), to its sample period. Levels closer
// than the tolerance (steady_tolerance_pct of the level, or NVML's
// accuracy) are one steady state. It also derives the ML.ENERGY event
// window from the requests in w.
func (c *runCtx) detectSteady(w Window) *SteadyDetail {
	s := c.s
	binNs := c.steadyBinNs(w)
	det := &SteadyDetail{binNs: binNs}
	bins := c.summedBins(w.StartNs, w.EndNs, binNs)
	opts := steady.PowerOptions{Method: string(s.Steady), TolerancePct: s.SteadyTolerancePct,
		MinPoints: max(int(s.SteadyMinS*1e9/float64(binNs)), 2*s.SteadyMinSegment), TailFrac: s.SteadyTailFrac,
		TrendAlpha: s.TrendAlpha, SecondsPerPoint: float64(binNs) / 1e9,
		Changepoints: steady.Options{MinSegLen: s.SteadyMinSegment}}
	if !c.d.Run.Meta.WallMeter() {
		opts.ToleranceAbs = s.SpecAccuracyW * math.Sqrt(float64(len(c.d.GPUs)))
	}
	if s.SteadyPenaltyFactor != steady.DefaultPenaltyFactor {
		n := min(len(bins), steady.DefaultMaxFitPoints)
		opts.Changepoints.Penalty = s.SteadyPenaltyFactor * math.Log(float64(max(n, 2)))
	}
	det.result = steady.Power(bins, opts)
	if det.ok = det.result.SteadyStart >= 0; det.ok {
		det.startNs = w.StartNs + int64(det.result.SteadyStart)*binNs
		det.endNs = w.EndNs
		if det.result.SteadyEnd < len(bins) {
			det.endNs = w.StartNs + int64(det.result.SteadyEnd)*binNs
		}
		det.ok = det.endNs > det.startNs
	}
	if st, en, conc, ok := c.reqs.SteadyWindowIn(w.StartNs, w.EndNs, s.MaxNumSeqs); ok {
		det.events = &eventSpan{startNs: st, endNs: en, concurrency: conc}
	}
	return det
}

// steadyBinNs is the bin of the steady-state series: SteadyBinMs, or the
// median sample interval of the power series where that is longer.
func (c *runCtx) steadyBinNs(w Window) int64 {
	bin := int64(c.s.SteadyBinMs * 1e6)
	var gaps []int64 // one for every GPU: a day's window has a million
	for _, p := range c.pts {
		n := p.IndexAfter(w.EndNs) - p.Index(w.StartNs)
		if n < 3 {
			continue
		}
		gaps = slices.Grow(gaps[:0], n-1)
		prev, have := int64(0), false
		for t := range p.Seq(w.StartNs, w.EndNs) {
			if have {
				gaps = append(gaps, t-prev)
			}
			prev, have = t, true
		}
		bin = max(bin, order.SelectKth(gaps, len(gaps)/2)) // the upper median, as sorting gave
	}
	return bin
}

func (c *runCtx) steadySummary(w Window, det *SteadyDetail) *SteadyResult {
	r := &SteadyResult{Method: c.s.Steady, Window: w.Name, Cycle: w.Cycle, Class: det.result.Class,
		StartS: NaN, EndS: NaN, BinMs: float64(det.binNs) / 1e6, Note: det.result.Note, Steps: []SteadyStep{}}
	if det.ok {
		r.StartS = Num(c.d.seconds(det.startNs))
		r.EndS = Num(c.d.seconds(det.endNs))
		r.LevelW = Num(det.result.Level)
		r.ToleranceW = Num(det.result.Tolerance)
	}
	for _, st := range det.result.Steps {
		r.Steps = append(r.Steps, SteadyStep{AtS: c.d.seconds(w.StartNs + int64(st.At)*det.binNs), FromW: st.From, ToW: st.To,
			ChangePct: (st.To - st.From) / st.From * 100, Merged: st.Merged})
	}
	if det.events != nil {
		r.Events = &EventWindow{StartS: c.d.seconds(det.events.startNs), EndS: c.d.seconds(det.events.endNs),
			Concurrency: det.events.concurrency}
	}
	if det.events == nil && c.reqs.Len() > 0 {
		r.Note = joinNotes(r.Note, fmt.Sprintf("no ML.ENERGY event window in %s: too few requests for the concurrency", windowLabel(w)))
	}
	return r
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
