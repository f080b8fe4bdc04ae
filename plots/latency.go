package plots

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
)

// latency draws the CDFs of time to first token (per request) and of the
// inter-token latency (every gap between a request's tokens, vLLM's ITL)
// over the requests that start in each run's measured windows, a line per
// run.
func latency(st *style, all []*Run) (*Figure, error) {
	runs, notes, err := withRequests(all, Latency)
	if err != nil {
		return nil, err
	}
	ttft := st.newPlot("Time to first token (ms)", "Fraction of requests")
	itl := st.newPlot("Inter-token latency, ITL (ms)", "Fraction of tokens")
	panels := []*plot.Plot{ttft, itl}
	lg := &legend{st: st}
	var ttftAll, itlAll [][]float64
	for _, r := range runs {
		l := r.Latency
		ttftAll = append(ttftAll, ms(l.TTFT))
		itlAll = append(itlAll, ms(l.ITL.Values()))
		if len(l.TTFT) == 0 {
			notes = append(notes, fmt.Sprintf("latency: %s has no first_token events: no TTFT", r.Dir))
		}
		if l.ITL.Len() == 0 {
			notes = append(notes, fmt.Sprintf("latency: %s has no token events after a first token: no ITL", r.Dir))
		}
	}
	for k, p := range panels {
		vals := [][][]float64{ttftAll, itlAll}[k]
		sc := setCDFAxes(p, vals, true)
		for i, v := range vals {
			if len(v) > 0 {
				p.Add(line(sc.xOf(ecdf(v)), st.seriesStyle(i), plotter.PostStep))
			}
		}
	}
	for i, r := range runs {
		n := max(len(ttftAll[i]), len(runs[i].Latency.E2E))
		lg.add(fmt.Sprintf("%s (%d requests)", r.Label, n), lineThumb(st.seriesStyle(i)))
	}
	var f *Figure
	if st.width == Single {
		f = compose(st, Latency, lg, heightFor(3.5), func(c draw.Canvas) {
			cs := column(c, panels, []float64{1, 1}, st.gap*2)
			for i, p := range panels {
				p.Draw(cs[i])
			}
		})
	} else {
		itl.Y.Label.Text = "" // the panels share the y axis's meaning
		f = compose(st, Latency, lg, heightFor(2.4), func(c draw.Canvas) {
			cs := row(c, panels, []float64{1, 1}, st.gap*3)
			for i, p := range panels {
				p.Draw(cs[i])
			}
		})
	}
	f.Notes = notes
	return f, nil
}

func ms(s []float64) []float64 {
	out := make([]float64, 0, len(s))
	for _, v := range s {
		if finite(v) {
			out = append(out, v*1000)
		}
	}
	return out
}

// maxECDF is how many steps an ECDF keeps: evenly spaced ranks beyond it.
const maxECDF = 2000

// ecdf is the empirical CDF of v as the corners of a post-step line: it
// rises from 0 at the smallest value to 1 at the largest.
func ecdf(v []float64) xy {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	var p xy
	p.add(s[0], 0)
	if n <= maxECDF {
		for i, x := range s {
			p.add(x, float64(i+1)/float64(n))
		}
		return p
	}
	for j := 0; j < maxECDF; j++ {
		k := int(math.Round(float64(j) * float64(n-1) / float64(maxECDF-1)))
		p.add(s[k], float64(k+1)/float64(n))
	}
	return p
}

// setCDFAxes: y from 0 to 1; x over the values, on a log scale when
// logOK and they span more than a factor of 30.
func setCDFAxes(p *plot.Plot, vals [][]float64, logOK bool) axisScale {
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = plot.ConstantTicks{
		{Value: 0, Label: "0"}, {Value: 0.125}, {Value: 0.25, Label: "0.25"}, {Value: 0.375},
		{Value: 0.5, Label: "0.5"}, {Value: 0.625}, {Value: 0.75, Label: "0.75"}, {Value: 0.875}, {Value: 1, Label: "1"}}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		for _, x := range v {
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	if math.IsInf(lo, 0) {
		p.X.Min, p.X.Max = 0, 1
		return axisScale{}
	}
	if logOK && lo > 0 && hi/lo > 30 {
		sc := axisScale{log: true}
		sc.set(&p.X, lo/1.1, hi*1.1)
		return sc
	}
	pad := max((hi-lo)*0.04, hi*0.01, 1e-3)
	p.X.Min, p.X.Max = max(0, lo-pad), hi+pad
	return axisScale{}
}

// xOf maps a line's x values onto the axis.
func (s axisScale) xOf(p xy) xy {
	if !s.log {
		return p
	}
	out := xy{x: make([]float64, len(p.x)), y: p.y}
	for i, v := range p.x {
		out.x[i] = s.f(v)
	}
	return out
}
