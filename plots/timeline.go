package plots

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/llem/llem/analyze"
)

// Phase shading: a tint per phase the recorder and the example clients
// mark, the measured phase (whatever its name) always green.
var phaseTints = []struct {
	name string
	fill colorT
}{
	{"idle", tint(grey, 0.28)},
	{"warmup", tint(orange, 0.35)},
	{"measured", tint(green, 0.28)},
	{"p0_hold", tint(skyBlue, 0.35)},
	{"cooldown", tint(yellow, 0.45)},
}

// otherTints shade the phases a client names otherwise, in order of
// first appearance.
var otherTints = []colorT{tint(purple, 0.3), tint(blue, 0.22), tint(vermilion, 0.25)}

// phaseClass is the legend entry a phase window falls under.
func phaseClass(w analyze.WindowResult) string {
	switch {
	case w.Measured:
		return "measured"
	case w.Name == "idle_before" || w.Name == "idle_after":
		return "idle"
	}
	return w.Name
}

// phaseText is how the legend names a class.
func phaseText(class string, measuredName string) string {
	switch class {
	case "measured":
		if measuredName == "measure" {
			return measuredName
		}
		return measuredName + " (measured)"
	case "p0_hold":
		return "P0 hold"
	}
	return class
}

// timeline draws one run: power from every source, temperature and SM
// clock, sharing the time axis.
func timeline(st *style, r *Run) (*Figure, error) {
	d, rr := r.Data, r.Result
	if len(d.GPUs) == 0 {
		return nil, fmt.Errorf("timeline: %s has no GPU samples", r.Dir)
	}
	xmax := float64(d.End-d.Origin) / 1e9
	lg := &legend{st: st}

	power := st.newPlot("", "Power (W)")
	if n := len(d.GPUs); n > 1 {
		power.Y.Label.Text = fmt.Sprintf("Power, %d GPUs (W)", n)
	}
	hasTemp, hasClock := sidePanels(d)
	temp := st.newPlot("", "Temp. (°C)")
	clock := st.newPlot("", "SM clock (MHz)")
	panels, weights := []*plot.Plot{power}, []float64{2.4}
	if hasTemp {
		panels, weights = append(panels, temp), append(weights, 1)
	}
	if hasClock {
		panels, weights = append(panels, clock), append(weights, 1)
	}
	for i, p := range panels {
		p.X.Min, p.X.Max = 0, xmax
		if i < len(panels)-1 {
			hideTickLabels(&p.X)
		} else {
			p.X.Label.Text = "Time (s)"
		}
	}
	power.Y.Tick.Marker = niceTicks{n: 5}
	temp.Y.Tick.Marker = niceTicks{n: 3}
	clock.Y.Tick.Marker = niceTicks{n: 2}

	// Phases and measured cycles, shaded in every panel.
	var shades xSpans
	classes := map[string]colorT{}
	var classOrder []string
	measuredName := ""
	others := 0
	for _, w := range rr.Windows {
		if !(w.Kind == analyze.KindPhase || (w.Kind == analyze.KindCycle && w.Measured) || w.Kind == analyze.KindUser) {
			continue
		}
		cl := phaseClass(w)
		if w.Measured && measuredName == "" {
			measuredName = w.Name
			if w.Kind == analyze.KindCycle {
				measuredName = "cycle"
			}
		}
		fill, ok := classes[cl]
		if !ok {
			for _, pt := range phaseTints {
				if pt.name == cl {
					fill, ok = pt.fill, true
				}
			}
			if !ok {
				fill = otherTints[others%len(otherTints)]
				others++
			}
			classes[cl] = fill
			classOrder = append(classOrder, cl)
		}
		shades = append(shades, xSpan{w.StartS, w.EndS, fill})
	}
	for _, p := range panels {
		p.Add(shades)
	}

	// Power, summed over GPUs.
	ps := powerSeries(r)
	peak := 0.0
	for _, s := range []xy{ps.driver, ps.instant, ps.average} {
		for _, v := range s.y {
			if finite(v) {
				peak = max(peak, v)
			}
		}
	}
	for _, s := range ps.counter {
		for _, v := range s.y {
			if finite(v) {
				peak = max(peak, v)
			}
		}
	}
	if rr.Baseline.P0 != nil {
		peak = max(peak, rr.Baseline.P0.MedianW.Estimate)
	}
	power.Y.Min, power.Y.Max = 0, max(peak, 1)

	// Baselines first, under the traces.
	base := func(b *analyze.Baseline, name string, ls draw.LineStyle) {
		if b == nil || !finite(b.MedianW.Estimate) {
			return
		}
		power.Add(hLine{b.MedianW.Estimate, ls})
		lg.add(fmt.Sprintf("%s baseline %.1f W", name, b.MedianW.Estimate), lineThumb(ls))
	}
	dash := []vg.Length{vg.Points(3), vg.Points(1.5)}
	base(rr.Baseline.Idle, "idle", draw.LineStyle{Color: purple, Width: st.line, Dashes: dash})
	base(rr.Baseline.P0, "P0", draw.LineStyle{Color: green, Width: st.line, Dashes: dash})

	traces := []struct {
		s    xy
		text string
		ls   draw.LineStyle
	}{
		{ps.driver, ps.driverText, draw.LineStyle{Color: grey, Width: st.thin}},
		{ps.instant, ps.instantText, draw.LineStyle{Color: blue, Width: st.line * 0.7}},
		{ps.average, "1 s average", draw.LineStyle{Color: vermilion, Width: st.line}},
	}
	// The legend lists the traces first. The counter's steps go under
	// the 1 s average, which they would hide.
	traceEntries := legend{st: st}
	counterLS := draw.LineStyle{Color: black, Width: st.line}
	for i, t := range traces {
		if i == 2 {
			for _, s := range ps.counter {
				power.Add(line(s, counterLS, plotter.PostStep))
			}
		}
		if len(t.s.x) == 0 {
			continue
		}
		power.Add(line(t.s, t.ls, plotter.NoStep))
		traceEntries.add(t.text, lineThumb(t.ls))
	}
	if len(ps.counter) > 0 {
		traceEntries.add(ps.counterText, lineThumb(counterLS))
	}
	lg.entries = append(traceEntries.entries, lg.entries...)

	// Cycles bracketed along the top, the steady windows below them.
	var br topBracket
	br.sty, br.ls = st.small, draw.LineStyle{Color: black, Width: st.axis}
	for _, w := range rr.Windows {
		if w.Kind == analyze.KindCycle {
			br.spans = append(br.spans, [2]float64{w.StartS, w.EndS})
			br.labels = append(br.labels, []string{fmt.Sprintf("cycle %d", w.Cycle), fmt.Sprintf("c%d", w.Cycle), fmt.Sprint(w.Cycle)})
		}
	}
	band := vg.Points(3)
	if len(br.spans) > 0 {
		power.Add(br)
		band += br.height()
	}
	var steady topBars
	for _, w := range rr.Windows {
		if w.Kind == analyze.KindSteady {
			steady.spans = append(steady.spans, [2]float64{w.StartS, w.EndS})
		}
	}
	if len(steady.spans) > 0 {
		steady.ls = draw.LineStyle{Color: black, Width: vg.Points(2)}
		steady.below = band + vg.Points(1)
		band += vg.Points(4)
		power.Add(steady)
		lg.add("steady state", lineThumb(steady.ls))
	}

	// Request starts, thinned to one tick per 1.5 pt of a full-width axis.
	var starts []float64
	for _, t := range d.RequestStarts() {
		starts = append(starts, float64(t-d.Origin)/1e9)
	}
	if len(starts) > 0 {
		every := thinning(len(starts), st)
		var kept []float64
		for i := 0; i < len(starts); i += every {
			kept = append(kept, starts[i])
		}
		ls := draw.LineStyle{Color: black, Width: vg.Points(0.4)}
		power.Add(rug{kept, vg.Points(5), ls})
		text := "request starts"
		if every > 1 {
			text = fmt.Sprintf("every %s request start", ordinal(every))
		}
		lg.add(text, func(c draw.Canvas) {
			for i := 0; i < 4; i++ {
				x := c.Min.X + (c.Max.X-c.Min.X)*vg.Length(i+1)/5
				c.StrokeLine2(ls, x, c.Min.Y, x, c.Max.Y)
			}
		})
	}
	for _, cl := range classOrder {
		lg.add(phaseText(cl, measuredName), swatchThumb(classes[cl], nil))
	}

	// Temperature and SM clock, a line per GPU.
	multi := len(d.GPUs) > 1
	for i, g := range d.GPUs {
		ls := draw.LineStyle{Color: black, Width: st.line * 0.8}
		if multi {
			ls = gpuStyle(i, st.line*0.8)
			lg.add(fmt.Sprintf("GPU %d", g.Index), lineThumb(ls))
		}
		temp.Add(line(seriesXY(d, g.Temperature.All()), ls, plotter.NoStep))
		clock.Add(line(seriesXY(d, g.SMClock.All()), ls, plotter.NoStep))
	}
	padRange(&temp.Y, 1)
	padRange(&clock.Y, 50)

	// 3.0 in (3.6 in double width) with all three panels; less without.
	height := heightFor(1.8 + 0.4*float64(len(panels)))
	if st.width == Double {
		height = heightFor(2.4 + 0.4*float64(len(panels)))
	}
	f := compose(st, Timeline, lg, height, func(c draw.Canvas) {
		// Leave the top band of the power panel to the brackets and bars.
		cs := column(c, panels, weights, st.gap)
		dc := power.DataCanvas(cs[0])
		h := dc.Max.Y - dc.Min.Y
		if h > band {
			power.Y.Max = power.Y.Min + (peak-power.Y.Min)*float64(h/(h-band))
		}
		cs = column(c, panels, weights, st.gap)
		for i, p := range panels {
			p.Draw(cs[i])
		}
	})
	return f, nil
}

