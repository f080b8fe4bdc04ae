package analyze

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/llem/llem/analyze/sensor"
	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/trace"
)

// Analyze runs the methodology on each run directory, in the order given.
// progress (may be nil) receives one line per run.
func Analyze(dirs []string, s Settings, version string, progress io.Writer) (*Results, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	res := &Results{Tool: "llem", LlemVersion: version, Settings: s, SettingsHash: s.Hash(), Runs: []RunResult{}}
	for i, dir := range dirs {
		if progress != nil {
			fmt.Fprintf(progress, "llem: analysing %s (%d of %d)\n", dir, i+1, len(dirs))
		}
		d, err := Load(dir)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, AnalyzeRun(d, dir, s))
	}
	return res, nil
}

// runCtx is what the per-window computations share.
type runCtx struct {
	d        *Data
	s        Settings
	pts      []Series // per GPU: the power series integrated (driver, else instant)
	ptsFrom  []string
	reqs     *serving.Set
	updateMs float64 // the sensor update period used for the edge term
}

// AnalyzeRun computes every result of one loaded run. name is how the
// run is called in the output (the path given on the command line).
func AnalyzeRun(d *Data, name string, s Settings) RunResult {
	m := d.Run.Meta
	rr := RunResult{Run: name, RunID: m.RunID, Complete: m.Complete, Status: m.Status, Device: m.Device,
		Labels: m.Labels, Warnings: []Warning{}}
	if rr.Labels == nil {
		rr.Labels = map[string]string{}
	}
	for _, g := range d.GPUs {
		gs := GPUSummary{Index: g.Index, PowerLimitW: NaN}
		if g.Info != nil {
			gs.Name, gs.UUID, gs.Lost = g.Info.Name, g.Info.UUID, g.Info.Lost
			if g.Info.PowerLimitMw != nil {
				gs.PowerLimitW = Num(float64(*g.Info.PowerLimitMw) / 1000)
			}
		}
		rr.GPUs = append(rr.GPUs, gs)
	}

	// Run-level warnings: the recorder's own, then what loading found.
	if !m.Complete {
		rr.warn(Warning{Code: "incomplete_run", Message: fmt.Sprintf(
			"the run is incomplete (status %q): the recorder did not finish; every complete segment is analysed", m.Status)})
	}
	if len(d.Run.Partial) > 0 {
		rr.warn(Warning{Code: "partial_segments", Message: fmt.Sprintf(
			"%d segment(s) were being written when the recorder stopped and hold no readable rows", len(d.Run.Partial))})
	}
	for _, w := range m.Warnings {
		rr.warn(Warning{Code: w.Code, Message: w.Message, GPU: w.GPU})
	}
	for _, w := range d.Notes {
		rr.warn(Warning{Code: w.Code, Message: w.Message, GPU: w.GPU})
	}
	if len(d.GPUs) > 1 {
		rr.warn(Warning{Code: "multi_gpu_scope", Message: fmt.Sprintf(
			"%d GPUs: energies are per GPU and summed; NVLink/NVSwitch, CPU, memory and host power are outside the GPUs' counters", len(d.GPUs))})
	}
	if m.Events.Dropped > 0 {
		rr.warn(Warning{Code: "events_dropped", Message: fmt.Sprintf(
			"%d client events were dropped by the recorder: token and request counts are too low", m.Events.Dropped)})
	}
	if d.Bad > 0 || m.Events.Bad > 0 {
		rr.warn(Warning{Code: "bad_events", Message: fmt.Sprintf(
			"%d client lines were refused (see the bad_events table)", max(int64(d.Bad), m.Events.Bad))})
	}

	c := &runCtx{d: d, s: s}
	for _, g := range d.GPUs {
		from, ps := powerSource(g)
		c.pts = append(c.pts, ps)
		c.ptsFrom = append(c.ptsFrom, from)
		if from == "average_power" {
			gpu := g.Index
			rr.warn(Warning{Code: "average_power_only", GPU: &gpu, Message: fmt.Sprintf(
				"GPU %d has neither driver power samples nor instant power: power and integrated energy come from the 1 s average (nvidia-smi's power.draw on Ampere and newer), which smooths every step over 1 s", g.Index)})
		}
	}
	c.reqs = serving.Build(d.Events, d.Tokens, d.IDs)
	rr.Requests = RequestSummary{Total: len(c.reqs.Requests), Problems: c.reqs.Problems}
	if rr.Requests.Problems == nil {
		rr.Requests.Problems = []string{}
	}

	rr.Sensor = c.sensorResult()
	c.updateMs = rr.Sensor.CounterUpdateMsUsed

	windows, warns := buildWindows(d, s)
	for _, w := range warns {
		rr.warn(Warning{Code: w.Code, Message: w.Message})
	}
	// The run window spans what every GPU's counter covers, when there is
	// a counter, so that the whole run has a counter energy.
	windows[0].StartNs, windows[0].EndNs = c.counterSpan(windows[0].StartNs, windows[0].EndNs)

	// Steady windows go right after the measured window they come from.
	var all []Window
	var steadyOf []*SteadyDetail
	for _, w := range windows {
		all = append(all, w)
		steadyOf = append(steadyOf, nil)
		if !w.Measured {
			continue
		}
		det := c.detectSteady(w)
		steadyOf[len(steadyOf)-1] = det
		if det.ok {
			all = append(all, Window{Name: "steady", Kind: KindSteady, Cycle: w.Cycle, StartNs: det.startNs, EndNs: w.EndNs})
			steadyOf = append(steadyOf, nil)
		}
		if det.events != nil {
			all = append(all, Window{Name: "steady_events", Kind: KindSteadyEvents, Cycle: w.Cycle,
				StartNs: det.events.startNs, EndNs: det.events.endNs})
			steadyOf = append(steadyOf, nil)
		}
	}

	rr.Baseline = c.baselines(windows)
	for i, w := range all {
		wr := c.window(w)
		if det := steadyOf[i]; det != nil {
			r := det.result
			wr.Steady = &r
		}
		if p0 := rr.Baseline.P0; p0 != nil && wr.EnergyJ.Valid() && p0.MedianW.Estimate > 0 {
			wr.EnergyAdjustedJ = wr.EnergyJ - Num(p0.MedianW.Estimate*wr.DurationS)
		}
		rr.Windows = append(rr.Windows, wr)
	}

	// The first measured window's steady state is the run's summary.
	for i, w := range all {
		if det := steadyOf[i]; det != nil {
			rr.SteadyState = c.steadySummary(w, det)
			break
		}
	}
	rr.Thermal = []ThermalResult{}
	for _, w := range windows {
		if w.Measured {
			th := c.thermal(w)
			for _, f := range th.Flags {
				rr.warn(Warning{Code: "thermal", Message: f, Window: windowLabel(w)})
			}
			rr.Thermal = append(rr.Thermal, th)
		}
	}
	rr.Latency = c.latency(windows)
	rr.Cycles = c.cycles(rr.Windows)
	if rr.Cycles != nil && rr.Cycles.Note != "" {
		rr.warn(Warning{Code: "few_cycles", Message: rr.Cycles.Note})
	}
	for _, wr := range rr.Windows {
		if wr.Measured {
			for _, w := range wr.Warnings {
				rr.warn(w)
			}
		}
	}
	return rr
}

