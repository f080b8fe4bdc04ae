package analyze

import (
	"math"
	"slices"

	"github.com/llem/llem/analyze/bootstrap"
)

// The numbers figures and reports draw, made here so that a figure shows
// what `llem analyze` computes and nothing else.

// Estimate is a value with its confidence interval; Low and High are NaN
// when there is none.
type Estimate struct {
	Value, Low, High float64
}

func estimateOf(iv Num) Estimate { return Estimate{float64(iv), math.NaN(), math.NaN()} }

// Efficiency is a run's energy per output token and throughput: over
// cycles, the mean of the per-cycle values with its interval (at least
// min_cycles cycles; IntervalOf says which); otherwise the pooled measured windows' values
// (Result.Measured) without intervals.
type Efficiency struct {
	EnergyPerOutputTokenJ Estimate
	OutputTokensPerS      Estimate
	Cycles                int    // the cycles the intervals are over; 0 without intervals
	Method                string // of the intervals (bootstrap.MethodStudentT, MethodBCa)
}

// Efficiency is the run's Efficiency; ok is false for a run whose
// measured windows have no output tokens.
func (r *Run) Efficiency() (e Efficiency, ok bool) {
	m := r.Result.Measured
	if m == nil || !m.OutputTokens.Valid() || m.OutputTokens <= 0 || m.DurationS <= 0 {
		return e, false
	}
	e.EnergyPerOutputTokenJ, e.OutputTokensPerS = estimateOf(m.EnergyPerOutputTokenJ), estimateOf(m.OutputTokensPerS)
	cy := r.Result.Cycles
	if cy == nil || cy.EnergyPerOutputTokenJ == nil || cy.EnergyPerOutputTokenJ.Degenerate {
		return e, true
	}
	iv := cy.EnergyPerOutputTokenJ
	e.EnergyPerOutputTokenJ = Estimate{iv.Estimate, iv.Low, iv.High}
	e.Cycles, e.Method = cy.N, iv.Method
	if tps := cy.OutputTokensPerS; tps != nil {
		e.OutputTokensPerS = Estimate{tps.Estimate, tps.Low, tps.High}
	}
	return e, true
}

// MethodName is how an interval's method is called in text (BCa,
// Student-t), for packages that only draw results.
func MethodName(method string) string { return bootstrap.MethodName(method) }

// XY is a series of points, x in seconds from the run's first sample.
type XY struct {
	X, Y []float64
}

func (p *XY) add(x, y float64) {
	p.X = append(p.X, x)
	p.Y = append(p.Y, y)
}

// PowerTraces are a run's power series, summed over its GPUs, as the
// timeline draws them.
type PowerTraces struct {
	Driver, Instant, Average XY
	// Counter is the energy counter's mean power between reads, as steps
	// (each a stretch of reads without a counter reset): point k holds
	// from X[k] to X[k+1].
	Counter []XY
	// DriverPeriodMs is the driver buffer's measured update period;
	// CounterStepS the median length of the counter's steps (NaN: none).
	DriverPeriodMs, CounterStepS float64
	// InstantName says what Instant is: NVML's instant power field, or a
	// wall meter's whole-system AC power (a PTDaemon import).
	InstantName string
}

// PowerTraces gives the run's power from every source: one GPU's samples
// as they are; several GPUs' summed in bins of each field's update period
// (driver 20 ms, instant and average 100 ms), at the bins' centres, bins
// that some GPU does not cover left out. The counter's power is the
// energy between reads over the time between them; reads closer than
// 0.5 s to the last one kept (the recorder's boundary reads, a few ms
// apart) are merged into the next interval, since the counter itself
// updates only every ~100 ms.
func (r *Run) PowerTraces() PowerTraces {
	d := r.Data
	pt := PowerTraces{DriverPeriodMs: float64(r.Result.Sensor.DriverPowerUpdatePeriodMs), CounterStepS: math.NaN(),
		InstantName: "instant power"}
	if d.Run.Meta.WallMeter() {
		pt.InstantName = "whole-system AC power"
	}
	if len(d.GPUs) == 0 {
		return pt
	}
	if len(d.GPUs) == 1 {
		g := d.GPUs[0]
		pt.Driver, pt.Instant, pt.Average = r.seriesXY(g.DriverPower.All()), r.seriesXY(g.InstantPower.All()), r.seriesXY(g.AveragePower.All())
	} else {
		pt.Driver = r.summedXY(func(g *GPU) *Samples { return &g.DriverPower }, 20e6)
		pt.Instant = r.summedXY(func(g *GPU) *Samples { return &g.InstantPower }, 100e6)
		pt.Average = r.summedXY(func(g *GPU) *Samples { return &g.AveragePower }, 100e6)
	}
	var steps []float64
	pt.Counter, steps = r.counterSteps()
	if len(steps) > 0 {
		slices.Sort(steps)
		pt.CounterStepS = steps[len(steps)/2]
	}
	return pt
}