// sidePanels says whether the timeline gets its temperature and clock
// panels: only for runs that have such samples (a wall meter or a lean
// nvidia-smi import has neither).
func sidePanels(d *analyze.Data) (temp, clock bool) {
	for _, g := range d.GPUs {
		temp = temp || g.Temperature.Len() > 0
		clock = clock || g.SMClock.Len() > 0
	}
	return temp, clock
}

// gpuStyle is the line of the i-th GPU in the temperature and clock
// panels: colours the power panel does not use, then dashed.
func gpuStyle(i int, w vg.Length) draw.LineStyle {
	cs := []colorT{black, green, purple, orange, skyBlue}
	ls := draw.LineStyle{Color: cs[i%len(cs)], Width: w}
	if i >= len(cs) {
		ls.Dashes = []vg.Length{vg.Points(2.5), vg.Points(1.2)}
	}
	return ls
}

// padRange widens an axis's data range by at least pad on each side and
// by 8% of the span.
func padRange(a *plot.Axis, pad float64) {
	if math.IsInf(a.Min, 0) || math.IsInf(a.Max, 0) {
		a.Min, a.Max = 0, 1
		return
	}
	m := max(pad, (a.Max-a.Min)*0.08)
	a.Min -= m
	a.Max += m
}

// thinning is the k of "every k-th" that leaves at most one tick per
// 1.5 pt of the time axis.
func thinning(n int, st *style) int {
	room := float64((st.w - vg.Points(50)) / vg.Points(1.5))
	return max(1, int(math.Ceil(float64(n)/room)))
}

