package plots

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Kind names a figure.
type Kind string

// The figures.
const (
	Timeline   Kind = "timeline"   // one run: power, temperature and SM clock over time
	Latency    Kind = "latency"    // TTFT and ITL (every inter-token gap) CDFs, a line per run
	Efficiency Kind = "efficiency" // energy per output token and tokens/s per run, with CIs over cycles
	Pareto     Kind = "pareto"     // energy per output token against tokens/s, Pareto front marked
	Power      Kind = "power"      // ECDF of the power samples in each run's steady window
	Nodes      Kind = "nodes"      // one multi-node job: each node's power over time
)

// Kinds lists every figure, in the order the help text gives them.
var Kinds = []Kind{Timeline, Latency, Efficiency, Pareto, Power, Nodes}

// ParseKind checks a --kind value.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q: want one of %s", s, kindList())
}

func kindList() string {
	var s []string
	for _, k := range Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// Width is a figure's printed width.
type Width int

// The two widths of a two-column paper.
const (
	Single Width = iota // one column, 3.5 in
	Double              // the page, 7 in
)

// ParseWidth checks a --width value.
func ParseWidth(s string) (Width, error) {
	switch s {
	case "single":
		return Single, nil
	case "double":
		return Double, nil
	}
	return 0, fmt.Errorf("unknown width %q: want single (3.5 in, one column) or double (7 in, the page)", s)
}

func (w Width) String() string {
	if w == Double {
		return "double"
	}
	return "single"
}

// Length is the printed width.
func (w Width) Length() vg.Length {
	if w == Double {
		return 7 * vg.Inch
	}
	return 3.5 * vg.Inch
}

// Format is an output file format.
type Format string

// The formats.
const (
	PDF Format = "pdf"
	SVG Format = "svg"
	PNG Format = "png"
)

// FormatOf is the format a file name asks for by its extension.
func FormatOf(path string) (Format, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch Format(ext) {
	case PDF, SVG, PNG:
		return Format(ext), nil
	}
	if ext == "" {
		return "", fmt.Errorf("%s: no extension: name the file .pdf, .svg or .png", path)
	}
	return "", fmt.Errorf("%s: unknown extension .%s: want .pdf, .svg or .png", path, ext)
}

// The Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"),
// distinguishable with every common form of colour blindness.
var (
	black     = color.NRGBA{0x00, 0x00, 0x00, 0xff}
	orange    = color.NRGBA{0xe6, 0x9f, 0x00, 0xff}
	skyBlue   = color.NRGBA{0x56, 0xb4, 0xe9, 0xff}
	green     = color.NRGBA{0x00, 0x9e, 0x73, 0xff} // bluish green
	yellow    = color.NRGBA{0xf0, 0xe4, 0x42, 0xff}
	blue      = color.NRGBA{0x00, 0x72, 0xb2, 0xff}
	vermilion = color.NRGBA{0xd5, 0x5e, 0x00, 0xff}
	purple    = color.NRGBA{0xcc, 0x79, 0xa7, 0xff} // reddish purple
	grey      = color.NRGBA{0x99, 0x99, 0x99, 0xff}
	white     = color.NRGBA{0xff, 0xff, 0xff, 0xff}
)

type colorT = color.Color

// series is the order lines of several runs take: the palette without
// yellow (too light for a thin line on white), then again dashed.
var series = []color.NRGBA{blue, vermilion, green, purple, orange, skyBlue, black}

// seriesStyle is the line style of the i-th run.
func (st *style) seriesStyle(i int) draw.LineStyle {
	ls := draw.LineStyle{Color: series[i%len(series)], Width: st.line}
	if i >= len(series) {
		ls.Dashes = []vg.Length{vg.Points(3), vg.Points(1.5)}
	}
	return ls
}

// tint is c mixed with white: a shade that lines stay readable over.
func tint(c color.NRGBA, f float64) color.NRGBA {
	mix := func(v uint8) uint8 { return uint8(math.Round(float64(v)*f + 255*(1-f))) }
	return color.NRGBA{mix(c.R), mix(c.G), mix(c.B), 0xff}
}

// style holds the sizes of one width.
type style struct {
	width   Width
	w       vg.Length
	tick    text.Style // tick labels
	label   text.Style // axis labels
	legend  text.Style
	small   text.Style // labels inside the data area
	line    vg.Length  // data lines
	thin    vg.Length  // dense traces
	axis    vg.Length
	tickLen vg.Length
	gap     vg.Length // between panels
}

var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

func newStyle(w Width) *style {
	st := &style{width: w, w: w.Length()}
	tick, label := 7.0, 8.0
	st.line, st.thin, st.axis, st.tickLen = vg.Points(0.9), vg.Points(0.35), vg.Points(0.5), vg.Points(3)
	if w == Double {
		tick, label = 8, 9
		st.line, st.thin = vg.Points(1.1), vg.Points(0.4)
	}
	mk := func(size float64) text.Style {
		return text.Style{Color: black, Font: font.From(sans, vg.Points(size)), Handler: plot.DefaultTextHandler}
	}
	st.tick, st.label, st.legend, st.small = mk(tick), mk(label), mk(tick), mk(tick)
	st.gap = vg.Points(6)
	return st
}

// newPlot is a plot with the figure's fonts and thin axes; xLabel and
// yLabel carry units.
func (st *style) newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil // the figure is filled once
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = st.label.Font
		a.Label.Padding = vg.Points(2)
		a.Tick.Label.Font = st.tick.Font
		a.LineStyle.Width = st.axis
		a.Tick.LineStyle.Width = st.axis
		a.Tick.Length = st.tickLen
		a.Padding = 0
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Tick.Marker = niceTicks{n: st.xTicks()}
	p.Y.Tick.Marker = niceTicks{n: 4}
	return p
}

