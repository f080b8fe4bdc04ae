package plots

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"

	"github.com/llem/llem/analyze"
)

// powerFig draws the empirical CDF of each run's power samples in its
// steady windows (the measured windows of a run without a steady state,
// said in the legend): the driver's 50 Hz samples of one GPU, or the sum
// of several GPUs in 20 ms bins.
func powerFig(st *style, runs []*Run) (*Figure, error) {
	p := st.newPlot("Power (W)", "Fraction of samples")
	lg := &legend{st: st}
	var all [][]float64
	var notes []string
	for i, r := range runs {
		ws := r.windows(analyze.KindSteady, false)
		where := "steady"
		if len(ws) == 0 {
			ws = r.windows("", true)
			where = "measured, no steady state"
		}
		v, dur := steadySamples(r, ws)
		if len(v) == 0 {
			notes = append(notes, fmt.Sprintf("power: %s has no power samples in its %s windows and is left out", r.Dir, where))
			continue
		}
		all = append(all, v)
		ls := st.seriesStyle(i)
		p.Add(line(ecdf(v), ls, plotter.PostStep))
		lg.add(fmt.Sprintf("%s (%s, %.0f s, mean %.0f W)", r.Label, where, dur, meanOf(v)), lineThumb(ls))
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("power: no run has power samples in its steady or measured windows")
	}
	setCDFAxes(p, all, false) // watts compare on a linear axis, whatever the span
	h := heightFor(2.4)
	if st.width == Double {
		h = heightFor(3.0)
	}
	f := compose(st, Power, lg, h, func(c draw.Canvas) { p.Draw(c) })
	f.Notes = notes
	return f, nil
}

// steadySamples are the power samples in the windows, and the windows'
// total duration.
func steadySamples(r *Run, ws []analyze.WindowResult) ([]float64, float64) {
	var out []float64
	var dur float64
	for _, w := range ws {
		a, b := r.ns(w.StartS), r.ns(w.EndS)
		dur += w.DurationS
		if len(r.Data.GPUs) == 1 {
			s := powerOf(r.Data.GPUs[0]).Slice(a, b)
			for _, v := range s.V {
				if finite(v) {
					out = append(out, v)
				}
			}
			continue
		}
		var sum []float64
		for _, g := range r.Data.GPUs {
			bins := powerOf(g).Bins(a, b, 20e6)
			if sum == nil {
				sum = bins
				continue
			}
			for i := range sum {
				sum[i] += bins[i]
			}
		}
		for _, v := range sum {
			if finite(v) {
				out = append(out, v)
			}
		}
	}
	return out, dur
}

// powerOf is the power series analyze takes a GPU's percentiles from:
// driver power, else instant power, else the 1 s average.
func powerOf(g *analyze.GPU) analyze.Series {
	switch {
	case g.DriverPower.Len() >= 2:
		return g.DriverPower
	case g.InstantPower.Len() >= 2:
		return g.InstantPower
	}
	return g.AveragePower
}
