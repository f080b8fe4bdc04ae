package plots

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plotters of llem's figures that gonum/plot does not have. Each draws
// into the data canvas it is given and clips to it.

// xy is a polyline in data coordinates.
type xy struct{ x, y []float64 }

func (p *xy) add(x, y float64) {
	p.x = append(p.x, x)
	p.y = append(p.y, y)
}

// maxPoints is how many points a line keeps before decimation: about
// three per printed point of a 7 in axis.
const maxPoints = 1500

// line turns p into a gonum line, without NaNs, decimated to at most
// about 2*maxPoints points: each of maxPoints equal slices of x keeps its
// lowest and highest point, in time order, so a dense trace keeps its
// envelope (an hour at 50 Hz is 180,000 samples).
func line(p xy, ls draw.LineStyle, step plotter.StepKind) *plotter.Line {
	pts := make(plotter.XYs, 0, len(p.x))
	for i := range p.x {
		if finite(p.x[i]) && finite(p.y[i]) {
			pts = append(pts, plotter.XY{X: p.x[i], Y: p.y[i]})
		}
	}
	if len(pts) > 4*maxPoints && step == plotter.NoStep {
		pts = decimate(pts, maxPoints)
	}
	l := &plotter.Line{XYs: pts, LineStyle: ls, StepStyle: step}
	return l
}

func decimate(pts plotter.XYs, buckets int) plotter.XYs {
	x0, x1 := pts[0].X, pts[len(pts)-1].X
	out := make(plotter.XYs, 0, 2*buckets+2)
	i := 0
	for b := 0; b < buckets && i < len(pts); b++ {
		hi := x0 + (x1-x0)*float64(b+1)/float64(buckets)
		lo, mx := i, i
		j := i
		for ; j < len(pts) && (pts[j].X <= hi || b == buckets-1); j++ {
			if pts[j].Y < pts[lo].Y {
				lo = j
			}
			if pts[j].Y > pts[mx].Y {
				mx = j
			}
		}
		if j == i {
			continue
		}
		a, c := min(lo, mx), max(lo, mx)
		out = append(out, pts[a])
		if c != a {
			out = append(out, pts[c])
		}
		i = j
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// xSpans shades spans of x over the whole height of the data area.
type xSpans []xSpan

type xSpan struct {
	x0, x1 float64
	fill   colorT
}

func (s xSpans) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, sp := range s {
		a, b := max(trX(sp.x0), c.Min.X), min(trX(sp.x1), c.Max.X)
		if b <= a {
			continue
		}
		c.SetColor(sp.fill)
		c.Fill(vg.Rectangle{Min: vg.Point{X: a, Y: c.Min.Y}, Max: vg.Point{X: b, Y: c.Max.Y}}.Path())
	}
}

// hLine is a horizontal line across the data area at y.
type hLine struct {
	y  float64
	ls draw.LineStyle
}

func (h hLine) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.y)
	if y < c.Min.Y || y > c.Max.Y {
		return
	}
	c.StrokeLine2(h.ls, c.Min.X, y, c.Max.X, y)
}

// rug draws a short tick up from the bottom of the data area at each x.
type rug struct {
	x  []float64
	h  vg.Length
	ls draw.LineStyle
}

func (r rug) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range r.x {
		if px := trX(x); px >= c.Min.X && px <= c.Max.X {
			c.StrokeLine2(r.ls, px, c.Min.Y, px, c.Min.Y+r.h)
		}
	}
}

// topBracket marks spans of x (the cycles) along the top of the data
// area: a bracket with its label above it, the longest of the candidate
// labels that fits.
type topBracket struct {
	spans  [][2]float64
	labels [][]string // per span, longest first
	sty    text.Style
	ls     draw.LineStyle
}

// height is the band the brackets take below the top of the data area.
func (b topBracket) height() vg.Length {
	return b.sty.Height("cycle") + vg.Points(2.5)
}

func (b topBracket) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	y := c.Max.Y - b.sty.Height("cycle") - vg.Points(1)
	sty := b.sty
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
	for i, sp := range b.spans {
		x0, x1 := max(trX(sp[0]), c.Min.X), min(trX(sp[1]), c.Max.X)
		if x1-x0 < vg.Points(2) {
			continue
		}
		in := vg.Points(0.6)
		c.StrokeLines(b.ls, []vg.Point{{X: x0 + in, Y: y - vg.Points(2)}, {X: x0 + in, Y: y}, {X: x1 - in, Y: y}, {X: x1 - in, Y: y - vg.Points(2)}})
		for _, l := range b.labels[i] {
			if sty.Width(l) <= x1-x0-vg.Points(2) {
				c.FillText(sty, vg.Point{X: (x0 + x1) / 2, Y: y + vg.Points(0.3)}, l)
				break
			}
		}
	}
}

// topBars draws spans of x as thick bars a fixed distance below the top
// of the data area (the steady windows).
type topBars struct {
	spans [][2]float64
	below vg.Length
	ls    draw.LineStyle
}

func (b topBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	y := c.Max.Y - b.below
	for _, sp := range b.spans {
		x0, x1 := max(trX(sp[0]), c.Min.X), min(trX(sp[1]), c.Max.X)
		if x1 > x0 {
			c.StrokeLine2(b.ls, x0, y, x1, y)
		}
	}
}

// interval is a point estimate with an optional interval.
type interval struct {
	est, lo, hi float64
}

func (iv interval) hasBar() bool { return finite(iv.lo) && finite(iv.hi) }

// dotRows draws one estimate per row (y = 0, 1, ...), with a horizontal
// interval bar where there is one: a Cleveland dot plot.
type dotRows struct {
	vals []interval
	bar  draw.LineStyle
	dot  draw.GlyphStyle // rows with a bar
	open draw.GlyphStyle // rows without
}

func (d dotRows) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	cap := vg.Points(2)
	for i, v := range d.vals {
		y := trY(float64(i))
		if v.hasBar() {
			x0, x1 := trX(v.lo), trX(v.hi)
			c.StrokeLine2(d.bar, x0, y, x1, y)
			c.StrokeLine2(d.bar, x0, y-cap, x0, y+cap)
			c.StrokeLine2(d.bar, x1, y-cap, x1, y+cap)
			c.DrawGlyph(d.dot, vg.Point{X: trX(v.est), Y: y})
		} else if finite(v.est) {
			c.DrawGlyph(d.open, vg.Point{X: trX(v.est), Y: y})
		}
	}
}

// dataRange of intervals: the lowest and highest value drawn.
func dataRange(vs []interval) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		for _, x := range []float64{v.est, v.lo, v.hi} {
			if finite(x) {
				lo, hi = min(lo, x), max(hi, x)
			}
		}
	}
	return lo, hi
}
