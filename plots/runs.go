package plots

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
	"github.com/llem/llem/analyze/serving"
)

// Run is a recorded run, loaded and analysed.
type Run struct {
	Dir      string
	Label    string // how the figures name the run (see Load)
	Data     *analyze.Data
	Result   analyze.RunResult
	Settings analyze.Settings

	reqs *serving.Set // built on first use
}

// Load reads and analyses each run directory with settings s, as
// `llem analyze` does, and names the runs: by the labels whose values
// differ between them (batch=8 and batch=32 in a batch sweep), else by
// all their labels, else by the directory's name.
func Load(dirs []string, s analyze.Settings) ([]*Run, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var runs []*Run
	for _, dir := range dirs {
		d, err := analyze.Load(dir)
		if err != nil {
			return nil, err
		}
		runs = append(runs, &Run{Dir: dir, Data: d, Result: analyze.AnalyzeRun(d, dir, s), Settings: s})
	}
	nameRuns(runs)
	return runs, nil
}

// nameRuns sets each run's Label.
func nameRuns(runs []*Run) {
	keys := map[string]bool{}
	for _, r := range runs {
		for k := range r.Result.Labels {
			keys[k] = true
		}
	}
	var varying []string
	for k := range keys {
		first, firstOK := runs[0].Result.Labels[k]
		for _, r := range runs[1:] {
			if v, ok := r.Result.Labels[k]; ok != firstOK || v != first {
				varying = append(varying, k)
				break
			}
		}
	}
	sort.Strings(varying)
	names := map[string]int{}
	for _, r := range runs {
		use := varying
		if len(runs) == 1 {
			for k := range r.Result.Labels {
				use = append(use, k)
			}
			sort.Strings(use)
		}
		var parts []string
		for _, k := range use {
			if v, ok := r.Result.Labels[k]; ok {
				parts = append(parts, k+"="+v)
			}
		}
		r.Label = strings.Join(parts, " ")
		if r.Label == "" {
			r.Label = filepath.Base(filepath.Clean(r.Dir))
		}
		names[r.Label]++
	}
	// Labels that still collide: the directory's name, and failing that
	// (the same run twice) a number.
	seen := map[string]int{}
	for _, r := range runs {
		if names[r.Label] < 2 {
			continue
		}
		base := filepath.Base(filepath.Clean(r.Dir))
		if base != r.Label {
			r.Label += " (" + base + ")"
		} else {
			seen[base]++
			r.Label = fmt.Sprintf("%s (%d)", base, seen[base])
		}
	}
}

// sec is a trace time in seconds from the run's first sample.
func (r *Run) sec(ns int64) float64 { return float64(ns-r.Data.Origin) / 1e9 }

// ns is the trace time of s seconds from the first sample (the inverse of
// the start_s and end_s of the results, exact to the nanosecond for any
// run shorter than a century).
func (r *Run) ns(s float64) int64 { return r.Data.Origin + int64(math.Round(s*1e9)) }

func (r *Run) requests() *serving.Set {
	if r.reqs == nil {
		r.reqs = serving.Build(r.Data.Events, r.Data.Tokens, r.Data.IDs)
	}
	return r.reqs
}

// windows are the run's windows of kind (any kind when empty) that are
// measured or not as asked.
func (r *Run) windows(kind string, measured bool) []analyze.WindowResult {
	var out []analyze.WindowResult
	for _, w := range r.Result.Windows {
		if (kind == "" || w.Kind == kind) && w.Measured == measured {
			out = append(out, w)
		}
	}
	return out
}

// latency gathers the per-request latencies of the requests that start in
// the measured windows, as analyze does for its latency summary.
func (r *Run) latency() serving.Latency {
	var l serving.Latency
	for _, w := range r.windows("", true) {
		x := r.requests().Latency(r.ns(w.StartS), r.ns(w.EndS))
		l.TTFT = append(l.TTFT, x.TTFT...)
		l.ITL = append(l.ITL, x.ITL...)
		l.E2E = append(l.E2E, x.E2E...)
	}
	return l
}

// efficiency is a run's energy per output token and throughput.
type efficiency struct {
	ept, tps interval // J per output token; output tokens per second
	cycles   int      // cycles the intervals are over; 0 without intervals
}

// efficiencyOf: with RunResult.Cycles' BCa interval of energy per output
// token (at least min_cycles cycles), the mean over cycles with its
// interval, and the mean tokens/s over cycles with a BCa interval of the
// same settings; otherwise energy / tokens and tokens / time pooled over
// the measured windows, without intervals. ok is false for a run without
// output tokens.
func (r *Run) efficiencyOf() (e efficiency, ok bool) {
	nan := interval{math.NaN(), math.NaN(), math.NaN()}
	e.ept, e.tps = nan, nan
	var energy, tokens, dur float64
	perCycle := map[int][2]float64{} // tokens, seconds
	for _, w := range r.windows("", true) {
		if !w.OutputTokens.Valid() || w.OutputTokens <= 0 {
			continue
		}
		tokens += float64(w.OutputTokens)
		dur += w.DurationS
		if w.EnergyPerOutputTokenJ.Valid() {
			energy += float64(w.EnergyPerOutputTokenJ * w.OutputTokens)
		}
		if w.Cycle > 0 {
			pc := perCycle[w.Cycle]
			perCycle[w.Cycle] = [2]float64{pc[0] + float64(w.OutputTokens), pc[1] + w.DurationS}
		}
	}
	if tokens == 0 || dur == 0 {
		return e, false
	}
	e.ept.est, e.tps.est = energy/tokens, tokens/dur
	if energy == 0 {
		e.ept.est = math.NaN()
	}
	cy := r.Result.Cycles
	if cy == nil || cy.EnergyPerOutputTokenJ == nil || cy.EnergyPerOutputTokenJ.Degenerate {
		return e, true
	}
	iv := cy.EnergyPerOutputTokenJ
	e.ept = interval{iv.Estimate, iv.Low, iv.High}
	e.cycles = cy.N
	var ids []int
	for c := range perCycle {
		ids = append(ids, c)
	}
	slices.Sort(ids)
	var tps []float64
	for _, c := range ids {
		if pc := perCycle[c]; pc[1] > 0 {
			tps = append(tps, pc[0]/pc[1])
		}
	}
	s := r.Settings
	if b, err := bootstrap.BCa(tps, bootstrap.Mean, bootstrap.Options{Resamples: s.Resamples, Confidence: s.Confidence, Seed: s.Seed}); err == nil {
		e.tps = interval{b.Estimate, b.Low, b.High}
	} else if len(tps) > 0 {
		e.tps = interval{meanOf(tps), math.NaN(), math.NaN()}
	}
	return e, true
}

func meanOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// withRequests keeps the runs that have output tokens (what latency,
// efficiency and pareto need) and says which it left out.
func withRequests(runs []*Run, kind Kind) (kept []*Run, notes []string, err error) {
	for _, r := range runs {
		if len(r.requests().Requests) == 0 {
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