func ordinal(k int) string {
	suf := "th"
	switch {
	case k%100 >= 11 && k%100 <= 13:
	case k%10 == 1:
		suf = "st"
	case k%10 == 2:
		suf = "nd"
	case k%10 == 3:
		suf = "rd"
	}
	return fmt.Sprintf("%d%s", k, suf)
}

// seriesXY is a raw series against seconds from the run's first sample.
func seriesXY(d *analyze.Data, s analyze.Series) xy {
	p := xy{x: make([]float64, len(s.T)), y: slices.Clone(s.V)}
	for i, t := range s.T {
		p.x[i] = float64(t-d.Origin) / 1e9
	}
	return p
}

// powerTraces are analyze's power series of a timeline, with their legend
// texts.
type powerTraces struct {
	driver, instant, average xy
	counter                  []xy // steps, one per stretch without a counter reset
	driverText, counterText  string
	instantText              string
}

func powerSeries(r *Run) powerTraces {
	p := r.PowerTraces()
	pt := powerTraces{driver: xyOf(p.Driver), instant: xyOf(p.Instant), average: xyOf(p.Average), driverText: "driver samples",
		instantText: p.InstantName}
	for _, c := range p.Counter {
		pt.counter = append(pt.counter, xyOf(c))
	}
	if finite(p.DriverPeriodMs) && p.DriverPeriodMs > 0 {
		pt.driverText = fmt.Sprintf("driver, %.0f Hz", 1000/p.DriverPeriodMs)
	}
	if step := p.CounterStepS; finite(step) {
		pt.counterText = fmt.Sprintf("counter, %s s steps", formatTick(step, 1))
		if math.Abs(step-math.Round(step)) < 0.05 {
			pt.counterText = fmt.Sprintf("counter, %.0f s steps", step)
		}
	}
	return pt
}