func (rr *RunResult) warn(w Warning) { rr.Warnings = append(rr.Warnings, w) }

// windowLabel names a window in messages: "measure (cycle 2)".
func windowLabel(w Window) string {
	if w.Cycle > 0 && w.Kind != KindCycle {
		return fmt.Sprintf("%s (cycle %d)", w.Name, w.Cycle)
	}
	return w.Name
}

// counterSpan narrows [start, end] to the span every GPU's counter reads
// cover, if that span is not empty.
func (c *runCtx) counterSpan(start, end int64) (int64, int64) {
	lo, hi := start, end
	for _, g := range c.d.GPUs {
		if len(g.Energy) < 2 {
			return start, end
		}
		lo = max(lo, g.Energy[0].TimestampNs)
		hi = min(hi, g.Energy[len(g.Energy)-1].TimestampNs)
	}
	if hi <= lo {
		return start, end
	}
	return lo, hi
}

// window computes the energy, power, efficiency and uncertainty of w.
func (c *runCtx) window(w Window) WindowResult {
	d, s := c.d, c.s
	dur := float64(w.EndNs-w.StartNs) / 1e9
	wr := WindowResult{Name: w.Name, Kind: w.Kind, Cycle: w.Cycle, Measured: w.Measured,
		StartS: d.seconds(w.StartNs), EndS: d.seconds(w.EndNs), DurationS: dur, Warnings: []Warning{}}
	label := windowLabel(w)
	warn := func(code, format string, args ...any) {
		wr.Warnings = append(wr.Warnings, Warning{Code: code, Message: fmt.Sprintf(format, args...), Window: label})
	}
	if w.Open {
		warn("open_window", "the window never ended; it is cut at the end of the trace")
	}

	var counterSum, integSum float64
	counterOK, integOK := true, true
	var spec2 float64 // sum of squared per-GPU spec errors, W^2
	for gi, g := range d.GPUs {
		gw := GPUWindow{GPU: g.Index, EnergyJ: NaN, EnergyIntegratedJ: NaN, MeanPowerW: NaN, P5PowerW: NaN,
			P95PowerW: NaN, MaxPowerW: NaN, SpecUncertaintyPct: NaN, IntegratedFrom: c.ptsFrom[gi]}
		if e, ok := counterHeld(g.Energy, c.pts[gi], w.StartNs, w.EndNs); ok {
			gw.EnergyJ = Num(e)
			counterSum += e
		} else {
			counterOK = false
		}
		if e, ok := integrateHeld(c.pts[gi], w.StartNs, w.EndNs); ok {
			gw.EnergyIntegratedJ = Num(e)
			integSum += e
		} else {
			integOK = false
		}
		energy := gw.EnergyJ
		if !energy.Valid() {
			energy = gw.EnergyIntegratedJ
		}
		if energy.Valid() && dur > 0 {
			gw.MeanPowerW = energy / Num(dur)
			if gw.MeanPowerW > 0 {
				gw.SpecUncertaintyPct = Num(s.SpecAccuracyW) / gw.MeanPowerW * 100
			}
		}
		spec2 += s.SpecAccuracyW * s.SpecAccuracyW
		ps := powerSeries(g).Slice(w.StartNs, w.EndNs)
		gw.Samples = ps.Len()
		gw.P5PowerW, gw.P95PowerW, gw.MaxPowerW = powerStats(ps.V)
		wr.Samples += gw.Samples
		wr.GPUs = append(wr.GPUs, gw)
	}
	wr.EnergyJ, wr.EnergyIntegratedJ, wr.DisagreementPct = NaN, NaN, NaN
	if counterOK && len(d.GPUs) > 0 {
		wr.EnergyJ = Num(counterSum)
	}
	if integOK && len(d.GPUs) > 0 {
		wr.EnergyIntegratedJ = Num(integSum)
	}
	energy := wr.EnergyJ
	if !energy.Valid() {
		energy = wr.EnergyIntegratedJ
		if energy.Valid() {
			warn("no_counter", "the energy counter does not cover this window: energy_j is null and the mean power comes from integrated power")
		} else {
			warn("no_energy", "neither the counter nor the power samples cover this window")
		}
	}
	if wr.EnergyJ.Valid() && wr.EnergyIntegratedJ.Valid() && wr.EnergyJ > 0 {
		wr.DisagreementPct = (wr.EnergyIntegratedJ - wr.EnergyJ) / wr.EnergyJ * 100
		if math.Abs(float64(wr.DisagreementPct)) > s.DisagreementPct {
			warn("energy_disagreement", "integrated power differs from the counter by %.1f%% (threshold %g%%)",
				float64(wr.DisagreementPct), s.DisagreementPct)
		}
	}

	// Power: the mean is energy over time; percentiles of the summed power.
	wr.MeanPowerW, wr.P5PowerW, wr.P95PowerW, wr.MaxPowerW = NaN, NaN, NaN, NaN
	wr.UncertaintyPct, wr.SpecUncertaintyPct, wr.EdgeUncertaintyPct = NaN, NaN, NaN
	if energy.Valid() && dur > 0 {
		wr.MeanPowerW = energy / Num(dur)
	}
	if c.wallMeter() {
		// MLPerf Power's rule for a whole-system analyzer: the mean of
		// the samples strictly inside the window, so that llem reproduces
		// the published figure from the same log.
		wr.MeanPowerW = NaN
		sum, n := c.strictSampleSum(w.StartNs, w.EndNs)
		if n > 0 {
			wr.MeanPowerW = Num(sum / float64(n))
		}
		wr.Samples = n // the samples the mean is over, as MLPerf counts them
	}
	if len(d.GPUs) == 1 {
		g := wr.GPUs[0]
		wr.P5PowerW, wr.P95PowerW, wr.MaxPowerW = g.P5PowerW, g.P95PowerW, g.MaxPowerW
	} else if dur > 0.1 {
		sum := c.summedBins(w.StartNs, w.EndNs, int64(s.SteadyBinMs*1e6))
		wr.P5PowerW, wr.P95PowerW, wr.MaxPowerW = powerStats(sum)
	}
	if wr.MeanPowerW > 0 && !c.wallMeter() { // NVML's spec says nothing of a wall analyzer
		// NVML's +/-5 W is a bound per GPU, independent between GPUs: in
		// quadrature for the sum. The counter's edge term: each edge may
		// be stale by one sensor update, at most update/duration of the
		// energy. Both combine in quadrature (docs/results.md).
		wr.SpecUncertaintyPct = Num(math.Sqrt(spec2)) / wr.MeanPowerW * 100
		wr.EdgeUncertaintyPct = Num(c.updateMs / 1000 / dur * 100)
		wr.UncertaintyPct = Num(math.Hypot(float64(wr.SpecUncertaintyPct), float64(wr.EdgeUncertaintyPct)))
	}

	// Efficiency.
	wr.OutputTokens, wr.OutputTokensPerS, wr.EnergyPerOutputTokenJ, wr.EnergyPerRequestJ = NaN, NaN, NaN, NaN
	if len(c.reqs.Requests) > 0 {
		tok := c.reqs.OutputTokens(w.StartNs, w.EndNs)
		wr.OutputTokens = Num(tok)
		wr.Requests = c.reqs.Ended(w.StartNs, w.EndNs)
		if dur > 0 {
			wr.OutputTokensPerS = Num(tok / dur)
		}
		if tok > 0 && energy.Valid() {
			wr.EnergyPerOutputTokenJ = energy / Num(tok)
		}
		if wr.Requests > 0 && energy.Valid() {
			wr.EnergyPerRequestJ = energy / Num(wr.Requests)
		}
	}

	// Sensor coverage of the window.
	if len(d.GPUs) > 0 {
		g := d.GPUs[0]
		ch := sensor.Characterise(g.InstantPower.T, g.InstantPower.V, w.StartNs, w.EndNs)
		wr.SensorUpdates = ch.Updates
	}
	if w.Measured || w.Kind == KindUser {
		if dur < s.MinWindowS {
			warn("short_window", "the window lasts %.1f s, less than %g s: the sensors' 100 ms updates and the counter's edges weigh too much", dur, s.MinWindowS)
		}
		if d.GPUs[0].InstantPower.Len() > 0 && wr.SensorUpdates < s.MinUpdates {
			warn("few_sensor_updates", "only %d power-sensor updates in the window (at least %d wanted)", wr.SensorUpdates, s.MinUpdates)
		}
	}
	return wr
}

