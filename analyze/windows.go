package analyze

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/llem/llem/trace"
)

// Window kinds.
const (
	KindRun          = "run"           // the whole recording
	KindPhase        = "phase"         // a phase_start/phase_end pair (recorder or client)
	KindCycle        = "cycle"         // one run of the command (the recorder's cycles)
	KindSteady       = "steady"        // the detected steady state of a measured window
	KindSteadyEvents = "steady_events" // the ML.ENERGY event-based window
	KindUser         = "user"          // a window the user asked for (setting windows)
)

// Window is a time span the analysis reports on.
type Window struct {
	Name    string
	Kind    string
	Cycle   int // the cycle the window lies in, 0 for none
	StartNs int64
	EndNs   int64
	// Measured marks the windows that are the measurement: thermal drift,
	// conditioning and cycle statistics are computed on them.
	Measured bool
	// Open is set for a phase or cycle that never ended (a killed run):
	// it is closed at the end of the recording.
	Open bool
}

// userWindow is a parsed --window value: a phase name, or seconds from
// the first sample.
type userWindow struct {
	phase      string
	start, end float64
}

func parseUserWindow(s string) (userWindow, error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		if strings.TrimSpace(s) == "" {
			return userWindow{}, fmt.Errorf("empty window: give a phase name or START..END in seconds")
		}
		return userWindow{phase: s}, nil
	}
	start, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	end, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil || math.IsNaN(start) || math.IsNaN(end) || math.IsInf(start, 0) || math.IsInf(end, 0) {
		return userWindow{}, fmt.Errorf("%q: START..END must be two numbers of seconds from the first sample, e.g. 30..90", s)
	}
	if start < 0 || end <= start {
		return userWindow{}, fmt.Errorf("%q: need 0 <= START < END", s)
	}
	return userWindow{start: start, end: end}, nil
}

// buildWindows derives every window of a run from its events (and
// meta.json's cycles when a run has no cycle events). The order is fixed:
// run, then cycles, phases and user windows by start time.
func buildWindows(d *Data, s Settings) ([]Window, []trace.Warning) {
	var warns []trace.Warning
	ws := []Window{{Name: "run", Kind: KindRun, StartNs: d.Origin, EndNs: d.End}}
	cycles := cycleWindows(d, &warns)
	cycleAt := func(t int64) int {
		for _, c := range cycles {
			if t >= c.StartNs && t <= c.EndNs {
				return c.Cycle
			}
		}
		return 0
	}
	phases := phaseWindows(d, cycleAt, &warns)
	users := userWindows(d, s, phases, cycleAt, &warns)
	rest := append(append(cycles, phases...), users...)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].StartNs < rest[j].StartNs })
	ws = append(ws, rest...)
	markMeasured(ws, s)
	return ws, warns
}

// cycleWindows are the recorder's cycles, from its cycle events (or
// meta.json's cycles), by start; a cycle that never ended is cut at the
// end of the trace.
func cycleWindows(d *Data, warns *[]trace.Warning) []Window {
	var cycles []Window
	openCycle := map[int32]int64{}
	for _, e := range d.Events {
		if e.Source != "recorder" || e.Cycle == nil {
			continue
		}
		switch e.Kind {
		case "cycle_start":
			openCycle[*e.Cycle] = e.TimestampNs
		case "cycle_end":
			if t, ok := openCycle[*e.Cycle]; ok {
				cycles = append(cycles, Window{Name: fmt.Sprintf("cycle %d", *e.Cycle), Kind: KindCycle,
					Cycle: int(*e.Cycle), StartNs: t, EndNs: e.TimestampNs})
				delete(openCycle, *e.Cycle)
			}
		}
	}
	openIDs := make([]int32, 0, len(openCycle))
	for c := range openCycle {
		openIDs = append(openIDs, c)
	}
	sort.Slice(openIDs, func(i, j int) bool { return openIDs[i] < openIDs[j] })
	for _, c := range openIDs {
		t := openCycle[c]
		cycles = append(cycles, Window{Name: fmt.Sprintf("cycle %d", c), Kind: KindCycle, Cycle: int(c),
			StartNs: t, EndNs: d.End, Open: true})
		*warns = append(*warns, trace.Warning{Code: "open_window",
			Message: fmt.Sprintf("cycle %d never ended (the recorder was stopped); it is cut at the end of the trace", c)})
	}
	if len(cycles) == 0 && d.Run.Meta.Command != nil {
		for _, c := range d.Run.Meta.Command.Cycles {
			cycles = append(cycles, Window{Name: fmt.Sprintf("cycle %d", c.Cycle), Kind: KindCycle, Cycle: c.Cycle,
				StartNs: c.StartNs, EndNs: c.EndNs})
		}
	}
	sort.SliceStable(cycles, func(i, j int) bool { return cycles[i].StartNs < cycles[j].StartNs })
	return cycles
}

