package analyze

import (
	"fmt"
	"math"

	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/analyze/steady"
)

// SteadyDetail is the steady-state detection of one measured window.
type SteadyDetail struct {
	result  steady.Result
	ok      bool  // a steady window exists
	startNs int64 // where it opens
	binNs   int64
	events  *eventSpan
	note    string
}

type eventSpan struct {
	startNs, endNs int64
	concurrency    int
}

// detectSteady finds the steady state of the summed power over w, binned
// to SteadyBinMs (100 ms: one sensor update, so a bin holds one new
// reading), by PELT and Barrett et al.'s classification, or by MSER-5.
// It also derives the ML.ENERGY event window from the requests in w.
func (c *runCtx) detectSteady(w Window) *SteadyDetail {
	s := c.s
	binNs := int64(s.SteadyBinMs * 1e6)
	det := &SteadyDetail{binNs: binNs}
	bins := c.summedBins(w.StartNs, w.EndNs, binNs)
	// Bins the samples do not cover (gaps) are NaN; the detector drops
	// non-finite points as outliers, which keeps indices in time.
	switch s.Steady {
	case SteadyMSER5:
		x := make([]float64, 0, len(bins))
		for _, v := range bins {
			if !math.IsNaN(v) {
				x = append(x, v)
			}
		}
		det.result = steady.Result{Class: steady.None, SteadyStart: -1, Changepoints: []int{}, Segments: []steady.Segment{}}
		if d, ok := steady.MSER5(x); ok && len(x) == len(bins) {
			det.result.SteadyStart = d
			det.result.Class = "mser5"
			det.ok = true
		} else if len(x) != len(bins) {
			det.note = "MSER-5 needs a gap-free series; the window has bins without samples"
		} else {
			det.note = "MSER-5 found no truncation in the first half: the power did not settle"
		}
	default:
		opts := steady.Options{MinSegLen: s.SteadyMinSegment, DeltaPct: s.SteadyDeltaPct, StdDevBounds: s.SteadyBounds == BoundsStdDev}
		if s.SteadyPenaltyFactor != steady.DefaultPenaltyFactor {
			n := min(len(bins), steady.DefaultMaxFitPoints)
			opts.Penalty = s.SteadyPenaltyFactor * math.Log(float64(max(n, 2)))
		}
		det.result = steady.Detect(bins, opts)
		if det.result.Segments == nil {
			det.result.Segments = []steady.Segment{}
		}
		if det.result.Changepoints == nil {
			det.result.Changepoints = []int{}
		}
		det.ok = det.result.Class != steady.None && det.result.SteadyStart >= 0
		if !det.ok {
			det.note = "no steady state: the power still changes in the last quarter of the window"
		}
	}
	if det.ok {
		det.startNs = w.StartNs + int64(det.result.SteadyStart)*binNs
		if det.startNs >= w.EndNs {
			det.ok = false
		}
	}

	reqs := serving.Build(c.eventsIn(w.StartNs, w.EndNs), c.tokensIn(w.StartNs, w.EndNs), c.d.IDs)
	if st, en, conc, ok := reqs.SteadyWindow(s.MaxNumSeqs); ok {
		det.events = &eventSpan{startNs: st, endNs: en, concurrency: conc}
	}
	return det
}

func (c *runCtx) steadySummary(w Window, det *SteadyDetail) *SteadyResult {
	r := &SteadyResult{Method: c.s.Steady, Window: w.Name, Cycle: w.Cycle, Class: det.result.Class,
		StartS: NaN, EndS: NaN, BinMs: c.s.SteadyBinMs, Note: det.note}
	if det.ok {
		r.StartS = Num(c.d.seconds(det.startNs))
		r.EndS = Num(c.d.seconds(w.EndNs))
	}
	if det.events != nil {
		r.Events = &EventWindow{StartS: c.d.seconds(det.events.startNs), EndS: c.d.seconds(det.events.endNs),
			Concurrency: det.events.concurrency}
	}
	if r.Note == "" && det.events == nil && len(c.reqs.Requests) > 0 {
		r.Note = fmt.Sprintf("no ML.ENERGY event window in %s: too few requests for the concurrency", windowLabel(w))
	}
	return r
}