// wallMeter reports whether the run's power comes from a whole-system
// analyzer read at ~1 Hz (a SPEC PTDaemon import) rather than from GPUs.
func (c *runCtx) wallMeter() bool {
	src := c.d.Run.Meta.Source
	return src != nil && src.Format == "ptdaemon"
}

// strictSampleSum sums the power samples of every device strictly inside
// (start, end), and counts them.
func (c *runCtx) strictSampleSum(start, end int64) (sum float64, n int) {
	for _, g := range c.d.GPUs {
		ps := powerSeries(g)
		i, j := ps.Span(start, end)
		for k := i; k < j; k++ {
			if ps.T[k] > start && ps.T[k] < end {
				sum += ps.V[k]
				n++
			}
		}
	}
	return sum, n
}

// powerSeries is the series power percentiles come from.
func powerSeries(g *GPU) Series {
	_, s := powerSource(g)
	return s
}

// powerSource picks the best power series a GPU has: the driver's 50 Hz
// buffer, else instant power, else (imported nvidia-smi logs) the 1 s
// average.
func powerSource(g *GPU) (string, Series) {
	switch {
	case g.DriverPower.Len() >= 2:
		return "driver_power", g.DriverPower
	case g.InstantPower.Len() >= 2:
		return "instant_power", g.InstantPower
	case g.AveragePower.Len() >= 2:
		return "average_power", g.AveragePower
	}
	return "none", Series{}
}

