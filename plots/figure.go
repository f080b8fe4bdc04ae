package plots

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is a laid-out figure, ready to be written in any format.
type Figure struct {
	Kind  Kind
	Width Width
	W, H  vg.Length // the printed size
	// Notes say what the figure leaves out and why (a run without
	// requests in a latency figure, ...); the command prints them.
	Notes []string

	draw func(c draw.Canvas)
}

// Draw lays out a figure of kind from runs at width w.
func Draw(kind Kind, runs []*Run, w Width) (*Figure, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no run given", kind)
	}
	st := newStyle(w)
	switch kind {
	case Timeline:
		if len(runs) != 1 {
			return nil, fmt.Errorf("timeline: draws one run; %d were given (plot each run on its own)", len(runs))
		}
		return timeline(st, runs[0])
	case Latency:
		return latency(st, runs)
	case Efficiency:
		return efficiencyFig(st, runs)
	case Pareto:
		return pareto(st, runs)
	case Power:
		return powerFig(st, runs)
	case Nodes:
		if len(runs) != 1 {
			return nil, fmt.Errorf("nodes: draws one job; %d were given (plot each job on its own)", len(runs))
		}
		return nodesFig(st, runs[0])
	}
	return nil, fmt.Errorf("unknown kind %q: want one of %s", kind, kindList())
}

// DefaultDPI is the resolution of PNG output: print quality.
const DefaultDPI = 300

// pdfDate is every PDF's creation and modification date. fpdf stamps
// the time of writing otherwise, and a figure must be the same bytes
// each time it is drawn from the same runs.
var pdfDate = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var pdfOnce sync.Once

// pdfDefaults makes fpdf deterministic: a fixed date, and its resource
// catalogues (fonts, images) written in sorted order rather than in Go's
// random map order. vgpdf does not expose its fpdf document, so these are
// fpdf's package defaults, set once before the first PDF canvas.
func pdfDefaults() {
	pdfOnce.Do(func() {
		fpdf.SetDefaultCatalogSort(true)
		fpdf.SetDefaultCreationDate(pdfDate)
		fpdf.SetDefaultModificationDate(pdfDate)
	})
}

// Render writes the figure in format; dpi sets a PNG's resolution (0:
// DefaultDPI) and is ignored by the vector formats.
func (f *Figure) Render(w io.Writer, format Format, dpi int) error {
	var c vg.CanvasWriterTo
	switch format {
	case PDF:
		pdfDefaults()
		c = pdfCanvas{vgpdf.New(f.W, f.H)} // Liberation Sans embedded
	case SVG:
		c = svgCanvas{vgsvg.New(f.W, f.H)} // text as outlines
	case PNG:
		if dpi <= 0 {
			dpi = DefaultDPI
		}
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.W, f.H), vgimg.UseDPI(dpi))}
	default:
		return fmt.Errorf("unknown format %q: want pdf, svg or png", format)
	}
	dc := draw.New(c)
	dc.SetColor(white)
	dc.Fill(dc.Rectangle.Path())
	f.draw(dc)
	_, err := c.WriteTo(w)
	return err
}