// phaseWindows pairs phase_start and phase_end events by name; a nested
// or repeated name pairs with its latest unmatched start, and a phase that
// never ended is cut at the end of the trace.
func phaseWindows(d *Data, cycleAt func(int64) int, warns *[]trace.Warning) []Window {
	var phases []Window
	open := map[string][]int64{}
	var openOrder []string
	for _, e := range d.Events {
		switch e.Kind {
		case "phase_start":
			if len(open[e.Name]) == 0 {
				openOrder = append(openOrder, e.Name)
			}
			open[e.Name] = append(open[e.Name], e.TimestampNs)
		case "phase_end":
			st := open[e.Name]
			if len(st) == 0 {
				*warns = append(*warns, trace.Warning{Code: "unmatched_phase_end",
					Message: fmt.Sprintf("phase_end %q at %.3f s has no phase_start; ignored", e.Name, d.seconds(e.TimestampNs))})
				continue
			}
			t := st[len(st)-1]
			open[e.Name] = st[:len(st)-1]
			phases = append(phases, Window{Name: e.Name, Kind: KindPhase, Cycle: cycleAt(t), StartNs: t, EndNs: e.TimestampNs})
		}
	}
	for _, name := range openOrder {
		for _, t := range open[name] {
			phases = append(phases, Window{Name: name, Kind: KindPhase, Cycle: cycleAt(t), StartNs: t, EndNs: d.End, Open: true})
			*warns = append(*warns, trace.Warning{Code: "open_window",
				Message: fmt.Sprintf("phase %q started at %.3f s never ended; it is cut at the end of the trace", name, d.seconds(t))})
		}
	}
	return phases
}

// userWindows are the windows the settings ask for: spans in seconds
// from the first sample, and every occurrence of a named phase.
func userWindows(d *Data, s Settings, phases []Window, cycleAt func(int64) int, warns *[]trace.Warning) []Window {
	var users []Window
	warn := func(code, format string, args ...any) {
		*warns = append(*warns, trace.Warning{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	for _, spec := range s.Windows {
		u, _ := parseUserWindow(spec) // validated with the settings
		if u.phase == "" {
			start := d.Origin + int64(u.start*1e9)
			end := d.Origin + int64(u.end*1e9)
			if end > d.End {
				warn("window_outside_run", "window %s ends after the trace (%.3f s); it is cut there", spec, d.seconds(d.End))
				end = d.End
			}
			if start >= end {
				warn("window_outside_run", "window %s lies outside the trace (0 to %.3f s); skipped", spec, d.seconds(d.End))
				continue
			}
			// A span belongs to a cycle only when it lies inside it: one
			// across cycles must not count as a cycle's measurement.
			cyc := cycleAt(start)
			if cyc != cycleAt(end) {
				cyc = 0
			}
			users = append(users, Window{Name: spec, Kind: KindUser, Cycle: cyc, StartNs: start, EndNs: end})
			continue
		}
		found := false
		for _, p := range phases {
			if p.Name == u.phase {
				p.Kind = KindUser
				users = append(users, p)
				found = true
			}
		}
		if !found {
			warn("window_not_found", "window %s: the run has no phase of that name (phases: %s)", spec, phaseNames(phases))
		}
	}
	return users
}

// markMeasured picks the measurement windows: the user's windows when
// any are asked for (and none when none of them was found: a window the
// user named is never silently replaced by another); else every
// occurrence of the measure phase, or of mlperf_power when the run has no
// measure phase (a PTDaemon import with --loadgen: MLPerf's window); else
// the cycles; else the whole run.
func markMeasured(ws []Window, s Settings) {
	pick := func(pred func(w Window) bool) bool {
		any := false
		for i := range ws {
			if pred(ws[i]) {
				ws[i].Measured = true
				any = true
			}
		}
		return any
	}
	if len(s.Windows) > 0 {
		pick(func(w Window) bool { return w.Kind == KindUser })
		return
	}
	for _, phase := range []string{s.MeasurePhase, trace.PhaseMLPerfPower} {
		if pick(func(w Window) bool { return w.Kind == KindPhase && w.Name == phase }) {
			return
		}
	}
	if pick(func(w Window) bool { return w.Kind == KindCycle }) {
		return
	}
	ws[0].Measured = true
}

func phaseNames(phases []Window) string {
	seen := map[string]bool{}
	var names []string
	for _, p := range phases {
		if !seen[p.Name] {
			seen[p.Name] = true
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// seconds converts a trace stamp to seconds from the first sample.
func (d *Data) seconds(t int64) float64 { return float64(t-d.Origin) / 1e9 }
