package analyze

import (
	"fmt"
	"math"
	"strings"

	"github.com/llem/llem/analyze/trend"
)

// Clock-event reasons (nvmlClocksEventReason*), by bit. GpuIdle is not a
// throttle and is left out of the shares.
const reasonGpuIdle = 0x1

var reasonNames = []struct {
	bit      int64
	name     string
	throttle bool // lowers clocks because of a limit: flagged above the share threshold
}{
	{0x2, "applications_clocks_setting", false},
	{0x4, "sw_power_cap", true},
	{0x8, "hw_slowdown", true},
	{0x10, "sync_boost", false},
	{0x20, "sw_thermal_slowdown", true},
	{0x40, "hw_thermal_slowdown", true},
	{0x80, "hw_power_brake_slowdown", true},
	{0x100, "display_clock_setting", false},
}

// thermal computes the drift checks of a measured window: per GPU the
// temperature at its edges and its slope, the SM clock range, the share
// of time under each clock-event reason and the load before the window;
// for the summed power its trend in 1 s bins.
func (c *runCtx) thermal(w Window) ThermalResult {
	s := c.s
	th := ThermalResult{Window: w.Name, Cycle: w.Cycle, GPUs: []GPUThermal{}, Flags: []Warning{}}
	label := windowLabel(w)
	flagAs := func(code, format string, args ...any) {
		th.Flags = append(th.Flags, Warning{Code: code, Message: fmt.Sprintf(format, args...), Window: label})
	}
	flag := func(format string, args ...any) { flagAs("thermal", format, args...) }
	minLoaded := math.Inf(1)
	for _, g := range c.d.GPUs {
		gt := GPUThermal{GPU: g.Index, TempStartC: NaN, TempEndC: NaN, TempMinC: NaN, TempMaxC: NaN, TempSlopeCPerMin: NaN,
			TempChangeC: NaN, TempTrendP: NaN, SMClockMinMHz: NaN,
			SMClockMaxMHz: NaN, SMClockRangePct: NaN, ReasonSharePct: map[string]float64{}, LoadedBeforeS: NaN}
		if v, ok := g.Temperature.At(w.StartNs); ok {
			gt.TempStartC = Num(v)
		}
		if v, ok := g.Temperature.At(w.EndNs); ok {
			gt.TempEndC = Num(v)
		}
		if gt.TempDrift = c.tempDrift(&gt, g, w); gt.TempDrift {
			flag("%s: temperature drifts by %+.1f C across %s (%+.2f C/min, Mann-Kendall p = %.2g; thresholds %g C/min and %g C): not thermally stable",
				g.Label(), float64(gt.TempChangeC), label, float64(gt.TempSlopeCPerMin), float64(gt.TempTrendP), s.TempSlopeMaxCPerMin, s.TempMinChangeC)
		}
		clk := g.SMClock.Slice(w.StartNs, w.EndNs)
		if sorted := sortedFinite(clk.V); len(sorted) > 0 {
			lo, hi := sorted[0], sorted[len(sorted)-1]
			gt.SMClockMinMHz, gt.SMClockMaxMHz = Num(lo), Num(hi)
			if hi > 0 {
				gt.SMClockRangePct = Num((hi - lo) / hi * 100)
				if float64(gt.SMClockRangePct) > s.ClockRangeMaxPct {
					flag("%s: SM clock ranges %.0f-%.0f MHz in %s (%.1f%%, threshold %g%%)",
						g.Label(), lo, hi, label, float64(gt.SMClockRangePct), s.ClockRangeMaxPct)
				}
			}
		}
		_, reasons := g.Reasons.RawSlice(w.StartNs, w.EndNs)
		if n := len(reasons); n > 0 {
			for _, r := range reasonNames {
				k := 0
				for _, v := range reasons {
					if v&r.bit != 0 {
						k++
					}
				}
				share := float64(k) / float64(n) * 100
				gt.ReasonSharePct[r.name] = share
				if r.throttle && share > s.ReasonShareMaxPct {
					flag("%s: clocks held down by %s %.1f%% of %s (threshold %g%%)", g.Label(), r.name, share, label, s.ReasonShareMaxPct)
				}
			}
		}
		if lb, ok := c.loadedBefore(g, w.StartNs); ok {
			gt.LoadedBeforeS = Num(lb)
			minLoaded = min(minLoaded, lb)
		}
		th.GPUs = append(th.GPUs, gt)
	}
	// What moved on the GPUs, for the cause of a power drift below.
	gpusMoved := len(th.Flags) > 0
	if !math.IsInf(minLoaded, 1) && minLoaded < s.ConditioningS {
		flag("%s opened after only %.1f s under load (at least %g s of thermal conditioning wanted)", label, minLoaded, s.ConditioningS)
	}

	// Power trend of the summed power in 1 s bins (NaN bins dropped).
	bins := c.summedBins(w.StartNs, w.EndNs, 1e9)
	var ts, ps []float64
	for k, v := range bins {
		if !math.IsNaN(v) {
			ts = append(ts, float64(k)+0.5)
			ps = append(ps, v)
		}
	}
	if tr, err := trend.Fit(ts, ps); err == nil {
		th.PowerTrend = &tr
		if math.Abs(tr.DriftPct) > s.PowerDriftMaxPct && tr.MKP < s.TrendAlpha {
			cause, why := c.driftCause(gpusMoved, tr, w)
			th.PowerDriftCause = cause
			flagAs("power_drift", "power drifts by %.2f%% of its mean across %s (Mann-Kendall p = %.2g; threshold %g%%): %s",
				tr.DriftPct, label, tr.MKP, s.PowerDriftMaxPct, why)
		}
	}
	return th
}

