package analyze

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/internal/gcroom"
)

// Run is one analysed run: the trace as loaded and every number llem
// computes from it. It is the one way in to an analysed run: `llem
// analyze`, `llem compare`, the figures, the report and `llem replay`
// all read their numbers from a Run, so the same run shows the same
// numbers everywhere.
type Run struct {
	Dir      string // the run's directory, as given
	Label    string // how figures and reports name the run (Open sets it)
	Data     *Data
	Settings Settings
	Result   RunResult
	// Latency holds the per-request latencies of the requests that start
	// in the measured windows, pooled: what Result.Latency summarises.
	Latency serving.Latency

	reqs *serving.Set
}

// Requests is the run's request reconstruction from its events.
func (r *Run) Requests() *serving.Set { return r.reqs }

// Open loads and analyses each run directory with settings s, in the
// order given, one at a time, and names the runs (Label): by the labels
// whose values differ between them (batch=8 and batch=32 in a batch
// sweep), else by all their labels, else by the directory's name.
// progress (may be nil) receives one line per run.
func Open(dirs []string, s Settings, progress io.Writer) ([]*Run, error) {
	var p Progress
	if progress != nil {
		p = &LineProgress{W: progress}
	}
	return OpenWith(dirs, s, OpenOptions{Progress: p, Workers: 1})
}

// GCRoom is the Go collector's room for analysing runs (gcroom.Set): the
// process may grow to GCFloor with Go's default headroom, and past it by
// 15% of the live heap (as GOGC=15). GOGC=25 throughout kept a day's
// trace in a fifth less memory than 50 in the same time, but made an
// hour's run collect four times as often as its memory needed
// (docs/performance.md, issue 12). Past the floor 25% let a day's peak
// reach 302-306 MB once the passes over spilled tokens stopped making
// garbage (and the collector's cycles with it); 15% kept it at 271-275 MB
// in the same time (tenth round). Only a day's request build, whose live
// heap passes 192 MB, collects more often for it. The room does not
// depend on how many runs are analysed at once: the floor bounds them
// together.
func GCRoom() gcroom.Room {
	return gcroom.Room{Percent: 100, Floor: GCFloor, Growth: 0.15}
}

// GCFloor is the memory an analysis may use before its collector keeps it
// close to the live heap: under issue 12's 300 MB of peak RSS with the
// binary's own pages.
const GCFloor = 240 << 20

// OpenOptions says how OpenWith analyses runs.
type OpenOptions struct {
	// Progress (may be nil) is told as runs start, as their segments are
	// read, and as they end.
	Progress Progress
	// Workers is how many runs are loaded and analysed at once (< 1: one).
	// The results do not depend on it: each run is analysed on its own,
	// and the runs come back in the order given.
	Workers int
	// ResultsOnly drops each run's loaded trace (Data), request set and
	// per-request latencies as soon as its results are computed: all that
	// a results document needs, and what keeps a directory of hundreds of
	// runs in the memory of the few being analysed. Figures, compare and
	// replay need them kept.
	ResultsOnly bool
}

// Progress hears how OpenWith gets on. Its methods may be called from
// several goroutines at once.
type Progress interface {
	RunStarted(i, n int, dir string)
	Read(bytes int64) // a segment file of that size was read
	RunDone(i, n int, dir string, err error)
}

// LineProgress writes a line as each run starts, and one for each run
// that cannot be read: for logs and for stderr that is not a terminal.
// Its lines are written whole, one at a time: workers share W.
type LineProgress struct {
	W  io.Writer
	mu sync.Mutex
}

func (p *LineProgress) RunStarted(i, n int, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.W, "llem: analysing %s (%d of %d)\n", dir, i+1, n)
}

func (*LineProgress) Read(int64) {}

func (p *LineProgress) RunDone(i, n int, dir string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		fmt.Fprintf(p.W, "llem: skipping %s: %v\n", dir, err)
	}
}

// OpenWith is Open with options: runs in parallel (opt.Workers), and
// results only (opt.ResultsOnly). Runs that cannot be read are left out,
// and named in a *SweepError, in the order given.
func OpenWith(dirs []string, s Settings, opt OpenOptions) ([]*Run, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	runs := make([]*Run, len(dirs))
	errs := make([]error, len(dirs))
	var onRead func(int64)
	if opt.Progress != nil {
		onRead = opt.Progress.Read
	}
	one := func(i int) {
		if opt.Progress != nil {
			opt.Progress.RunStarted(i, len(dirs), dirs[i])
		}
		d, err := load(dirs[i], onRead)
		if err == nil {
			runs[i] = New(d, dirs[i], s)
			e := d.Err()
			if e == nil {
				e = runs[i].reqs.Err()
			}
			if e != nil {
				// Spilled samples, tokens or requests could not be read back:
				// the results would be short of them.
				runs[i], err = nil, fmt.Errorf("%s: %w", dirs[i], e)
			}
		}
		if err == nil {
			if opt.ResultsOnly {
				runs[i].Data, runs[i].reqs, runs[i].Latency = nil, nil, serving.Latency{}
			}
		}
		errs[i] = err
		if opt.Progress != nil {
			opt.Progress.RunDone(i, len(dirs), dirs[i], err)
		}
	}
	parallel(opt.Workers, len(dirs), one)
	// One unreadable run of a sweep does not cost the others.
	var ok []*Run
	var failed []error
	for i := range dirs {
		if errs[i] != nil {
			failed = append(failed, errs[i])
		} else {
			ok = append(ok, runs[i])
		}
	}
	NameRuns(ok)
	if len(failed) > 0 {
		return ok, &SweepError{Failed: failed, Of: len(dirs)}
	}
	return ok, nil
}

