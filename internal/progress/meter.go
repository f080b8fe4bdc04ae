// Package progress draws the progress of a long analysis on a terminal.
package progress

import (
	"fmt"
	"github.com/llem/llem/analyze"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Meter is the progress of a long analysis on a terminal: one line,
// redrawn at most every tick, with the runs done, the share of the runs'
// segment bytes read and the time taken. It implements analyze.Progress.
type Meter struct {
	w     io.Writer
	start time.Time
	tick  time.Duration

	mu           sync.Mutex
	total, read  int64 // segment bytes
	runs, done   int
	active       []string // runs being analysed, in the order they started
	last         time.Time
	drawn, ended bool
}

// For is how a command shows the progress of analysing dirs on w: a meter
// on a terminal, else a line per run (logs). finish clears the meter.
func For(w io.Writer, terminal bool, dirs []string) (p analyze.Progress, finish func()) {
	if !terminal {
		return &analyze.LineProgress{W: w}, func() {}
	}
	m := NewMeter(w, dirs)
	return m, m.Finish
}

// NewMeter is a meter for analysing the run directories dirs, drawn on w.
func NewMeter(w io.Writer, dirs []string) *Meter {
	m := &Meter{w: w, start: time.Now(), tick: 200 * time.Millisecond, runs: len(dirs)}
	for _, d := range dirs {
		m.total += parquetBytes(d)
	}
	return m
}

// parquetBytes is the size of the Parquet files under dir: what analysing
// it reads.
func parquetBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(path, ".parquet") {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func (m *Meter) RunStarted(i, n int, dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active = append(m.active, dir)
	m.draw(true)
}

func (m *Meter) Read(bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.read += bytes
	m.draw(false)
}

func (m *Meter) RunDone(i, n int, dir string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done++
	for k, a := range m.active {
		if a == dir {
			m.active = append(m.active[:k], m.active[k+1:]...)
			break
		}
	}
	if err != nil { // kept on the screen: the line is redrawn below it
		m.clear()
		fmt.Fprintf(m.w, "llem: skipping %s: %v\n", dir, err)
	}
	m.draw(true)
}

// Finish clears the meter's line, so that what follows starts clean.
func (m *Meter) Finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	m.ended = true
}

func (m *Meter) clear() {
	if m.drawn {
		fmt.Fprint(m.w, "\r\033[K")
		m.drawn = false
	}
}

// draw redraws the line, at most once a tick unless forced.
func (m *Meter) draw(force bool) {
	now := time.Now()
	if m.ended || (!force && now.Sub(m.last) < m.tick) {
		return
	}
	m.last = now
	line := fmt.Sprintf("llem: %d of %d run(s) analysed", m.done, m.runs)
	if m.total > 0 {
		line += fmt.Sprintf(", %.0f%% of %s read", 100*min(float64(m.read)/float64(m.total), 1), mib(m.total))
	}
	line += fmt.Sprintf(", %.0f s", now.Sub(m.start).Seconds())
	if len(m.active) > 0 {
		line += ": " + filepath.Base(filepath.Clean(m.active[0]))
		if len(m.active) > 1 {
			line += fmt.Sprintf(" and %d more", len(m.active)-1)
		}
	}
	fmt.Fprint(m.w, "\r\033[K"+line)
	m.drawn = true
}

func mib(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