// summedBins is the power summed over GPUs in bins of binNs.
func (c *runCtx) summedBins(start, end, binNs int64) []float64 {
	var sum []float64
	for _, g := range c.d.GPUs {
		b := powerSeries(g).Bins(start, end, binNs)
		if sum == nil {
			sum = b
			continue
		}
		for i := range sum {
			sum[i] += b[i]
		}
	}
	return sum
}

// sensorResult characterises every power field of every GPU over the run.
func (c *runCtx) sensorResult() SensorResult {
	sr := SensorResult{PerGPU: []map[string]sensor.Characterisation{}}
	var drv, inst, avg []float64
	for _, g := range c.d.GPUs {
		m := map[string]sensor.Characterisation{
			"driver_power":  sensor.Characterise(g.DriverPower.T, g.DriverPower.V, c.d.Origin, c.d.End),
			"instant_power": sensor.Characterise(g.InstantPower.T, g.InstantPower.V, c.d.Origin, c.d.End),
			"average_power": sensor.Characterise(g.AveragePower.T, g.AveragePower.V, c.d.Origin, c.d.End),
		}
		drv = append(drv, m["driver_power"].UpdatePeriodMs)
		inst = append(inst, m["instant_power"].UpdatePeriodMs)
		avg = append(avg, m["average_power"].UpdatePeriodMs)
		sr.PerGPU = append(sr.PerGPU, m)
	}
	med := func(v []float64) Num {
		s := sortedFinite(v)
		if len(s) == 0 {
			return NaN
		}
		return Num(quantile(s, 0.5))
	}
	sr.DriverPowerUpdatePeriodMs, sr.InstantPowerUpdatePeriodMs, sr.AveragePowerUpdatePeriodMs = med(drv), med(inst), med(avg)
	// The counter is fed by the same sensor as instant power (gpu-notes:
	// both update every ~100 ms on an H100); without instant power, the
	// setting.
	sr.CounterUpdateMsUsed = c.s.CounterUpdateMs
	if sr.InstantPowerUpdatePeriodMs.Valid() {
		sr.CounterUpdateMsUsed = float64(sr.InstantPowerUpdatePeriodMs)
	}
	return sr
}

// eventsIn returns the events with stamps in [start, end] (d.Events is
// sorted).
func (c *runCtx) eventsIn(start, end int64) []trace.Event {
	ev := c.d.Events
	i := sort.Search(len(ev), func(k int) bool { return ev[k].TimestampNs >= start })
	j := sort.Search(len(ev), func(k int) bool { return ev[k].TimestampNs > end })
	return ev[i:j]
}

// tokensIn returns the token events with stamps in [start, end].
func (c *runCtx) tokensIn(start, end int64) []serving.Token {
	tk := c.d.Tokens
	i := sort.Search(len(tk), func(k int) bool { return tk[k].TimestampNs >= start })
	j := sort.Search(len(tk), func(k int) bool { return tk[k].TimestampNs > end })
	return tk[i:j]
}

// median of values (NaN when empty).
func median(v []float64) float64 {
	s := slices.Clone(v)
	s = sortedFinite(s)
	return quantile(s, 0.5)
}