// SweepError says which runs of a sweep could not be read; Open still
// returns the others, analysed.
type SweepError struct {
	Failed []error // one per run, naming its directory
	Of     int     // runs asked for
}

func (e *SweepError) Error() string {
	msg := fmt.Sprintf("%d of %d run(s) could not be read", len(e.Failed), e.Of)
	for _, err := range e.Failed {
		msg += "\n  " + err.Error()
	}
	return msg
}

func (e *SweepError) Unwrap() []error { return e.Failed }

// Document gathers analysed runs into the document `llem analyze` writes.
func Document(runs []*Run, s Settings, version string) *Results {
	res := &Results{Tool: "llem", LlemVersion: version, Settings: s, SettingsHash: s.Hash(), Runs: []RunResult{}}
	for _, r := range runs {
		res.Runs = append(res.Runs, r.Result)
	}
	return res
}

// MeasuredWindows are the run's measured windows, in order.
func (r *Run) MeasuredWindows() []WindowResult {
	var out []WindowResult
	for _, w := range r.Result.Windows {
		if w.Measured {
			out = append(out, w)
		}
	}
	return out
}

// NameRuns sets each run's Label: by the labels whose values differ between
// the runs, else all their labels, else the directory's name.
func NameRuns(runs []*Run) {
	if len(runs) == 0 {
		return
	}
	keys := map[string]bool{}
	for _, r := range runs {
		for k := range r.Result.Labels {
			keys[k] = true
		}
	}
	var varying []string
	for k := range keys {
		first, firstOK := runs[0].Result.Labels[k]
		for _, r := range runs[1:] {
			if v, ok := r.Result.Labels[k]; ok != firstOK || v != first {
				varying = append(varying, k)
				break
			}
		}
	}
	sort.Strings(varying)
	names := map[string]int{}
	for _, r := range runs {
		use := varying
		if len(runs) == 1 {
			for k := range r.Result.Labels {
				use = append(use, k)
			}
			sort.Strings(use)
		}
		var parts []string
		for _, k := range use {
			if v, ok := r.Result.Labels[k]; ok {
				parts = append(parts, k+"="+v)
			}
		}
		r.Label = strings.Join(parts, " ")
		if r.Label == "" {
			r.Label = filepath.Base(filepath.Clean(r.Dir))
		}
		names[r.Label]++
	}
	// Labels that still collide: the directory's name, and failing that
	// (the same run twice) a number.
	seen := map[string]int{}
	for _, r := range runs {
		if names[r.Label] < 2 {
			continue
		}
		base := filepath.Base(filepath.Clean(r.Dir))
		if base != r.Label {
			r.Label += " (" + base + ")"
		} else {
			seen[base]++
			r.Label = fmt.Sprintf("%s (%d)", base, seen[base])
		}
	}
}

// WindowsFound refuses window specs (Settings.Windows) that no run has: a named window is
// never silently replaced by another, and analysing nothing is a mistake.
// A run that lacks them while others have them is analysed with no
// measured window and a window_not_found warning. The error lists what
// each run has.
func WindowsFound(runs []*Run, s Settings) error {
	if len(s.Windows) == 0 {
		return nil
	}
	for _, r := range runs {
		if len(r.MeasuredWindows()) > 0 {
			return nil
		}
	}
	msg := fmt.Sprintf("no run has the window %s", strings.Join(s.Windows, ", "))
	for _, r := range runs {
		for _, w := range r.Result.Warnings {
			if w.Code == "window_not_found" || w.Code == "window_outside_run" {
				msg += fmt.Sprintf("\n  %s: %s", r.Dir, w.Message)
			}
		}
	}
	return errors.New(msg)
}

// MeasurePhaseFound refuses a measure phase (Settings.MeasurePhase) that
// no run has, for callers whose user named it: otherwise the analysis
// would fall back to mlperf_power, the cycles or the whole run, and a
// mistyped phase would measure something else without a word. The error
// lists the phases each run has.
func MeasurePhaseFound(runs []*Run, s Settings) error {
	for _, r := range runs {
		for _, w := range r.Result.Windows {
			if w.Kind == KindPhase && w.Name == s.MeasurePhase {
				return nil
			}
		}
	}
	msg := fmt.Sprintf("no run has the phase %q", s.MeasurePhase)
	for _, r := range runs {
		var phases []Window
		for _, w := range r.Result.Windows {
			if w.Kind == KindPhase {
				phases = append(phases, Window{Kind: w.Kind, Name: w.Name})
			}
		}
		msg += fmt.Sprintf("\n  %s: phases: %s", r.Dir, phaseNames(phases))
	}
	return errors.New(msg)
}
