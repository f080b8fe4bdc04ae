package analyze

import (
	"fmt"
	"math"
	"sort"

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
	th := ThermalResult{Window: w.Name, Cycle: w.Cycle, GPUs: []GPUThermal{}, Flags: []string{}}
	label := windowLabel(w)
	flag := func(format string, args ...any) { th.Flags = append(th.Flags, fmt.Sprintf(format, args...)) }
	minLoaded := math.Inf(1)
	for _, g := range c.d.GPUs {
		gt := GPUThermal{GPU: g.Index, TempStartC: NaN, TempEndC: NaN, TempSlopeCPerMin: NaN, SMClockMinMHz: NaN,
			SMClockMaxMHz: NaN, SMClockRangePct: NaN, ReasonSharePct: map[string]float64{}, LoadedBeforeS: NaN}
		if v, ok := g.Temperature.At(w.StartNs); ok {
			gt.TempStartC = Num(v)
		}
		if v, ok := g.Temperature.At(w.EndNs); ok {
			gt.TempEndC = Num(v)
		}
		temp := g.Temperature.Slice(w.StartNs, w.EndNs)
		if temp.Len() >= 2 {
			ts := make([]float64, temp.Len())
			for i, t := range temp.T {
				ts[i] = float64(t-w.StartNs) / 1e9
			}
			gt.TempSlopeCPerMin = Num(trend.TempSlopePerMin(ts, temp.V))
			if math.Abs(float64(gt.TempSlopeCPerMin)) > s.TempSlopeMaxCPerMin {
				flag("%s: temperature changes by %.2f C/min in %s (threshold %g C/min): not thermally stable",
					g.Label(), float64(gt.TempSlopeCPerMin), label, s.TempSlopeMaxCPerMin)
			}
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
		i := sort.Search(len(g.RT), func(k int) bool { return g.RT[k] >= w.StartNs })
		j := sort.Search(len(g.RT), func(k int) bool { return g.RT[k] > w.EndNs })
		if n := j - i; n > 0 {
			for _, r := range reasonNames {
				k := 0
				for _, v := range g.Reasons[i:j] {
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
			flag("power drifts by %.2f%% of its mean across %s (Mann-Kendall p = %.2g; threshold %g%%)",
				tr.DriftPct, label, tr.MKP, s.PowerDriftMaxPct)
		}
	}
	return th
}

// loadedBefore is how long the GPU had been under load when a window
// opened at t: walking back from t over the state rows, load continues
// through idle gaps shorter than LoadGapS (the pauses between batches)
// and stops at a longer one. ok is false without reasons or utilisation.
func (c *runCtx) loadedBefore(g *GPU, t int64) (float64, bool) {
	var ts []int64
	var busy func(k int) bool
	switch {
	case len(g.RT) > 0:
		ts = g.RT
		busy = func(k int) bool { return g.Reasons[k]&reasonGpuIdle == 0 }
	case g.Util.Len() > 0:
		ts = g.Util.T
		busy = func(k int) bool { return g.Util.V[k] > 0 }
	default:
		return 0, false
	}
	gapNs := int64(c.s.LoadGapS * 1e9)
	k := sort.Search(len(ts), func(k int) bool { return ts[k] > t }) - 1
	if k < 0 {
		return 0, true
	}
	earliest := t // start of the loaded stretch found so far
	for ; k >= 0; k-- {
		if busy(k) {
			earliest = ts[k]
			continue
		}
		// Idle from ts[k] up to the stretch: a long enough pause ends it.
		if earliest-ts[k] >= gapNs {
			break
		}
	}
	return float64(t-earliest) / 1e9, true
}