// xTicks is how many labelled ticks a full-width horizontal axis wants.
func (st *style) xTicks() int {
	if st.width == Double {
		return 10
	}
	return 6
}

// niceTicks puts about n labelled ticks at 1, 2 or 5 x 10^k steps, with
// unlabelled minor ticks between them.
type niceTicks struct{ n int }

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: formatTick(lo, 0)}}
	}
	step, minor := niceStep((hi - lo) / float64(max(t.n, 2)))
	dec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ticks []plot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	for v := first; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: formatTick(v, dec)})
	}
	for v := math.Ceil(lo/minor-1e-9) * minor; v <= hi+minor*1e-9; v += minor {
		r := math.Round(v/step) * step
		if math.Abs(v-r) > minor*1e-6 {
			ticks = append(ticks, plot.Tick{Value: v})
		}
	}
	return ticks
}

// niceStep is the 1, 2 or 5 x 10^k step at least raw, with its minor step.
func niceStep(raw float64) (step, minor float64) {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []struct{ major, minor float64 }{{1, 0.2}, {2, 0.5}, {5, 1}, {10, 2}} {
		if m.major*mag >= raw*(1-1e-9) {
			return m.major * mag, m.minor * mag
		}
	}
	return 10 * mag, 2 * mag
}

func formatTick(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

// axisScale maps values onto an axis: as they are, or their log10 for a
// log axis. A log axis is drawn as a linear axis of log10 values because
// gonum/plot places the box of a log axis's label at the linear midpoint
// of the range, which pads the plot by as much as the label is long.
type axisScale struct{ log bool }

func (s axisScale) f(v float64) float64 {
	if s.log {
		return math.Log10(v)
	}
	return v
}

func (s axisScale) iv(v interval) interval { return interval{s.f(v.est), s.f(v.lo), s.f(v.hi)} }

// set gives a the value range [lo, hi] and, for a log axis, log ticks.
func (s axisScale) set(a *plot.Axis, lo, hi float64) {
	a.Min, a.Max = s.f(lo), s.f(hi)
	if s.log {
		a.Tick.Marker = logTicks{}
	}
}

// logTicks marks a log10 axis: labels at 1, 2 and 5 x 10^k when it
// spans less than three decades, at the powers of ten on a wider one.
type logTicks struct{}

func (logTicks) Ticks(llo, lhi float64) []plot.Tick {
	lo, hi := math.Pow(10, llo), math.Pow(10, lhi)
	var ticks []plot.Tick
	wide := lhi-llo > 3
	for e := math.Floor(llo); e <= math.Ceil(lhi); e++ {
		p := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * p
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: math.Log10(v)}
			if m == 1 || (!wide && (m == 2 || m == 5)) {
				t.Label = formatTick(v, max(0, -int(e)))
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// hideTickLabels keeps an axis's tick marks, major and minor, and
// hides their labels: the upper panels of a shared time axis. A major
// tick is one with a label, so the labels become blanks in a font too
// small to take room.
func hideTickLabels(a *plot.Axis) {
	a.Tick.Marker = blankLabels{a.Tick.Marker}
	a.Tick.Label.Font.Size = vg.Points(0.01)
	a.Label.Text = ""
}

type blankLabels struct{ plot.Ticker }

func (t blankLabels) Ticks(lo, hi float64) []plot.Tick {
	ts := t.Ticker.Ticks(lo, hi)
	out := make([]plot.Tick, len(ts))
	for i, tk := range ts {
		out[i] = plot.Tick{Value: tk.Value}
		if tk.Label != "" {
			out[i].Label = " "
		}
	}
	return out
}