// tempDrift fills the temperature fields of gt over w and says whether
// the temperature drifts. The sensor reads whole degrees, so over a short
// window a least-squares slope of 41/42 flicker can be several C/min and
// mean nothing. A drift is a slope above the threshold that the sensor can
// resolve: its Theil-Sen change across the window, which flicker leaves
// near 0, is at least TempMinChangeC (one step of the sensor by default),
// and the Mann-Kendall test finds a monotonic trend.
func (c *runCtx) tempDrift(gt *GPUThermal, g *GPU, w Window) bool {
	if v, ok := g.Temperature.At(w.StartNs); ok {
		gt.TempStartC = Num(v)
	}
	if v, ok := g.Temperature.At(w.EndNs); ok {
		gt.TempEndC = Num(v)
	}
	temp := g.Temperature.Slice(w.StartNs, w.EndNs)
	if sorted := sortedFinite(temp.V); len(sorted) > 0 {
		gt.TempMinC, gt.TempMaxC = Num(sorted[0]), Num(sorted[len(sorted)-1])
	}
	if temp.Len() < 2 {
		return false
	}
	ts := make([]float64, temp.Len())
	for i, t := range temp.T {
		ts[i] = float64(t-w.StartNs) / 1e9
	}
	gt.TempSlopeCPerMin = Num(trend.TempSlopePerMin(ts, temp.V))
	tr, err := trend.Fit(ts, temp.V)
	if err != nil {
		return false
	}
	gt.TempChangeC = Num(tr.TheilSenSlope * float64(w.EndNs-w.StartNs) / 1e9)
	gt.TempTrendP = Num(tr.MKP)
	s := c.s
	return math.Abs(float64(gt.TempSlopeCPerMin)) > s.TempSlopeMaxCPerMin &&
		math.Abs(float64(gt.TempChangeC)) >= s.TempMinChangeC && tr.MKP < s.TrendAlpha
}

// TempVerdict says in words what the temperature did: "drifting",
// "stable", or "no temperature".
func TempVerdict(g GPUThermal) string {
	switch {
	case g.TempDrift:
		return "drifting"
	case math.IsNaN(float64(g.TempMinC)):
		return "no temperature"
	}
	return "stable"
}

// Causes of a power drift.
const (
	DriftThermal  = "thermal"
	DriftWorkload = "workload"
	DriftBoth     = "thermal and workload"
	DriftUnknown  = "unexplained"
)