// counterSteps are the counter's power steps on the grid of GPU 0's
// reads at least 0.5 s apart, and the length of each step.
func (r *Run) counterSteps() (stretches []XY, steps []float64) {
	d := r.Data
	reads := d.GPUs[0].Energy
	var grid []int64
	for _, e := range reads {
		if len(grid) == 0 || e.TimestampNs-grid[len(grid)-1] >= 500e6 {
			grid = append(grid, e.TimestampNs)
		}
	}
	if n := len(reads); n > 1 && grid[len(grid)-1] != reads[n-1].TimestampNs {
		if len(grid) > 1 {
			grid[len(grid)-1] = reads[n-1].TimestampNs // the last interval is stretched to the last read
		} else {
			grid = append(grid, reads[n-1].TimestampNs)
		}
	}
	var cur XY
	flush := func() {
		if len(cur.X) > 1 {
			stretches = append(stretches, cur)
		}
		cur = XY{}
	}
	for i := 1; i < len(grid); i++ {
		a, b := grid[i-1], grid[i]
		var e float64
		ok := true
		for _, g := range d.GPUs {
			ge, resets, gok := counterJ(g.Energy, a, b)
			e += ge
			ok = ok && gok && resets == 0
		}
		if !ok {
			flush()
			continue
		}
		p := e / (float64(b-a) / 1e9)
		if len(cur.X) > 0 {
			cur.X, cur.Y = cur.X[:len(cur.X)-1], cur.Y[:len(cur.Y)-1] // the closing point
		}
		cur.add(d.seconds(a), p)
		cur.add(d.seconds(b), p)
		steps = append(steps, float64(b-a)/1e9)
	}
	flush()
	return stretches, steps
}

func (r *Run) seriesXY(s Series) XY {
	p := XY{X: make([]float64, len(s.T)), Y: slices.Clone(s.V)}
	for i, t := range s.T {
		p.X[i] = r.Data.seconds(t)
	}
	return p
}

// summedXY is a field summed over GPUs in bins of binNs over the whole
// run, at the bins' centres; bins some GPU does not cover are left out.
func (r *Run) summedXY(field func(*GPU) *Samples, binNs int64) XY {
	d := r.Data
	sum := sumBins(d.GPUs, field, d.Origin, d.End, binNs)
	var p XY
	for i, v := range sum {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			p.add((float64(i)+0.5)*float64(binNs)/1e9, v)
		}
	}
	return p
}

// sumBins is a field summed over GPUs in bins of binNs over [start, end)
// (Series.Bins): NaN where some GPU does not cover a bin.
func sumBins(gpus []*GPU, field func(*GPU) *Samples, start, end, binNs int64) []float64 {
	var sum []float64
	for _, g := range gpus {
		b := field(g).Bins(start, end, binNs)
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

// PowerSamples are the power samples of some windows: what the
// power-distribution figure draws.
type PowerSamples struct {
	Watts     []float64 // the driver's 50 Hz samples of one GPU, or the sum of several GPUs in 20 ms bins
	DurationS float64   // the windows' total duration
	MeanW     float64   // the mean of Watts (NaN: none)
}

// PowerSamplesIn gathers the power samples in the windows.
func (r *Run) PowerSamplesIn(ws []WindowResult) PowerSamples {
	d := r.Data
	var ps PowerSamples
	for _, w := range ws {
		ps.DurationS += w.DurationS
		var v []float64
		if len(d.GPUs) == 1 {
			v = powerSeries(d.GPUs[0]).Slice(w.StartNs, w.EndNs).V
		} else {
			v = sumBins(d.GPUs, powerSeries, w.StartNs, w.EndNs, 20e6)
		}
		for _, x := range v {
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				ps.Watts = append(ps.Watts, x)
			}
		}
	}
	ps.MeanW = meanOf(ps.Watts)
	return ps
}
