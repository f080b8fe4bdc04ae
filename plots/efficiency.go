package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// effRuns are the runs of an efficiency or Pareto figure with their
// values.
type effRun struct {
	r *Run
	e efficiency
}

func effRuns(all []*Run, kind Kind) ([]effRun, []string, error) {
	runs, notes, err := withRequests(all, kind)
	if err != nil {
		return nil, notes, err
	}
	var out []effRun
	for _, r := range runs {
		e, ok := efficiencyOf(r)
		if !ok || !finite(e.ept.est) {
			notes = append(notes, fmt.Sprintf("%s: %s has no output tokens with an energy in its measured windows and is left out", kind, r.Dir))
			continue
		}
		out = append(out, effRun{r, e})
	}
	if len(out) == 0 {
		return nil, notes, fmt.Errorf("%s: no run has output tokens with an energy in its measured windows", kind)
	}
	return out, notes, nil
}

// ciText says what the bars are, and what a point without bars is.
func ciTexts(runs []effRun) (withCI, without string) {
	n, same := 0, true
	for _, x := range runs {
		if x.e.cycles > 0 {
			if n != 0 && n != x.e.cycles {
				same = false
			}
			n = x.e.cycles
		}
	}
	s := runs[0].r.Settings
	cycles := "cycles"
	if same && n > 0 {
		cycles = fmt.Sprintf("%d cycles", n)
	}
	withCI = fmt.Sprintf("mean over %s, %g%% BCa CI", cycles, s.Confidence*100)
	without = fmt.Sprintf("measured windows, no CI (< %d cycles)", s.MinCycles)
	return withCI, without
}

// efficiencyFig is a dot plot, a row per run: energy per output token and
// output tokens/s, with BCa intervals over cycles where a run has them.
func efficiencyFig(st *style, all []*Run) (*Figure, error) {
	runs, notes, err := effRuns(all, Efficiency)
	if err != nil {
		return nil, err
	}
	n := len(runs)
	ept := st.newPlot("Energy per output token (J)", "")
	tps := st.newPlot("Throughput (output tokens/s)", "")
	panels := []*plot.Plot{ept, tps}
	names := make([]plot.Tick, n)
	var eptV, tpsV []interval
	anyCI, anyOpen := false, false
	for i := range runs {
		x := runs[n-1-i] // the first run on top
		names[i] = plot.Tick{Value: float64(i), Label: x.r.Label}
		eptV = append(eptV, x.e.ept)
		tpsV = append(tpsV, x.e.tps)
		if x.e.ept.hasBar() {
			anyCI = true
		} else {
			anyOpen = true
		}
	}
	bar := draw.LineStyle{Color: black, Width: st.line * 0.8}
	dot := draw.GlyphStyle{Color: blue, Radius: vg.Points(2.3), Shape: draw.CircleGlyph{}}
	open := draw.GlyphStyle{Color: vermilion, Radius: vg.Points(2.3), Shape: draw.RingGlyph{}}
	guide := draw.LineStyle{Color: tint(grey, 0.5), Width: vg.Points(0.3), Dashes: []vg.Length{vg.Points(1), vg.Points(1.5)}}
	for k, p := range panels {
		vals := [][]interval{eptV, tpsV}[k]
		sc := valueAxis(&p.X, vals)
		vals = mapIntervals(sc, vals)
		for i := range vals {
			p.Add(hLine{float64(i), guide})
		}
		p.Add(dotRows{vals: vals, bar: bar, dot: dot, open: open})
		p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
		p.Y.Tick.Marker = plot.ConstantTicks(names)
		p.Y.Tick.Length = 0
	}
	lg := &legend{st: st}
	withCI, without := ciTexts(runs)
	if anyCI {
		lg.add(withCI, glyphThumb(dot, &bar))
	}
	if anyOpen {
		lg.add(without, glyphThumb(open, nil))
	}
	rowPt := 15.0
	var f *Figure
	if st.width == Single {
		h := 2*(30+float64(max(n, 2))*rowPt) + 12
		f = compose(st, Efficiency, lg, vg.Points(h), func(c draw.Canvas) {
			cs := column(c, panels, []float64{1, 1}, st.gap*2)
			for i, p := range panels {
				p.Draw(cs[i])
			}
		})
	} else {
		hideTickLabels(&tps.Y)
		h := 30 + float64(max(n, 2))*(rowPt+2)
		f = compose(st, Efficiency, lg, vg.Points(h), func(c draw.Canvas) {
			cs := row(c, panels, []float64{1, 1}, st.gap*3)
			for i, p := range panels {
				p.Draw(cs[i])
			}
		})
	}
	f.Notes = notes
	return f, nil
}

// valueAxis sets a value axis over intervals: from 0 on a linear scale,
// or on a log scale when the values span more than a factor of 10.
func valueAxis(a *plot.Axis, vals []interval) axisScale {
	lo, hi := dataRange(vals)
	if lo > 0 && hi/lo > 10 {
		sc := axisScale{log: true}
		sc.set(a, lo/1.25, hi*1.25)
		return sc
	}
	a.Min, a.Max = 0, hi*1.08
	if lo < 0 {
		a.Min = lo * 1.08
	}
	return axisScale{}
}

