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
		ws := windows(r, analyze.KindSteady, false)
		where := "steady"
		if len(ws) == 0 {
			ws = windows(r, "", true)
			where = "measured, no steady state"
		}
		ps := r.PowerSamplesIn(ws)
		v, dur := ps.Watts, ps.DurationS
		if len(v) == 0 {
			notes = append(notes, fmt.Sprintf("power: %s has no power samples in its %s windows and is left out", r.Dir, where))
			continue
		}
		all = append(all, v)
		ls := st.seriesStyle(i)
		p.Add(line(ecdf(v), ls, plotter.PostStep))
		lg.add(fmt.Sprintf("%s (%s, %.0f s, mean %.0f W)", r.Label, where, dur, ps.MeanW), lineThumb(ls))
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
