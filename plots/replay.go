package plots

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/llem/llem/analyze/methods"
)

// ReplayErrorsKind is the figure of `llem replay --plot`: it is drawn
// from replayed measurements, not from runs, so `llem plot` does not
// offer it.
const ReplayErrorsKind Kind = "replay-errors"

// ReplayPoint is one window re-measured by one method (llem replay).
type ReplayPoint struct {
	Method    string
	DurationS float64 // the window's length
	ErrorPct  float64 // the method's energy against llem's, in %
}

// ReplayErrorsOf draws the replayed methods' errors of doc (ReplayErrors).
func ReplayErrorsOf(doc methods.Doc, w Width) (*Figure, error) {
	var pts []ReplayPoint
	for _, r := range doc.Runs {
		for _, win := range r.Windows {
			for _, m := range win.Methods {
				pts = append(pts, ReplayPoint{Method: m.Method, DurationS: win.DurationS, ErrorPct: float64(m.ErrorPct)})
			}
		}
	}
	return ReplayErrors(pts, w)
}

// ReplayErrors draws each method's error against llem's estimate over the
// windows' length (log scale), a colour per method in the order the
// methods first appear: short windows are where polling goes wrong.
func ReplayErrors(points []ReplayPoint, w Width) (*Figure, error) {
	var methods []string
	lo, hi := math.Inf(1), math.Inf(-1)
	ylo, yhi := 0.0, 0.0
	for _, p := range points {
		if !finite(p.DurationS) || !finite(p.ErrorPct) || p.DurationS <= 0 {
			continue
		}
		if !slices.Contains(methods, p.Method) {
			methods = append(methods, p.Method)
		}
		lo, hi = min(lo, p.DurationS), max(hi, p.DurationS)
		ylo, yhi = min(ylo, p.ErrorPct), max(yhi, p.ErrorPct)
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("%s: no window has both a length and an error to draw", ReplayErrorsKind)
	}
	st := newStyle(w)
	p := st.newPlot("Window length (s)", "Error against llem (%)")
	sc := axisScale{log: true}
	if hi/lo < 3 {
		sc = axisScale{}
		pad := max((hi-lo)*0.05, hi*0.02)
		p.X.Min, p.X.Max = max(0, lo-pad), hi+pad
	} else {
		sc.set(&p.X, lo/1.2, hi*1.2)
	}
	pad := max((yhi-ylo)*0.06, 0.5)
	p.Y.Min, p.Y.Max = ylo-pad, yhi+pad
	p.Y.Tick.Marker = niceTicks{n: 7}
	p.Add(hLine{y: 0, ls: draw.LineStyle{Color: grey, Width: st.axis}})
	lg := &legend{st: st}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}}
	for i, m := range methods {
		var xy plotter.XYs
		for _, pt := range points {
			if pt.Method == m && finite(pt.DurationS) && finite(pt.ErrorPct) && pt.DurationS > 0 {
				xy = append(xy, plotter.XY{X: sc.f(pt.DurationS), Y: pt.ErrorPct})
			}
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, err
		}
		g := draw.GlyphStyle{Color: series[i%len(series)], Radius: vg.Points(2), Shape: shapes[i%len(shapes)]}
		s.GlyphStyle = g
		p.Add(s)
		lg.add(m, glyphThumb(g, nil))
	}
	f := compose(st, ReplayErrorsKind, lg, heightFor(map[Width]float64{Single: 2.6, Double: 2.8}[w]), func(c draw.Canvas) {
		p.Draw(c)
	})
	return f, nil
}

var _ plot.Plotter = hLine{}