// driftCause says why the power of w drifted, from what moved with it,
// in a word (the Drift constants) and in a sentence. A GPU whose
// temperature drifts or whose clocks range or are held down (thermal,
// from the GPUs' flags) makes it thermal. The workload moved when the
// requests in flight trend in the direction of the power, or the output
// token rate trends either way (longer contexts change the work per
// token), each by more than the power drift threshold and significantly.
func (c *runCtx) driftCause(thermal bool, power trend.Trend, w Window) (string, string) {
	var moved []string
	drifts := func(bins []float64, sameSign bool) (trend.Trend, bool) {
		if len(bins) < 3 {
			return trend.Trend{}, false
		}
		ts := make([]float64, len(bins))
		for k := range bins {
			ts[k] = float64(k) + 0.5
		}
		tr, err := trend.Fit(ts, bins)
		ok := err == nil && tr.MKP < c.s.TrendAlpha && math.Abs(tr.DriftPct) > c.s.PowerDriftMaxPct &&
			(!sameSign || (tr.DriftPct > 0) == (power.DriftPct > 0))
		return tr, ok
	}
	if tr, ok := drifts(c.concurrencyBins(w.StartNs, w.EndNs, 1e9), true); ok {
		moved = append(moved, fmt.Sprintf("the requests in flight by %+.1f%%", tr.DriftPct))
	}
	if tr, ok := drifts(c.tokenRateBins(w.StartNs, w.EndNs, 1e9), false); ok {
		moved = append(moved, fmt.Sprintf("the output token rate by %+.1f%%", tr.DriftPct))
	}
	workload := len(moved) > 0
	switch {
	case thermal && workload:
		return DriftBoth, "both the temperature or clocks and the workload moved with it (" + strings.Join(moved, ", ") + ")"
	case thermal:
		return DriftThermal, "thermal: the temperature or the clocks moved with it"
	case workload:
		return DriftWorkload, "it follows the workload: " + strings.Join(moved, " and ") + " across the window"
	}
	return DriftUnknown, "neither the temperature, the clocks, the requests in flight nor the token rate moved with it"
}

// concurrencyBins is the time-averaged number of requests in flight in
// bins of binNs over [start, end); nil without requests.
func (c *runCtx) concurrencyBins(start, end, binNs int64) []float64 {
	if c.reqs.Len() == 0 || end <= start {
		return nil
	}
	bins := make([]float64, (end-start+binNs-1)/binNs)
	for _, sp := range c.reqs.Spans() {
		a, b := max(sp[0], start), min(sp[1], end)
		for k := int((a - start) / binNs); a < b && k < len(bins); k++ {
			lo, hi := start+int64(k)*binNs, start+int64(k+1)*binNs
			if o := min(b, hi) - max(a, lo); o > 0 {
				bins[k] += float64(o) / float64(binNs)
			}
		}
	}
	return bins
}

// tokenRateBins is the output tokens per second in whole bins of binNs
// over [start, end); nil without tokens.
func (c *runCtx) tokenRateBins(start, end, binNs int64) []float64 {
	n := int((end - start) / binNs)
	if n < 1 {
		return nil
	}
	var bins []float64
	tk := c.d.Tokens.Range(start, end)
	for t, ok := tk.Next(); ok; t, ok = tk.Next() {
		if bins == nil {
			bins = make([]float64, n)
		}
		if k := int((t.TimestampNs - start) / binNs); k < n {
			bins[k] += float64(t.Count) / (float64(binNs) / 1e9)
		}
	}
	return bins
}

// loadedBefore is how long the GPU had been under load when a window
// opened at t: walking back from t over the state rows, load continues
// through idle gaps shorter than LoadGapS (the pauses between batches)
// and stops at a longer one. ok is false without reasons or utilisation.
func (c *runCtx) loadedBefore(g *GPU, t int64) (float64, bool) {
	var rows *Samples
	var busy func(raw int64) bool
	switch {
	case g.Reasons.Len() > 0:
		rows, busy = &g.Reasons, func(r int64) bool { return r&reasonGpuIdle == 0 }
	case g.Util.Len() > 0:
		// float64(raw) > 0, as the utilisation's value is its raw integer.
		rows, busy = &g.Util, func(r int64) bool { return r > 0 }
	default:
		return 0, false
	}
	gapNs := int64(c.s.LoadGapS * 1e9)
	earliest := t // start of the loaded stretch found so far
	rows.backRaw(t, func(ts, raw int64) bool {
		if busy(raw) {
			earliest = ts
			return true
		}
		// Idle from ts up to the stretch: a long enough pause ends it.
		return earliest-ts < gapNs
	})
	return float64(t-earliest) / 1e9, true
}
