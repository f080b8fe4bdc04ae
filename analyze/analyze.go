package analyze

import (
	"fmt"
	"github.com/llem/llem/internal/order"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/llem/llem/analyze/sensor"
	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/trace"
)

// Analyze opens every run (Open) and gathers their results into the
// document `llem analyze` writes.
func Analyze(dirs []string, s Settings, version string, progress io.Writer) (*Results, error) {
	runs, err := Open(dirs, s, progress)
	if err != nil {
		return nil, err
	}
	return Document(runs, s, version), nil
}

// runCtx is what the per-window computations share.
type runCtx struct {
	d        *Data
	s        Settings
	pts      []timedPower // per GPU: the power series integrated (driver, else instant, else average)
	reqs     *serving.Set
	updateMs float64 // the sensors' update period (the counter's and instant power's)
	driverMs float64 // the driver buffer's update period
	counter  Timing  // when a counter read is of
	gaps     []trace.Gap
}

// New computes every result of one loaded run. name is how the run is
// called in the output (the path given on the command line).
func New(d *Data, name string, s Settings) *Run {
	c := &runCtx{d: d, s: s}
	// The requests are rebuilt from the events while the sensors are
	// characterised and the windows found (nothing before the baselines
	// reads them): the two take about as long on a serving run.
	var built sync.WaitGroup
	built.Go(func() { c.reqs = serving.BuildLog(d.RequestEvents, d.Tokens, d.IDs) })
	rr := runHeader(d, name)
	c.jobHeader(&rr)
	rr.Sensor = c.sensorResult(besideBuild(d))
	c.updateMs = rr.Sensor.CounterUpdateMsUsed
	c.driverMs = float64(rr.Sensor.DriverPowerUpdatePeriodMs)
	c.counter = counterTiming(s, c.updateMs)
	c.gaps = append(d.Run.Gaps(), driverGaps(d)...)
	for _, w := range c.gapWarnings() {
		rr.warn(w)
	}
	for _, g := range d.GPUs {
		tp := c.timedPower(g)
		c.pts = append(c.pts, tp)
		if tp.name == "average_power" {
			gpu := g.Index
			rr.warn(Warning{Code: "average_power_only", GPU: &gpu, Message: fmt.Sprintf(
				"%s has neither driver power samples nor instant power: power and integrated energy come from the 1 s average (nvidia-smi's power.draw on Ampere and newer), which smooths every step over 1 s", g.Label())})
		}
	}
	windows, warns := buildWindows(d, s)
	for _, w := range warns {
		rr.warn(Warning{Code: w.Code, Message: w.Message})
	}
	c.cutOpen(windows)
	if s.Resamples < minResamples {
		rr.warn(Warning{Code: "few_resamples", Message: fmt.Sprintf(
			"%d bootstrap resamples: a %g%% BCa interval needs at least %d (the methodology uses 2,000); these intervals are rough, not %g%% intervals",
			s.Resamples, s.Confidence*100, minResamples, s.Confidence*100)})
	}
	// The run window spans what every GPU's counter covers, when there is
	// a counter, so that the whole run has a counter energy.
	windows[0].StartNs, windows[0].EndNs = c.counterSpan(windows[0].StartNs, windows[0].EndNs)
	built.Wait()
	// Nothing after the build reads the request ids: a day's serving run
	// has most of a million of them.
	d.IDs = nil
	rr.Requests = RequestSummary{Total: c.reqs.Len(), Problems: c.reqs.Problems}
	if rr.Requests.Problems == nil {
		rr.Requests.Problems = []string{}
	}

	rr.Baseline = c.baselines(windows)
	all, steadyOf := c.withSteady(windows)
	run := &Run{Dir: name, Data: d, Settings: s, reqs: c.reqs}
	wrs, ths := c.computeWindows(all, windows, run, &rr)
	for i, w := range all {
		wr := wrs[i]
		if det := steadyOf[i]; det != nil {
			r := det.result
			wr.Steady = &r
			if rr.SteadyState == nil { // the first measured window's is the run's summary
				rr.SteadyState = c.steadySummary(w, det)
			}
		}
		if p0 := rr.Baseline.P0; p0 != nil && wr.EnergyJ.Valid() && p0.MedianW.Estimate > 0 {
			wr.EnergyAdjustedJ = wr.EnergyJ - Num(p0.MedianW.Estimate*wr.DurationS)
			if wr.EnergyAdjustedJ < 0 {
				// The bound of energy_j, in J (uncertainty runs after this).
				bound := float64(wr.EnergyJ) * float64(wr.UncertaintyPct) / 100
				if -float64(wr.EnergyAdjustedJ) <= bound {
					wr.warnf("adjusted_negative", "energy_adjusted_j is negative (%.1f J) but within the uncertainty of energy_j (+/-%.1f J) of 0: the window runs at the loaded-idle (P0) level",
						float64(wr.EnergyAdjustedJ), bound)
				} else {
					wr.warnf("adjusted_negative", "energy_adjusted_j is negative (%.1f J): the window's mean power, %.1f W, is below the loaded-idle (P0) baseline, %.1f W, so it holds time with no model resident (idle phases, cool-downs) that P0 does not describe; use energy_j",
						float64(wr.EnergyAdjustedJ), float64(wr.EnergyJ)/wr.DurationS, p0.MedianW.Estimate)
				}
			}
		}
		rr.Windows = append(rr.Windows, wr)
	}
	rr.Thermal = []ThermalResult{}
	for _, th := range ths {
		for _, f := range th.Flags {
			rr.warn(f)
		}
		rr.Thermal = append(rr.Thermal, th)
	}
	rr.Measured = measuredTotals(rr.Windows)
	rr.Cycles = c.cycles(rr.Windows)
	if rr.Cycles != nil && rr.Cycles.Note != "" {
		rr.warn(Warning{Code: "few_cycles", Message: rr.Cycles.Note})
	}
	c.jobTotals(&rr)
	for _, wr := range rr.Windows {
		if wr.Measured {
			for _, w := range wr.Warnings {
				rr.warn(w)
			}
		}
	}
	run.Result = rr
	return run
}

