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
	"github.com/llem/llem/trace"
)

type traceRead = trace.EnergyRead

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
	xmax := r.sec(d.End)
	lg := &legend{st: st}

	power := st.newPlot("", "Power (W)")
	if n := len(d.GPUs); n > 1 {
		power.Y.Label.Text = fmt.Sprintf("Power, %d GPUs (W)", n)
	}
	temp := st.newPlot("", "Temp. (°C)")
	clock := st.newPlot("Time (s)", "SM clock (MHz)")
	panels := []*plot.Plot{power, temp, clock}
	for _, p := range panels {
		p.X.Min, p.X.Max = 0, xmax
	}
	hideTickLabels(&power.X)
	hideTickLabels(&temp.X)
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
		{ps.instant, "instant power", draw.LineStyle{Color: blue, Width: st.line * 0.7}},
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
	for _, e := range d.Events {
		if e.Kind == "request_start" {
			starts = append(starts, r.sec(e.TimestampNs))
		}
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
		temp.Add(line(seriesXY(r, g.Temperature), ls, plotter.NoStep))
		clock.Add(line(seriesXY(r, g.SMClock), ls, plotter.NoStep))
	}
	padRange(&temp.Y, 1)
	padRange(&clock.Y, 50)

	height := heightFor(3.0)
	if st.width == Double {
		height = heightFor(3.6)
	}
	weights := []float64{2.4, 1, 1}
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

func seriesXY(r *Run, s analyze.Series) xy {
	p := xy{x: make([]float64, len(s.T)), y: slices.Clone(s.V)}
	for i, t := range s.T {
		p.x[i] = r.sec(t)
	}
	return p
}

// powerTraces are the power series of a timeline, summed over GPUs.
type powerTraces struct {
	driver, instant, average xy
	counter                  []xy // steps, one per stretch without a counter reset
	driverText, counterText  string
}

// powerSeries: one GPU's samples as they are; several GPUs' summed in
// bins of each field's update period (driver 20 ms, instant and average
// 100 ms). The counter's power is the energy between reads over the time
// between them, as steps; reads closer than 0.5 s to the last one kept
// (the recorder's boundary reads, a few ms apart) are merged into the
// next interval, since the counter itself updates only every ~100 ms.
func powerSeries(r *Run) powerTraces {
	d := r.Data
	var pt powerTraces
	period := float64(r.Result.Sensor.DriverPowerUpdatePeriodMs)
	pt.driverText = "driver samples"
	if finite(period) && period > 0 {
		pt.driverText = fmt.Sprintf("driver, %.0f Hz", 1000/period)
	}
	if len(d.GPUs) == 1 {
		g := d.GPUs[0]
		pt.driver, pt.instant, pt.average = seriesXY(r, g.DriverPower), seriesXY(r, g.InstantPower), seriesXY(r, g.AveragePower)
	} else {
		pt.driver = summedBins(r, func(g *analyze.GPU) analyze.Series { return g.DriverPower }, 20e6)
		pt.instant = summedBins(r, func(g *analyze.GPU) analyze.Series { return g.InstantPower }, 100e6)
		pt.average = summedBins(r, func(g *analyze.GPU) analyze.Series { return g.AveragePower }, 100e6)
	}

	// The grid: GPU 0's reads, at least 0.5 s apart.
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
	var cur xy
	var steps []float64
	flush := func() {
		if len(cur.x) > 1 {
			pt.counter = append(pt.counter, cur)
		}
		cur = xy{}
	}
	for i := 1; i < len(grid); i++ {
		a, b := grid[i-1], grid[i]
		var e float64
		ok := true
		for _, g := range d.GPUs {
			ge, gok := counterEnergy(g.Energy, a, b)
			e += ge
			ok = ok && gok
		}
		if !ok {
			flush()
			continue
		}
		p := e / (float64(b-a) / 1e9)
		if len(cur.x) > 0 {
			cur.x, cur.y = cur.x[:len(cur.x)-1], cur.y[:len(cur.y)-1] // the closing point
		}
		cur.add(r.sec(a), p)
		cur.add(r.sec(b), p)
		steps = append(steps, float64(b-a)/1e9)
	}
	flush()
	if len(steps) > 0 {
		slices.Sort(steps)
		pt.counterText = fmt.Sprintf("counter, %s s steps", formatTick(steps[len(steps)/2], 1))
		if math.Abs(steps[len(steps)/2]-math.Round(steps[len(steps)/2])) < 0.05 {
			pt.counterText = fmt.Sprintf("counter, %.0f s steps", steps[len(steps)/2])
		}
	}
	return pt
}

// counterEnergy is the energy (J) a GPU's counter reads between a and b,
// linear between reads; false where the reads do not cover [a, b] or the
// counter went backwards (a driver reload) inside it.
func counterEnergy(reads []traceRead, a, b int64) (float64, bool) {
	// at is the counter at t, the index of the first read at or after t,
	// and whether t is a read's own stamp.
	at := func(t int64) (float64, int, bool, bool) {
		k, _ := slices.BinarySearchFunc(reads, t, func(e traceRead, t int64) int {
			switch {
			case e.TimestampNs < t:
				return -1
			case e.TimestampNs > t:
				return 1
			}
			return 0
		})
		if k < len(reads) && reads[k].TimestampNs == t {
			return float64(reads[k].EnergyMj), k, true, true
		}
		if k == 0 || k == len(reads) {
			return 0, k, false, false
		}
		p, q := reads[k-1], reads[k]
		f := float64(t-p.TimestampNs) / float64(q.TimestampNs-p.TimestampNs)
		return float64(p.EnergyMj) + f*float64(q.EnergyMj-p.EnergyMj), k, false, true
	}
	ea, ka, exact, okA := at(a)
	eb, kb, _, okB := at(b)
	if !okA || !okB {
		return 0, false
	}
	// Every step between reads that [a, b] touches must go forwards.
	first := ka
	if exact {
		first = ka + 1
	}
	for k := first; k <= kb; k++ {
		if reads[k].EnergyMj < reads[k-1].EnergyMj {
			return 0, false
		}
	}
	return (eb - ea) / 1000, true
}

// summedBins is a field summed over GPUs in bins of binNs, at the bins'
// centres; bins some GPU does not cover are left out.
func summedBins(r *Run, field func(*analyze.GPU) analyze.Series, binNs int64) xy {
	d := r.Data
	var sum []float64
	for _, g := range d.GPUs {
		b := field(g).Bins(d.Origin, d.End, binNs)
		if sum == nil {
			sum = b
			continue
		}
		for i := range sum {
			sum[i] += b[i]
		}
	}
	var p xy
	for i, v := range sum {
		if finite(v) {
			p.add((float64(i)+0.5)*float64(binNs)/1e9, v)
		}
	}
	return p
}