// WriteFile renders the figure to path in the format its extension names.
func (f *Figure) WriteFile(path string, dpi int) error {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	// Drawn in memory first: a failed figure leaves no partial file.
	var buf bytes.Buffer
	if err := f.Render(&buf, format, dpi); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// compose lays a figure out: the legend across the top (outside the
// data, so it hides nothing), then the panels, drawn by panels into the
// rest of the canvas. height is the panels' part of the figure.
func compose(st *style, kind Kind, lg *legend, height vg.Length, panels func(c draw.Canvas)) *Figure {
	lh := lg.height(st.w)
	f := &Figure{Kind: kind, Width: st.width, W: st.w, H: height + lh}
	f.draw = func(c draw.Canvas) {
		top := c
		top.Min.Y = c.Max.Y - lh
		lg.draw(top)
		rest := c
		rest.Max.Y -= lh
		// A small margin keeps the outermost tick labels and the right
		// end of the axes off the edge of the page.
		panels(draw.Crop(rest, vg.Points(1), -vg.Points(4), vg.Points(1), -vg.Points(3)))
	}
	return f
}

// padding is how far a plot's data area lies inside the canvas c.
type padding struct{ left, right, bottom, top vg.Length }

func padOf(p *plot.Plot, c draw.Canvas) padding {
	d := p.DataCanvas(c)
	return padding{d.Min.X - c.Min.X, c.Max.X - d.Max.X, d.Min.Y - c.Min.Y, c.Max.Y - d.Max.Y}
}

// column stacks plots from top to bottom in c with aligned data areas
// (the same left and right edges, so a shared x axis lines up), their
// heights in proportion to weights.
func column(c draw.Canvas, ps []*plot.Plot, weights []float64, gap vg.Length) []draw.Canvas {
	pads := make([]padding, len(ps))
	var left, right, fixed vg.Length
	var wsum float64
	for i, p := range ps {
		pads[i] = padOf(p, c)
		left, right = max(left, pads[i].left), max(right, pads[i].right)
		fixed += pads[i].top + pads[i].bottom
		wsum += weights[i]
	}
	fixed += gap * vg.Length(len(ps)-1)
	avail := c.Max.Y - c.Min.Y - fixed
	out := make([]draw.Canvas, len(ps))
	y := c.Max.Y
	for i := range ps {
		h := pads[i].top + pads[i].bottom + avail*vg.Length(weights[i]/wsum)
		out[i] = c
		out[i].Min.X = c.Min.X + left - pads[i].left
		out[i].Max.X = c.Max.X - (right - pads[i].right)
		out[i].Max.Y = y
		out[i].Min.Y = y - h
		y -= h + gap
	}
	return out
}

// row puts plots side by side in c with aligned data areas (the same
// bottom and top), their widths in proportion to weights.
func row(c draw.Canvas, ps []*plot.Plot, weights []float64, gap vg.Length) []draw.Canvas {
	pads := make([]padding, len(ps))
	var bottom, top, fixed vg.Length
	var wsum float64
	for i, p := range ps {
		pads[i] = padOf(p, c)
		bottom, top = max(bottom, pads[i].bottom), max(top, pads[i].top)
		fixed += pads[i].left + pads[i].right
		wsum += weights[i]
	}
	fixed += gap * vg.Length(len(ps)-1)
	avail := c.Max.X - c.Min.X - fixed
	out := make([]draw.Canvas, len(ps))
	x := c.Min.X
	for i := range ps {
		w := pads[i].left + pads[i].right + avail*vg.Length(weights[i]/wsum)
		out[i] = c
		out[i].Min.Y = c.Min.Y + bottom - pads[i].bottom
		out[i].Max.Y = c.Max.Y - (top - pads[i].top)
		out[i].Min.X = x
		out[i].Max.X = x + w
		x += w + gap
	}
	return out
}

// legend is a figure's key: entries in as many columns as fit the width,
// filled row by row, each column as wide as its widest entry.
type legend struct {
	st      *style
	entries []legendEntry
}

type legendEntry struct {
	text  string
	thumb func(c draw.Canvas) // draws the key's sample into c
}

func (l *legend) add(text string, thumb func(c draw.Canvas)) {
	l.entries = append(l.entries, legendEntry{text, thumb})
}

func (l *legend) thumbW() vg.Length {
	if l.st.width == Double {
		return vg.Points(16)
	}
	return vg.Points(13)
}

func (l *legend) rowH() vg.Length {
	return l.st.legend.Height("Mg") * 1.15
}

// entryW is the width of entry i: its key, a space and its text.
func (l *legend) entryW(i int) vg.Length {
	return l.thumbW() + vg.Points(3) + l.st.legend.Width(l.entries[i].text)
}

const legendColGap = 7 // pt between legend columns

// columns is the column count and widths that fit w (at least one).
func (l *legend) columns(w vg.Length) (int, []vg.Length) {
	n := len(l.entries)
	for cols := n; cols >= 1; cols-- {
		widths := make([]vg.Length, cols)
		for i := range l.entries {
			widths[i%cols] = max(widths[i%cols], l.entryW(i))
		}
		var total vg.Length
		for _, cw := range widths {
			total += cw
		}
		total += vg.Points(legendColGap) * vg.Length(cols-1)
		if total <= w || cols == 1 {
			return cols, widths
		}
	}
	return 1, nil
}

// height is the legend's height at figure width w, with its margins.
func (l *legend) height(w vg.Length) vg.Length {
	if len(l.entries) == 0 {
		return vg.Points(4)
	}
	cols, _ := l.columns(w - vg.Points(4))
	rows := (len(l.entries) + cols - 1) / cols
	return l.rowH()*vg.Length(rows) + vg.Points(5)
}

// draw draws the legend into c (the band compose keeps for it),
// centred.
func (l *legend) draw(c draw.Canvas) {
	if len(l.entries) == 0 {
		return
	}
	cols, widths := l.columns(c.Max.X - c.Min.X - vg.Points(4))
	var total vg.Length
	for _, cw := range widths {
		total += cw
	}
	total += vg.Points(legendColGap) * vg.Length(cols-1)
	x0 := c.Min.X + (c.Max.X-c.Min.X-total)/2
	rh := l.rowH()
	ext := l.st.legend.FontExtents()
	sty := l.st.legend
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YCenter
	for i, e := range l.entries {
		col, r := i%cols, i/cols
		x := x0
		for k := 0; k < col; k++ {
			x += widths[k] + vg.Points(legendColGap)
		}
		mid := c.Max.Y - vg.Points(3) - rh*vg.Length(r) - rh/2
		th := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: mid - ext.Ascent*0.4},
			Max: vg.Point{X: x + l.thumbW(), Y: mid + ext.Ascent*0.4}}}
		e.thumb(th)
		c.FillText(sty, vg.Point{X: x + l.thumbW() + vg.Points(3), Y: mid}, e.text)
	}
}