func mapIntervals(sc axisScale, vs []interval) []interval {
	out := make([]interval, len(vs))
	for i, v := range vs {
		out[i] = sc.iv(v)
	}
	return out
}

// pareto plots energy per output token against throughput, a point per
// run labelled with its name, the runs no other run beats on both
// (higher throughput and lower energy per token) joined as the front.
func pareto(st *style, all []*Run) (*Figure, error) {
	runs, notes, err := effRuns(all, Pareto)
	if err != nil {
		return nil, err
	}
	p := st.newPlot("Throughput (output tokens/s)", "Energy per output token (J)")
	var xs, ys []interval
	for _, x := range runs {
		xs, ys = append(xs, x.e.tps), append(ys, x.e.ept)
	}
	sx := paretoAxis(&p.X, xs, 0.12, 0.3)
	sy := paretoAxis(&p.Y, ys, 0.12, 0.15)
	front := paretoFront(runs)
	var fx xy
	for _, i := range front {
		fx.add(sx.f(runs[i].e.tps.est), sy.f(runs[i].e.ept.est))
	}
	onFront := map[int]bool{}
	for _, i := range front {
		onFront[i] = true
	}
	frontLine := draw.LineStyle{Color: blue, Width: st.line}
	dot := draw.GlyphStyle{Color: blue, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
	open := draw.GlyphStyle{Color: black, Radius: vg.Points(2.3), Shape: draw.RingGlyph{}}
	bar := draw.LineStyle{Color: grey, Width: st.line * 0.7}
	lp := labelledPoints{sty: st.small}
	anyBar := false
	for i, x := range runs {
		g := open
		if onFront[i] {
			g = dot
		}
		lp.pts = append(lp.pts, labelledPoint{x: sx.iv(x.e.tps), y: sy.iv(x.e.ept), glyph: g, label: x.r.Label})
		anyBar = anyBar || x.e.tps.hasBar() || x.e.ept.hasBar()
	}
	lp.bar = bar
	if len(fx.x) > 1 {
		p.Add(line(fx, frontLine, plotter.NoStep))
	}
	p.Add(lp)

	lg := &legend{st: st}
	if len(fx.x) > 1 {
		lg.add("Pareto front", func(c draw.Canvas) {
			lineThumb(frontLine)(c)
			c.DrawGlyphNoClip(dot, c.Center())
		})
	} else {
		lg.add("Pareto front", glyphThumb(dot, nil))
	}
	if len(front) < len(runs) {
		lg.add("dominated", glyphThumb(open, nil))
	}
	withCI, without := ciTexts(runs)
	if anyBar {
		lg.add(withCI, glyphThumb(draw.GlyphStyle{}, &bar))
	}
	for _, x := range runs {
		if !x.e.ept.hasBar() {
			lg.add("no bars: "+without, func(draw.Canvas) {})
			break
		}
	}
	h := heightFor(2.6)
	if st.width == Double {
		h = heightFor(3.4)
	}
	f := compose(st, Pareto, lg, h, func(c draw.Canvas) { p.Draw(c) })
	f.Notes = notes
	return f, nil
}

// paretoFront is the runs on the front, by increasing throughput.
func paretoFront(runs []effRun) []int {
	var front []int
	for i, a := range runs {
		dominated := false
		for j, b := range runs {
			if i == j {
				continue
			}
			ge := b.e.tps.est >= a.e.tps.est && b.e.ept.est <= a.e.ept.est
			gt := b.e.tps.est > a.e.tps.est || b.e.ept.est < a.e.ept.est
			if ge && gt {
				dominated = true
				break
			}
		}
		if !dominated {
			front = append(front, i)
		}
	}
	// Insertion sort by throughput: the front is short.
	for i := 1; i < len(front); i++ {
		for k := i; k > 0 && runs[front[k]].e.tps.est < runs[front[k-1]].e.tps.est; k-- {
			front[k], front[k-1] = front[k-1], front[k]
		}
	}
	return front
}

// paretoAxis spans the values with room for labels: a log scale when
// they span more than a factor of 10, else linear; lowPad and highPad
// are fractions of the span added below and above.
func paretoAxis(a *plot.Axis, vals []interval, lowPad, highPad float64) axisScale {
	lo, hi := dataRange(vals)
	if lo > 0 && hi/lo > 10 {
		sc := axisScale{log: true}
		span := math.Log10(hi / lo)
		sc.set(a, lo/math.Pow(10, span*lowPad), hi*math.Pow(10, span*highPad))
		return sc
	}
	span := hi - lo
	if span <= 0 {
		span = math.Abs(hi) * 0.2
		if span == 0 {
			span = 1
		}
	}
	a.Min, a.Max = max(0, lo-span*lowPad), hi+span*highPad
	if a.Min < span*0.5 {
		a.Min = 0
	}
	return axisScale{}
}

// labelledPoints draws points with interval bars and a label each, put
// where it overlaps no other label, point or the edge of the data area.
type labelledPoints struct {
	pts []labelledPoint
	sty text.Style
	bar draw.LineStyle
}

type labelledPoint struct {
	x, y  interval
	glyph draw.GlyphStyle
	label string
}

func (lp labelledPoints) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	cap := vg.Points(1.5)
	var taken []vg.Rectangle
	centre := make([]vg.Point, len(lp.pts))
	for i, pt := range lp.pts {
		centre[i] = vg.Point{X: trX(pt.x.est), Y: trY(pt.y.est)}
		r := pt.glyph.Radius + vg.Points(0.5)
		taken = append(taken, vg.Rectangle{Min: vg.Point{X: centre[i].X - r, Y: centre[i].Y - r}, Max: vg.Point{X: centre[i].X + r, Y: centre[i].Y + r}})
	}
	// The bars are obstacles for the labels too.
	bars := make([][2]vg.Length, len(lp.pts)) // each point's horizontal bar's ends
	for i, pt := range lp.pts {
		c0 := centre[i]
		bars[i] = [2]vg.Length{c0.X, c0.X}
		if pt.x.hasBar() {
			bars[i] = [2]vg.Length{trX(pt.x.lo), trX(pt.x.hi)}
			taken = append(taken, vg.Rectangle{Min: vg.Point{X: bars[i][0], Y: c0.Y - cap}, Max: vg.Point{X: bars[i][1], Y: c0.Y + cap}})
		}
		if pt.y.hasBar() {
			taken = append(taken, vg.Rectangle{Min: vg.Point{X: c0.X - cap, Y: trY(pt.y.lo)}, Max: vg.Point{X: c0.X + cap, Y: trY(pt.y.hi)}})
		}
	}
	for i, pt := range lp.pts {
		c0 := centre[i]
		if pt.x.hasBar() {
			x0, x1 := trX(pt.x.lo), trX(pt.x.hi)
			c.StrokeLine2(lp.bar, x0, c0.Y, x1, c0.Y)
			c.StrokeLine2(lp.bar, x0, c0.Y-cap, x0, c0.Y+cap)
			c.StrokeLine2(lp.bar, x1, c0.Y-cap, x1, c0.Y+cap)
		}
		if pt.y.hasBar() {
			y0, y1 := trY(pt.y.lo), trY(pt.y.hi)
			c.StrokeLine2(lp.bar, c0.X, y0, c0.X, y1)
			c.StrokeLine2(lp.bar, c0.X-cap, y0, c0.X+cap, y0)
			c.StrokeLine2(lp.bar, c0.X-cap, y1, c0.X+cap, y1)
		}
	}
	for i, pt := range lp.pts {
		c.DrawGlyph(pt.glyph, centre[i])
	}
	for i, pt := range lp.pts {
		th := lp.sty.Height(pt.label)
		w := lp.sty.Width(pt.label)
		c0 := centre[i]
		gap := pt.glyph.Radius + vg.Points(2)
		// Candidate lower-left corners: right, left (of the point, then of
		// its bar), above, below, then the diagonals.
		cands := []vg.Point{
			{X: c0.X + gap, Y: c0.Y - th/2},
			{X: c0.X - gap - w, Y: c0.Y - th/2},
			{X: max(c0.X+gap, bars[i][1]+vg.Points(2)), Y: c0.Y - th/2},
			{X: min(c0.X-gap, bars[i][0]-vg.Points(2)) - w, Y: c0.Y - th/2},
			{X: c0.X - w/2, Y: c0.Y + gap},
			{X: c0.X - w/2, Y: c0.Y - gap - th},
			{X: c0.X + gap*0.7, Y: c0.Y + gap*0.7},
			{X: c0.X + gap*0.7, Y: c0.Y - gap*0.7 - th},
			{X: c0.X - gap*0.7 - w, Y: c0.Y + gap*0.7},
			{X: c0.X - gap*0.7 - w, Y: c0.Y - gap*0.7 - th},
		}
		best := -1
		for k, a := range cands {
			r := vg.Rectangle{Min: a, Max: vg.Point{X: a.X + w, Y: a.Y + th}}
			if r.Min.X < c.Min.X || r.Max.X > c.Max.X || r.Min.Y < c.Min.Y || r.Max.Y > c.Max.Y {
				continue
			}
			free := true
			for _, t := range taken {
				if overlaps(r, t) {
					free = false
					break
				}
			}
			if free {
				best = k
				break
			}
		}
		if best < 0 {
			best = 0
		}
		a := cands[best]
		taken = append(taken, vg.Rectangle{Min: a, Max: vg.Point{X: a.X + w, Y: a.Y + th}})
		sty := lp.sty
		sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
		c.FillText(sty, a, pt.label)
	}
}

func overlaps(a, b vg.Rectangle) bool {
	return a.Min.X < b.Max.X && b.Min.X < a.Max.X && a.Min.Y < b.Max.Y && b.Min.Y < a.Max.Y
}