// computeWindows gives each window's result and each measured window's
// thermal check, and sets the run's latency. They read the loaded run and
// write only their own results, so they are computed at once on every
// core; New puts them in order.
func (c *runCtx) computeWindows(all, windows []Window, run *Run, rr *RunResult) ([]WindowResult, []ThermalResult) {
	wrs := make([]WindowResult, len(all))
	var measured []Window
	for _, w := range windows {
		if w.Measured {
			measured = append(measured, w)
		}
	}
	ths := make([]ThermalResult, len(measured))
	// The latency goes first: on a serving run it is the longest task (a
	// pass over every token, and bootstraps over every request), and
	// started last it would run alone after the others.
	parallel(runtime.GOMAXPROCS(0), len(all)+len(measured)+1, func(k int) {
		switch {
		case k == 0:
			run.Latency = c.pooledLatency(windows)
			rr.Latency = c.latency(run.Latency)
		case k <= len(all):
			wrs[k-1] = c.window(all[k-1])
		default:
			ths[k-1-len(all)] = c.thermal(measured[k-1-len(all)])
		}
	})
	return wrs, ths
}

// runHeader is what a run's result says before any window: its identity,
// GPUs, and the warnings of the recorder and of loading.
func runHeader(d *Data, name string) RunResult {
	m := d.Run.Meta
	rr := RunResult{Run: name, RunID: m.RunID, Complete: m.Complete, Status: m.Status, Device: m.Device,
		Labels: m.Labels, Warnings: []Warning{}}
	if rr.Labels == nil {
		rr.Labels = map[string]string{}
	}
	for _, g := range d.GPUs {
		gs := GPUSummary{Index: g.Index, PowerLimitW: NaN}
		if g.Node != "" {
			gs.Node, gs.NodeGPU = g.Node, &g.NodeGPU
		}
		if g.Info != nil {
			gs.Name, gs.UUID, gs.Lost = g.Info.Name, g.Info.UUID, g.Info.Lost
			if g.Info.PowerLimitMw != nil {
				gs.PowerLimitW = Num(float64(*g.Info.PowerLimitMw) / 1000)
			}
		}
		rr.GPUs = append(rr.GPUs, gs)
	}
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
	for _, w := range runFacts(d) {
		rr.warn(w)
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
	return rr
}

// withSteady inserts each measured window's steady windows (signal and
// event based) right after it; steadyOf[i] is the detection of all[i]
// when all[i] is a measured window.
func (c *runCtx) withSteady(windows []Window) (all []Window, steadyOf []*SteadyDetail) {
	// Each detection reads the loaded run and the requests only: they are
	// made at once on every core.
	dets := make([]*SteadyDetail, len(windows))
	parallel(runtime.GOMAXPROCS(0), len(windows), func(i int) {
		if windows[i].Measured {
			dets[i] = c.detectSteady(windows[i])
		}
	})
	for i, w := range windows {
		all = append(all, w)
		steadyOf = append(steadyOf, nil)
		if !w.Measured {
			continue
		}
		det := dets[i]
		steadyOf[len(steadyOf)-1] = det
		if det.ok {
			all = append(all, Window{Name: "steady", Kind: KindSteady, Cycle: w.Cycle, StartNs: det.startNs, EndNs: det.endNs})
			steadyOf = append(steadyOf, nil)
		}
		if det.events != nil {
			all = append(all, Window{Name: "steady_events", Kind: KindSteadyEvents, Cycle: w.Cycle,
				StartNs: det.events.startNs, EndNs: det.events.endNs})
			steadyOf = append(steadyOf, nil)
		}
	}
	return all, steadyOf
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
	// A counter that covers only part of the run (a killed recorder whose
	// last energy segment was lost, its driver power kept) would cut the
	// run window to that part, down to nothing: the run window spans what
	// the power series cover instead, and its energy is integrated power.
	if hi <= lo || float64(hi-lo) < 0.9*float64(end-start) {
		return c.powerSpan(start, end)
	}
	return lo, hi
}

// powerSpan is the part of [start, end] that every GPU's integrated power
// series covers (each read at its lag), or [start, end] when there is none.
func (c *runCtx) powerSpan(start, end int64) (int64, int64) {
	lo, hi := start, end
	for _, p := range c.pts {
		if p.Len() < 2 {
			return start, end
		}
		first, _ := p.First()
		last, _ := p.Last()
		lo = max(lo, first-p.timing.LagNs)
		hi = min(hi, last-p.timing.LagNs)
	}
	if hi <= lo {
		return start, end
	}
	return lo, hi
}

// window computes the energy, power, efficiency and uncertainty of w.
func (c *runCtx) window(w Window) WindowResult {
	d := c.d
	wr := WindowResult{Name: w.Name, Kind: w.Kind, Cycle: w.Cycle, Measured: w.Measured, StartNs: w.StartNs, EndNs: w.EndNs,
		StartS: d.seconds(w.StartNs), EndS: d.seconds(w.EndNs), DurationS: float64(w.EndNs-w.StartNs) / 1e9,
		Warnings: []Warning{}, label: windowLabel(w)}
	switch {
	case w.cutAtPower:
		wr.warnf("open_window", "the window never ended (the recorder was stopped); it is cut at the last power sample, %.1f s", d.seconds(w.EndNs))
	case w.Open:
		wr.warnf("open_window", "the window never ended; it is cut at the end of the trace")
	}
	energy := c.energy(w, &wr)
	c.jobWindow(w, &wr, energy)
	wr.SimTruthEnergyJ = c.truth(w)
	wr.HostEnergyJ = c.hostEnergy(w)
	c.power(w, &wr, energy)
	c.efficiency(w, &wr, energy)
	c.coverage(w, &wr)
	return wr
}

// warnf adds a warning about the window.
func (wr *WindowResult) warnf(code, format string, args ...any) {
	wr.Warnings = append(wr.Warnings, Warning{Code: code, Message: fmt.Sprintf(format, args...), Window: wr.label})
}

// energy fills the window's energies per GPU and summed, from the counter
// and from integrated power, and returns the energy the window's other
// figures use: the counter's, else integrated power's (NaN: neither).
func (c *runCtx) energy(w Window, wr *WindowResult) Num {
	s, dur := c.s, wr.DurationS
	var counterSum, integSum float64
	counterOK, integOK := true, true
	for gi, g := range c.d.GPUs {
		gw := GPUWindow{GPU: g.Index, Node: g.Node, EnergyJ: NaN, EnergyIntegratedJ: NaN, MeanPowerW: NaN, P5PowerW: NaN,
			P95PowerW: NaN, MaxPowerW: NaN, SpecUncertaintyPct: NaN, IntegratedFrom: c.pts[gi].name}
		if e, terms, ok := counterWindow(g.Energy, c.pts[gi], c.counter, w.StartNs, w.EndNs); ok {
			gw.EnergyJ = Num(e)
			counterSum += e
			wr.counterTerms = append(wr.counterTerms, terms...)
		} else {
			counterOK = false
		}
		e, terms, ok := c.pts[gi].integrate(w.StartNs, w.EndNs)
		if gap, found := c.powerGap(gi, w.StartNs, w.EndNs); ok && found {
			ok = false
			wr.warnf("gap_in_window", "GPU %d: %s from %.1f s to %.1f s (%s): integrated energy is not computed across it%s",
				g.Index, gap.Message, c.d.seconds(gap.StartNs), c.d.seconds(gap.EndNs), gap.Code, counterNote(gw.EnergyJ))
		}
		if ok {
			gw.EnergyIntegratedJ = Num(e)
			integSum += e
			wr.integTerms = append(wr.integTerms, terms...)
		} else {
			integOK = false
		}
		if e := bestEnergy(gw.EnergyJ, gw.EnergyIntegratedJ); e.Valid() && dur > 0 {
			gw.MeanPowerW = e / Num(dur)
			if gw.MeanPowerW > 0 {
				gw.SpecUncertaintyPct = Num(s.SpecAccuracyW) / gw.MeanPowerW * 100
			}
		}
		gw.Samples, gw.P5PowerW, gw.P95PowerW, gw.MaxPowerW = powerSeries(g).PowerStats(w.StartNs, w.EndNs)
		wr.Samples += gw.Samples
		wr.GPUs = append(wr.GPUs, gw)
	}
	wr.EnergyJ, wr.EnergyIntegratedJ, wr.DisagreementPct = NaN, NaN, NaN
	if counterOK && len(c.d.GPUs) > 0 {
		wr.EnergyJ = Num(counterSum)
	}
	if integOK && len(c.d.GPUs) > 0 {
		wr.EnergyIntegratedJ = Num(integSum)
	}
	energy := bestEnergy(wr.EnergyJ, wr.EnergyIntegratedJ)
	switch {
	case !wr.EnergyJ.Valid() && energy.Valid():
		wr.warnf("no_counter", "the energy counter does not cover this window: energy_j is null and the mean power comes from integrated power")
	case !energy.Valid():
		wr.warnf("no_energy", "neither the counter nor the power samples cover this window")
	}
	if wr.EnergyJ.Valid() && wr.EnergyIntegratedJ.Valid() && wr.EnergyJ > 0 {
		wr.DisagreementPct = (wr.EnergyIntegratedJ - wr.EnergyJ) / wr.EnergyJ * 100
		if math.Abs(float64(wr.DisagreementPct)) > s.DisagreementPct {
			wr.warnf("energy_disagreement", "integrated power differs from the counter by %.1f%% (threshold %g%%)",
				float64(wr.DisagreementPct), s.DisagreementPct)
		}
	}
	return energy
}

// truth is a simulated run's true energy over w, summed over GPUs; nil
// when some GPU has no truth covering it.
func (c *runCtx) truth(w Window) *Num {
	var sum float64
	for _, g := range c.d.GPUs {
		a, okA := g.Truth.At(w.StartNs)
		b, okB := g.Truth.At(w.EndNs)
		if !okA || !okB {
			return nil
		}
		sum += b - a
	}
	if len(c.d.GPUs) == 0 {
		return nil
	}
	n := Num(sum)
	return &n
}

// bestEnergy is the rule every figure built on a window's energy follows
// (its mean power, energy per token, a cycle's energy): the counter's
// energy, else integrated power's.
func bestEnergy(counter, integrated Num) Num {
	if counter.Valid() {
		return counter
	}
	return integrated
}

// power fills the window's mean power (energy over time; for a wall
// meter MLPerf's rule), the percentiles of the summed power and the
// measurement uncertainty.
func (c *runCtx) power(w Window, wr *WindowResult, energy Num) {
	d, s, dur := c.d, c.s, wr.DurationS
	wr.MeanPowerW, wr.P5PowerW, wr.P95PowerW, wr.MaxPowerW = NaN, NaN, NaN, NaN
	wr.UncertaintyPct, wr.SpecUncertaintyPct, wr.EdgeUncertaintyPct, wr.IntegratedUncertaintyPct = NaN, NaN, NaN, NaN
	if energy.Valid() && dur > 0 {
		wr.MeanPowerW = energy / Num(dur)
	}
	wall := d.Run.Meta.WallMeter()
	if wall {
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
	if !wall { // NVML's spec says nothing of a wall analyzer
		c.uncertainty(wr, energy)
	}
}

// uncertainty states the 95% bounds of the window's energies, as a % of
// each (docs/results.md, "Uncertainty"). Every error is taken as uniform
// within its bound: NVML's +/-5 W per GPU over the window (its
// calibration, independent between GPUs), and the timing of each reading
// the energy depends on (counterWindow, timedPower.integrate); q95
// combines them.
func (c *runCtx) uncertainty(wr *WindowResult, energy Num) {
	dur := wr.DurationS
	var spec []float64
	for range c.d.GPUs {
		spec = append(spec, c.s.SpecAccuracyW*dur)
	}
	pct := func(terms []float64, e Num) Num {
		if !e.Valid() || e <= 0 {
			return NaN
		}
		return Num(q95(terms)) / e * 100
	}
	wr.SpecUncertaintyPct = pct(spec, energy)
	timing := wr.integTerms
	if wr.EnergyJ.Valid() {
		timing = wr.counterTerms
	}
	wr.EdgeUncertaintyPct = pct(timing, energy)
	wr.UncertaintyPct = pct(append(slices.Clone(spec), timing...), energy)
	wr.IntegratedUncertaintyPct = pct(append(slices.Clone(spec), wr.integTerms...), wr.EnergyIntegratedJ)
}

// efficiency fills the window's tokens, requests and the energy per
// output token and per request.
func (c *runCtx) efficiency(w Window, wr *WindowResult, energy Num) {
	wr.OutputTokens, wr.OutputTokensPerS, wr.EnergyPerOutputTokenJ, wr.EnergyPerRequestJ = NaN, NaN, NaN, NaN
	if c.reqs.Len() == 0 {
		c.mlperfEfficiency(w, wr)
		return
	}
	tok := c.reqs.OutputTokens(w.StartNs, w.EndNs)
	wr.OutputTokens = Num(tok)
	wr.Requests = c.reqs.Ended(w.StartNs, w.EndNs)
	if wr.DurationS > 0 {
		wr.OutputTokensPerS = Num(tok / wr.DurationS)
	}
	if tok > 0 && energy.Valid() {
		wr.EnergyPerOutputTokenJ = energy / Num(tok)
	}
	if wr.Requests > 0 && energy.Valid() {
		wr.EnergyPerRequestJ = energy / Num(wr.Requests)
	}
}

// mlperfEfficiency: an MLPerf Power import has no token events, but
// loadgen's summary gives the throughput over its power window. MLPerf's
// energy per token there is the window's mean power (the samples strictly
// inside it) over that throughput.
func (c *runCtx) mlperfEfficiency(w Window, wr *WindowResult) {
	m := c.d.Run.Meta
	if !m.WallMeter() || w.Name != trace.PhaseMLPerfPower || (w.Kind != KindPhase && w.Kind != KindUser) {
		return
	}
	tps, err := strconv.ParseFloat(m.Source.Notes[trace.NoteMLPerfTokensPerS], 64)
	if err != nil || !(tps > 0) || math.IsInf(tps, 0) || !wr.MeanPowerW.Valid() {
		return
	}
	wr.OutputTokensPerS = Num(tps)
	wr.OutputTokens = Num(tps * wr.DurationS)
	wr.EnergyPerOutputTokenJ = wr.MeanPowerW / Num(tps)
	wr.warnf("mlperf_throughput", "tokens from MLPerf's summary (%g tokens/s over loadgen's power window), not from events: energy per output token is the mean power over that throughput, as MLPerf computes it", tps)
}

// coverage counts the power sensor's updates in the window and warns
// when a measured or user window is too short to measure well.
func (c *runCtx) coverage(w Window, wr *WindowResult) {
	d, s := c.d, c.s
	if len(d.GPUs) == 0 {
		return
	}
	g := d.GPUs[0]
	inst := &g.InstantPower
	room := inst.IndexAfter(w.EndNs) - inst.Index(w.StartNs)
	wr.SensorUpdates = sensor.CharacteriseSeq(inst.Seq(w.StartNs, w.EndNs), room, w.StartNs, w.EndNs).Updates
	if !w.Measured && w.Kind != KindUser {
		return
	}
	if wr.DurationS < s.MinWindowS {
		wr.warnf("short_window", "the window lasts %.1f s, less than %g s: the sensors' 100 ms updates and the counter's edges weigh too much", wr.DurationS, s.MinWindowS)
	}
	if g.InstantPower.Len() > 0 && wr.SensorUpdates < s.MinUpdates {
		wr.warnf("few_sensor_updates", "only %d power-sensor updates in the window (at least %d wanted)", wr.SensorUpdates, s.MinUpdates)
	}
}

// strictSampleSum sums the power samples of every device strictly inside
// (start, end), and counts them.
func (c *runCtx) strictSampleSum(start, end int64) (sum float64, n int) {
	for _, g := range c.d.GPUs {
		ps := powerSeries(g).Slice(start, end)
		for k := range ps.T {
			if ps.T[k] > start && ps.T[k] < end {
				sum += ps.V[k]
				n++
			}
		}
	}
	return sum, n
}

// powerSeries is the series power percentiles come from.
func powerSeries(g *GPU) *Samples {
	_, s := powerSource(g)
	return s
}

// timedPower is the power series of g that integrated energy comes from,
// with when its readings are of: each driver sample is the mean power over
// the driver_power_window_ms before its stamp; an instant-power reading is
// the mean over instant_power_window_ms before the sensor's last update,
// which the poll sees up to one update late; the 1 s average likewise, a
// second wide (docs/results.md, "Timing").
func (c *runCtx) timedPower(g *GPU) timedPower {
	name, s := powerSource(g)
	ms := func(x float64) int64 { return int64(x * 1e6) }
	up := ms(c.updateMs)
	var tm Timing
	switch name {
	case "driver_power":
		tm = Timing{LagNs: ms(c.s.DriverPowerWindowMs) / 2, HalfNs: ms(c.s.DriverPowerWindowMs) / 2}
	case "instant_power":
		tm = Timing{LagNs: up/2 + ms(c.s.InstantPowerWindowMs)/2, HalfNs: up / 2}
	case "average_power":
		tm = Timing{LagNs: up/2 + 500_000_000, HalfNs: up/2 + 500_000_000}
	}
	return timedPower{Samples: s, name: name, timing: tm, accuracyW: c.s.SpecAccuracyW}
}

// counterTiming: a counter read returns the value of the sensor's last
// update (0 to one update period earlier), which holds the energy up to
// counter_delay_ms before that update (docs/results.md, "Timing").
func counterTiming(s Settings, updateMs float64) Timing {
	up := int64(updateMs * 1e6)
	return Timing{LagNs: int64(s.CounterDelayMs*1e6) + up/2, HalfNs: up / 2}
}

// powerSource picks the best power series a GPU has: the driver's 50 Hz
// buffer, else instant power, else (imported nvidia-smi logs) the 1 s
// average.
func powerSource(g *GPU) (string, *Samples) {
	switch {
	case g.DriverPower.Len() >= 2:
		return "driver_power", &g.DriverPower
	case g.InstantPower.Len() >= 2:
		return "instant_power", &g.InstantPower
	case g.AveragePower.Len() >= 2:
		return "average_power", &g.AveragePower
	}
	return "none", &Samples{}
}

// summedBins is the power summed over GPUs in bins of binNs.
func (c *runCtx) summedBins(start, end, binNs int64) []float64 {
	return sumBins(c.d.GPUs, powerSeries, start, end, binNs)
}

// sensorResult characterises every power field of every GPU over the run.
// besideBuild is how many goroutines may work while New builds the
// requests of d: every core but the build's, when there are requests to
// build (more would not be faster).
func besideBuild(d *Data) int {
	workers := runtime.GOMAXPROCS(0)
	if d.Tokens.Len() > 0 || d.RequestEvents.Len() > 0 {
		workers = max(1, workers-1)
	}
	return workers
}

func (c *runCtx) sensorResult(workers int) SensorResult {
	sr := SensorResult{PerGPU: []map[string]sensor.Characterisation{}}
	var drv, inst, avg []float64
	// Each series is characterised on its own (a pass and a selection in
	// its intervals), on workers goroutines; each series at work holds its
	// intervals (a day's run: 35 MB a series).
	fields := []string{"driver_power", "instant_power", "average_power"}
	chars := make([]sensor.Characterisation, len(fields)*len(c.d.GPUs))
	parallel(workers, len(chars), func(k int) {
		g := c.d.GPUs[k/len(fields)]
		s := [...]*Samples{&g.DriverPower, &g.InstantPower, &g.AveragePower}[k%len(fields)]
		chars[k] = sensor.CharacteriseSeq(s.Seq(c.d.Origin, c.d.End), s.Len(), c.d.Origin, c.d.End)
	})
	for gi := range c.d.GPUs {
		m := map[string]sensor.Characterisation{}
		for f, name := range fields {
			m[name] = chars[gi*len(fields)+f]
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
		return Num(order.Quantile(s, 0.5))
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

// median of values (NaN when empty).
func median(v []float64) float64 {
	s := slices.Clone(v)
	s = sortedFinite(s)
	return order.Quantile(s, 0.5)
}

// parallel calls fn(0) ... fn(n-1), at most workers at once (< 1: one),
// in order of i, and returns when all have returned.
func parallel(workers, n int, fn func(i int)) {
	workers = min(max(workers, 1), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}