// Thumbnails.

func lineThumb(ls draw.LineStyle) func(c draw.Canvas) {
	return func(c draw.Canvas) {
		y := (c.Min.Y + c.Max.Y) / 2
		c.StrokeLine2(ls, c.Min.X, y, c.Max.X, y)
	}
}

func swatchThumb(fill, edge colorT) func(c draw.Canvas) {
	return func(c draw.Canvas) {
		r := c.Rectangle
		r.Min.X += vg.Points(1)
		r.Max.X -= vg.Points(1)
		c.SetColor(fill)
		c.Fill(r.Path())
		if edge != nil {
			c.SetLineStyle(draw.LineStyle{Color: edge, Width: vg.Points(0.4)})
			c.Stroke(r.Path())
		}
	}
}

func glyphThumb(g draw.GlyphStyle, bar *draw.LineStyle) func(c draw.Canvas) {
	return func(c draw.Canvas) {
		mid := c.Center()
		if bar != nil {
			c.StrokeLine2(*bar, c.Min.X+vg.Points(1), mid.Y, c.Max.X-vg.Points(1), mid.Y)
			for _, x := range []vg.Length{c.Min.X + vg.Points(1), c.Max.X - vg.Points(1)} {
				c.StrokeLine2(*bar, x, mid.Y-vg.Points(1.5), x, mid.Y+vg.Points(1.5))
			}
		}
		c.DrawGlyphNoClip(g, mid)
	}
}

// heightFor rounds a figure's panel height to whole points.
func heightFor(in float64) vg.Length {
	return vg.Points(math.Round(in * 72))
}
