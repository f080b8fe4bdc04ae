// Package htmlreport writes `llem report`: one self-contained HTML page
// for a run or a sweep of runs. The page holds the summary table of each
// run (its windows, energy per output token first), the cycle statistics
// with their confidence intervals, baselines, latency and steady state,
// the warnings, the figures of package plots inline as SVG, and the
// environment snapshot of meta.json.
//
// The page loads nothing: no script, no stylesheet, no font and no image
// from anywhere; the CSS is inline and the figures are SVG with their text
// drawn as outlines. The same runs and settings give byte-identical pages:
// nothing depends on the time, the machine or map order.
package htmlreport

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
	"github.com/llem/llem/plots"
	"github.com/llem/llem/trace"
)

//go:embed page.html.tmpl
var pageTemplate string

var page = template.Must(template.New("page").Parse(pageTemplate))

// Write renders the page of runs (analysed by analyze.Open with settings
// s) to w. version is the llem that writes the page.
func Write(w io.Writer, runs []*analyze.Run, s analyze.Settings, version string) error {
	if len(runs) == 0 {
		return fmt.Errorf("no run given")
	}
	v := view{
		Version:      version,
		SettingsHash: s.Hash(),
		Settings: fmt.Sprintf("BCa %d resamples, %g%% confidence, seed %d; steady state by %s; measured phase %q",
			s.Resamples, s.Confidence*100, s.Seed, s.Steady, s.MeasurePhase),
		Several: len(runs) > 1,
	}
	if len(runs) == 1 {
		v.Title = "llem report: " + runs[0].Label
	} else {
		v.Title = fmt.Sprintf("llem report: %d runs", len(runs))
	}
	for i, r := range runs {
		rv := runView(r)
		rv.Anchor = fmt.Sprintf("run-%d", i+1)
		fig, err := figure(plots.Timeline, []*analyze.Run{r})
		rv.Timeline = fig
		if err != nil {
			rv.Timeline = figView{Kind: string(plots.Timeline), Missing: err.Error()}
		}
		v.Runs = append(v.Runs, rv)
		v.Compare = append(v.Compare, compareRow(rv, r))
	}
	if len(runs) > 1 {
		for _, k := range []plots.Kind{plots.Efficiency, plots.Pareto, plots.Latency, plots.Power} {
			fig, err := figure(k, runs)
			if err != nil {
				fig = figView{Kind: string(k), Missing: err.Error()}
			}
			v.Figures = append(v.Figures, fig)
		}
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

type view struct {
	Title, Version, SettingsHash, Settings string
	Several                                bool
	Runs                                   []runV
	Compare                                []compareV
	Figures                                []figView
}

type figView struct {
	Kind    string
	Caption string
	SVG     template.HTML
	Notes   []string
	Missing string // why the figure is not drawn
}

var captions = map[plots.Kind]string{
	plots.Timeline:   "Power from every source (the driver's samples, instant power, the 1 s average, the energy counter's steps), temperature and SM clock; phases and cycles shaded, the steady window, the idle and P0 baselines and request starts marked.",
	plots.Latency:    "Cumulative distributions of time to first token and inter-token latency over the measured windows' requests.",
	plots.Efficiency: "Energy per output token and output tokens per second of each run, with 95% intervals over cycles where there are enough cycles (Student-t below 20 cycles, else BCa).",
	plots.Pareto:     "Energy per output token against throughput; the Pareto front joined.",
	plots.Power:      "Distribution (ECDF) of the power samples in each run's steady window.",
}

// figure draws kind as inline SVG.
func figure(k plots.Kind, runs []*analyze.Run) (figView, error) {
	f, err := plots.Draw(k, runs, plots.Double)
	if err != nil {
		return figView{}, err
	}
	var buf bytes.Buffer
	if err := f.Render(&buf, plots.SVG, 0); err != nil {
		return figView{}, err
	}
	return figView{Kind: string(k), Caption: captions[k], SVG: template.HTML(inlineSVG(buf.String())), Notes: f.Notes}, nil
}

var (
	xmlDecl   = regexp.MustCompile(`(?s)<\?xml.*?\?>\s*`)
	xmlCmt    = regexp.MustCompile(`(?s)<!--.*?-->\s*`)
	xmlnsAttr = regexp.MustCompile(`\s+xmlns(:\w+)?="[^"]*"`)
	svgOpen   = regexp.MustCompile(`(?s)<svg\b[^>]*>`)
)

// inlineSVG makes a standalone SVG document an element of the HTML page:
// no XML declaration or comments, and no namespace attributes (the HTML
// parser puts <svg> in the SVG namespace itself), so the page names no
// URL at all. The figure scales to the width of the page (CSS).
func inlineSVG(s string) string {
	s = xmlDecl.ReplaceAllString(s, "")
	s = xmlCmt.ReplaceAllString(s, "")
	if loc := svgOpen.FindStringIndex(s); loc != nil {
		open := xmlnsAttr.ReplaceAllString(s[loc[0]:loc[1]], "")
		open = strings.Replace(open, "<svg", `<svg role="img"`, 1)
		s = s[:loc[0]] + open + s[loc[1]:]
	}
	return strings.TrimSpace(s)
}

type runV struct {
	Anchor, Label, Dir, RunID, Status, Device string
	Complete                                  bool
	Labels                                    string
	Headline                                  []kv // the key numbers, above the table
	Windows                                   []windowV
	Key                                       []kv // cycles, steady state, baselines
	Latency                                   []latencyV
	LatencyNote                               string
	Warnings                                  []warnV
	Timeline                                  figView
	Env                                       []kv
	GPUs                                      []gpuV
	Command                                   string
	Recorder                                  []kv
}

type kv struct{ K, V string }

type windowV struct {
	Name, Kind, Cycle                            string
	Measured                                     bool
	Start, Dur, EPT, Tokens, TPS, Energy, Integr string
	Diff, Mean, P95, Unc                         string
}

type latencyV struct{ Name, Mean, Median, P90, P99 string }

type warnV struct{ Code, Where, Message string }

type gpuV struct {
	Index                                        int
	Name, UUID, Driver, CUDA, Persistence, Limit string
	ECC, MIG, ComputeMode, Clocks, PState, Lost  string
}

type compareV struct {
	Anchor, Label, EPT, TPS, Energy, Cycles, Power, TTFT, TPOT string
	Warnings                                                  int
}

func runView(r *analyze.Run) runV {
	res := r.Result
	m := r.Data.Run.Meta
	v := runV{Label: r.Label, Dir: r.Dir, RunID: res.RunID, Status: res.Status, Device: res.Device, Complete: res.Complete}
	v.Labels = labels(res.Labels)
	for _, w := range res.Windows {
		v.Windows = append(v.Windows, windowV{
			Name: w.Name, Kind: w.Kind, Cycle: cycle(w.Cycle), Measured: w.Measured,
			Start: fix(w.StartS, 1), Dur: fix(w.DurationS, 1),
			EPT: num(w.EnergyPerOutputTokenJ, 4), Tokens: num(w.OutputTokens, 0), TPS: num(w.OutputTokensPerS, 1),
			Energy: num(w.EnergyJ, 1), Integr: num(w.EnergyIntegratedJ, 1), Diff: signed(w.DisagreementPct, 2),
			Mean: num(w.MeanPowerW, 1), P95: num(w.P95PowerW, 1), Unc: num(w.UncertaintyPct, 2),
		})
	}

	v.Headline = headline(r)
	if c := res.Cycles; c != nil {
		if c.EnergyPerOutputTokenJ != nil {
			v.Key = append(v.Key, kv{"Energy per output token over cycles", ci(*c.EnergyPerOutputTokenJ, 5, "J")})
		}
		if c.EnergyJ != nil {
			v.Key = append(v.Key, kv{"Energy of a cycle's measured window", ci(*c.EnergyJ, 1, "J")})
		}
		val := fmt.Sprintf("%d", c.N)
		if c.Note != "" {
			val += "; " + c.Note
		}
		v.Key = append(v.Key, kv{"Cycles", val})
	} else {
		v.Key = append(v.Key, kv{"Cycles", "none (a single measurement: no interval over cycles)"})
	}
	if st := res.SteadyState; st != nil {
		val := fmt.Sprintf("%s by %s in %s", st.Class, st.Method, st.Window)
		if st.Cycle > 0 && !strings.HasPrefix(st.Window, "cycle ") {
			val += fmt.Sprintf(", cycle %d", st.Cycle)
		}
		if st.StartS.Valid() {
			val += fmt.Sprintf(": from %.1f s to %.1f s", float64(st.StartS), float64(st.EndS))
		}
		if st.Events != nil {
			val += fmt.Sprintf("; ML.ENERGY window %.1f–%.1f s (concurrency %d)", st.Events.StartS, st.Events.EndS, st.Events.Concurrency)
		}
		if st.Note != "" {
			val += "; " + st.Note
		}
		v.Key = append(v.Key, kv{"Steady state", val})
	} else {
		v.Key = append(v.Key, kv{"Steady state", "none found"})
	}
	for _, b := range []struct {
		name string
		b    *analyze.Baseline
	}{{"Idle baseline", res.Baseline.Idle}, {"P0 (loaded idle) baseline", res.Baseline.P0}} {
		if b.b == nil {
			v.Key = append(v.Key, kv{b.name, "none found"})
			continue
		}
		v.Key = append(v.Key, kv{b.name, fmt.Sprintf("%s median (%s, %.1f s)", ci(b.b.MedianW, 1, "W"), b.b.Source, b.b.DurationS)})
	}
	v.Key = append(v.Key, kv{"Requests", fmt.Sprintf("%d", res.Requests.Total)})
	v.Key = append(v.Key, kv{"Sensor update period", fmt.Sprintf("instant power %s ms, driver buffer %s ms, 1 s average %s ms",
		num(res.Sensor.InstantPowerUpdatePeriodMs, 1), num(res.Sensor.DriverPowerUpdatePeriodMs, 1), num(res.Sensor.AveragePowerUpdatePeriodMs, 1))})
	for _, th := range res.Thermal {
		for _, g := range th.GPUs {
			val := fmt.Sprintf("%s..%s °C seen, %s °C/min, change %s °C (%s), SM clock %s..%s MHz", num(g.TempMinC, 0), num(g.TempMaxC, 0),
				signed(g.TempSlopeCPerMin, 2), signed(g.TempChangeC, 1), analyze.TempVerdict(g), num(g.SMClockMinMHz, 0), num(g.SMClockMaxMHz, 0))
			if th.PowerTrend != nil && len(th.GPUs) == 1 {
				val += fmt.Sprintf(", power drift %+.2f%% (Mann-Kendall p %.2g)", th.PowerTrend.DriftPct, th.PowerTrend.MKP)
				if th.PowerDriftCause != "" {
					val += ", " + th.PowerDriftCause
				}
			}
			name := "Thermal, " + th.Window
			if th.Cycle > 0 && !strings.HasPrefix(th.Window, "cycle ") {
				name += fmt.Sprintf(" (cycle %d)", th.Cycle)
			}
			v.Key = append(v.Key, kv{fmt.Sprintf("%s, GPU %d", name, g.GPU), val})
		}
	}

	if l := res.Latency; l != nil {
		v.LatencyNote = fmt.Sprintf("%d requests in the measured windows; the mean with its %g%% interval (BCa from %d requests, Student-t below; clock: %s).", l.Requests, r.Settings.Confidence*100, r.Settings.BCaMinN, l.Clock)
		for _, m := range []struct {
			name string
			m    *analyze.LatencyMetric
		}{{"Time to first token (TTFT)", l.TTFT}, {"Time per output token (TPOT)", l.TPOT}, {"Inter-token latency, every gap (ITL)", l.ITL}, {"End to end (E2E)", l.E2E}} {
			if m.m == nil {
				continue
			}
			v.Latency = append(v.Latency, latencyV{m.name, ci(m.m.Mean, 4, ""), num(m.m.Median, 4), num(m.m.P90, 4), num(m.m.P99, 4)})
		}
	}

	// The run's warnings hold its windows' too; a window's own list
	// adds those the run's leaves out. Each is listed once.
	seen := map[warnV]bool{}
	addWarn := func(w warnV) {
		if !seen[w] {
			seen[w] = true
			v.Warnings = append(v.Warnings, w)
		}
	}
	for _, w := range res.Warnings {
		addWarn(warnV{w.Code, where(w), w.Message})
	}
	for _, wr := range res.Windows {
		for _, w := range wr.Warnings {
			if w.Window == "" {
				w.Window = wr.Name
			}
			addWarn(warnV{w.Code, where(w), w.Message})
		}
	}
	for _, p := range res.Requests.Problems {
		addWarn(warnV{"request_problem", "", p})
	}

	// The environment snapshot.
	h := m.Host
	gov := h.CPUGovernor
	if gov == "" {
		gov = "unknown (the kernel exposes none)"
	}
	container := "no"
	if h.InContainer {
		container = "yes"
		if h.ContainerHint != "" {
			container += " (" + h.ContainerHint + ")"
		}
	}
	v.Env = []kv{
		{"Host", h.Hostname},
		{"OS / kernel", strings.TrimSpace(h.OS + " / " + h.Kernel + " (" + h.Arch + ")")},
		{"CPU", fmt.Sprintf("%s, %d CPUs", h.CPUModel, h.NumCPU)},
		{"CPU governor", gov},
		{"Container", container},
		{"Device", m.Device},
		{"Recorded by llem", m.LlemVersion},
		{"Trace schema", m.SchemaVersion},
		{"Run ID", m.RunID},
		{"Analysed with settings", r.Settings.Hash()},
	}
	if m.Clock.DriftNs != 0 {
		v.Env = append(v.Env, kv{"Wall-clock drift over the run", fmt.Sprintf("%d ns", m.Clock.DriftNs)})
	}
	if m.Source != nil {
		v.Env = append(v.Env, kv{"Source", m.Source.Format})
	}
	for _, g := range m.GPUs {
		v.GPUs = append(v.GPUs, gpuOf(g))
	}
	if c := m.Command; c != nil {
		v.Command = shellJoin(c.Argv)
		if c.WorkDir != "" {
			v.Recorder = append(v.Recorder, kv{"Working directory", c.WorkDir})
		}
		if c.ExitCode != nil {
			v.Recorder = append(v.Recorder, kv{"Exit code", strconv.Itoa(*c.ExitCode)})
		}
		if c.ExitSignal != "" {
			v.Recorder = append(v.Recorder, kv{"Exit signal", c.ExitSignal})
		}
	}
	st := m.Settings
	rec := fmt.Sprintf("energy every %g ms, driver power every %g ms, state every %g ms; idle %g s before, %g s after",
		st.EnergyIntervalMs, st.DriverPowerIntervalMs, st.StateIntervalMs, st.IdleBeforeMs/1000, st.IdleAfterMs/1000)
	if st.Cycles > 0 {
		rec += fmt.Sprintf("; %d cycles, %g s cool-down", st.Cycles, st.CooldownMs/1000)
	}
	if st.Seed != nil {
		rec += fmt.Sprintf("; seed %d", *st.Seed)
	}
	v.Recorder = append(v.Recorder, kv{"Recorder settings", rec})
	v.Recorder = append(v.Recorder, kv{"Recorder cost", fmt.Sprintf("%.1f%% of one core over %.1f s", m.Recorder.CPUPercent, m.Recorder.WallSeconds)})
	v.Recorder = append(v.Recorder, kv{"Client events", fmt.Sprintf("%d received, %d accepted, %d bad, %d dropped",
		m.Events.Received, m.Events.Accepted, m.Events.Bad, m.Events.Dropped)})
	return v
}

func gpuOf(g trace.GPUInfo) gpuV {
	yn := func(b *bool) string {
		switch {
		case b == nil:
			return "not reported"
		case *b:
			return "on"
		}
		return "off"
	}
	v := gpuV{Index: g.Index, Name: g.Name, UUID: g.UUID, Driver: orDash(g.DriverVersion), CUDA: orDash(g.CUDAVersion),
		Persistence: yn(g.PersistenceMode), ECC: yn(g.ECCEnabled), MIG: yn(g.MIGEnabled), ComputeMode: orDash(g.ComputeMode)}
	v.Limit = "not reported"
	if g.PowerLimitMw != nil {
		v.Limit = fmt.Sprintf("%g W", float64(*g.PowerLimitMw)/1000)
		if g.DefaultPowerLimitMw != nil {
			if *g.DefaultPowerLimitMw == *g.PowerLimitMw {
				v.Limit += " (the default)"
			} else {
				v.Limit += fmt.Sprintf(" (default %g W)", float64(*g.DefaultPowerLimitMw)/1000)
			}
		}
	}
	clk := func(p *int32) string {
		if p == nil {
			return "-"
		}
		return strconv.Itoa(int(*p))
	}
	v.Clocks = fmt.Sprintf("SM %s, memory %s MHz", clk(g.MaxSMClockMHz), clk(g.MaxMemClockMHz))
	v.PState = "-"
	if g.PStateAtStart != nil {
		v.PState = fmt.Sprintf("P%d", *g.PStateAtStart)
	}
	if g.Lost {
		v.Lost = "lost during the run"
	}
	return v
}

// compareRow is a run's line of the sweep summary: its Efficiency
// (over cycles with the interval where there are enough, else its pooled
// measured windows, as the efficiency figure draws it), its measured
// windows' energy and mean power (Result.Measured), and its mean latency.
func compareRow(v runV, r *analyze.Run) compareV {
	res := r.Result
	c := compareV{Anchor: v.Anchor, Label: r.Label, Warnings: len(v.Warnings), EPT: "-", TPS: "-", Energy: "-", Cycles: "-", Power: "-", TTFT: "-", TPOT: "-"}
	if e, ok := r.Efficiency(); ok {
		c.EPT = estimate(e.EnergyPerOutputTokenJ, 5)
		c.TPS = estimate(e.OutputTokensPerS, 1)
		if e.Cycles > 0 {
			c.Cycles = strconv.Itoa(e.Cycles)
		}
	}
	if m := res.Measured; m != nil {
		c.Energy = num(m.EnergyJ, 1)
		c.Power = num(m.MeanPowerW, 1)
	}
	if l := res.Latency; l != nil {
		if l.TTFT != nil {
			c.TTFT = fix(l.TTFT.Mean.Estimate, 4)
		}
		if l.TPOT != nil {
			c.TPOT = fix(l.TPOT.Mean.Estimate, 4)
		}
	}
	return c
}

// estimate prints "value [low, high]", or the value alone without an
// interval.
func estimate(e analyze.Estimate, prec int) string {
	if math.IsNaN(e.Value) {
		return "-"
	}
	if math.IsNaN(e.Low) || math.IsNaN(e.High) {
		return strconv.FormatFloat(e.Value, 'f', prec, 64)
	}
	return fmt.Sprintf("%.*f [%.*f, %.*f]", prec, e.Value, prec, e.Low, prec, e.High)
}

// headline: energy per output token (over cycles with its interval, else
// pooled over the measured windows), throughput and mean power.
func headline(r *analyze.Run) []kv {
	c := compareRow(runV{}, r)
	var h []kv
	if e, ok := r.Efficiency(); ok && e.Cycles > 0 {
		h = append(h, kv{fmt.Sprintf("J / output token, mean of %d cycles [%g%% %s CI]", e.Cycles, r.Settings.Confidence*100, bootstrap.MethodName(e.Method)), c.EPT},
			kv{fmt.Sprintf("output tokens/s, mean of %d cycles", e.Cycles), c.TPS})
	} else {
		h = append(h, kv{"J / output token, measured windows", c.EPT}, kv{"output tokens/s", c.TPS})
	}
	h = append(h, kv{"mean power W", c.Power})
	if c.TTFT != "-" {
		h = append(h, kv{"mean TTFT s", c.TTFT})
	}
	return h
}

func where(w analyze.Warning) string {
	var parts []string
	if w.GPU != nil {
		parts = append(parts, fmt.Sprintf("GPU %d", *w.GPU))
	}
	if w.Window != "" {
		parts = append(parts, w.Window)
	}
	return strings.Join(parts, ", ")
}

func labels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kvs []string
	for _, k := range keys {
		kvs = append(kvs, k+"="+l[k])
	}
	return strings.Join(kvs, " ")
}

// shellJoin quotes argv as a POSIX shell would need it.
func shellJoin(argv []string) string {
	var out []string
	for _, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			out = append(out, a)
			continue
		}
		out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return strings.Join(out, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cycle(c int) string {
	if c == 0 {
		return "-"
	}
	return strconv.Itoa(c)
}

func fix(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func num(n analyze.Num, prec int) string { return fix(float64(n), prec) }

func signed(n analyze.Num, prec int) string {
	if !n.Valid() {
		return "-"
	}
	return fmt.Sprintf("%+.*f", prec, float64(n))
}

// ci is "estimate [low, high] unit", or the estimate and "(no CI)".
func ci(iv bootstrap.Interval, prec int, unit string) string {
	u := ""
	if unit != "" {
		u = " " + unit
	}
	if iv.Degenerate || math.IsNaN(iv.Low) || math.IsNaN(iv.High) {
		return fmt.Sprintf("%s%s (no CI)", fix(iv.Estimate, prec), u)
	}
	s := fmt.Sprintf("%s [%s, %s]%s", fix(iv.Estimate, prec), fix(iv.Low, prec), fix(iv.High, prec), u)
	if a := iv.Alternative; a != nil && iv.Method != bootstrap.MethodBCa {
		s += fmt.Sprintf(" (%s, n=%d", bootstrap.MethodName(iv.Method), iv.N)
		if !a.Degenerate && !math.IsNaN(a.Low) {
			s += fmt.Sprintf("; %s [%s, %s]", bootstrap.MethodName(a.Method), fix(a.Low, prec), fix(a.High, prec))
		}
		s += ")"
	}
	return s
}
