package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/internal/wake"
	"github.com/llem/llem/trace"
)

// What the recorder does when the trace cannot be written (a full or
// failing disk, the run directory removed, a disk that stops answering):
// it says so at once, naming the path; it goes on running the command to
// its end, and exits with its exit code; the segments already written stay
// whole (each is written under a temporary name and renamed); and
// meta.json says where the data stops and why (data_ends_ns,
// data_ends_reason, and a gap from there to the end of the recording).

const (
	// DefaultStallAfter is how long one write may take before the
	// recorder reports the disk as stalled.
	DefaultStallAfter = 30 * time.Second
	// reserveBytes are set aside in the run directory when the recording
	// starts and freed just before the final meta.json is written, so
	// that a full disk still leaves room to say where the data stops.
	reserveBytes = 256 << 10
	reserveFile  = ".llem-reserve"
)

// errStalled is the sink's answer when its last write did not return.
var errStalled = errors.New("a write did not return")

// reserveSpace sets reserveBytes aside in dir; a file system that cannot
// allocate them (it is already full) gets no reserve.
func reserveSpace(dir string) {
	path := filepath.Join(dir, reserveFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, reserveBytes); err != nil {
		// Without fallocate, write the bytes.
		if _, err := f.Write(make([]byte, reserveBytes)); err != nil {
			os.Remove(path)
		}
	}
}

func releaseSpace(dir string) { os.Remove(filepath.Join(dir, reserveFile)) }

// writeFailed is the sink's onFail: the first write error, reported at
// once. Rows from goodUntil on are not stored.
func (r *recorder) writeFailed(err error, goodUntil int64) {
	r.mu.Lock()
	if r.dataEnd == nil {
		r.dataEnd = &dataEnd{at: goodUntil, reason: fmt.Sprintf("writing the trace failed: %v", err)}
	}
	r.mu.Unlock()
	fmt.Fprintf(r.cfg.Log, "llem: warning: writing the trace failed: %v\n"+
		"llem: warning: the run in %s keeps what was written up to %s; the command goes on to its end\n",
		err, r.cfg.OutDir, r.clockText(goodUntil))
	// A segment cut short by the failure only takes space now.
	for _, t := range []string{trace.TableDriverPower, trace.TableEnergy, trace.TableState, trace.TableEvents, trace.TableBadEvents} {
		tmps, _ := filepath.Glob(filepath.Join(r.cfg.OutDir, t, "*.tmp"))
		for _, p := range tmps {
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				os.Remove(p)
			}
		}
	}
}

// dataEnd is where the stored data stops, and why.
type dataEnd struct {
	at     int64
	reason string
}

func (r *recorder) clockText(ns int64) string {
	if ns <= 0 {
		return "the start (nothing)"
	}
	return fmt.Sprintf("%s (%.1f s into the recording)", time.Unix(0, ns).Format("15:04:05.000"),
		float64(ns-r.clock.WallStartNs())/1e9)
}

// watchWrites reports, once, a write that has not returned for
// StallAfter, until ctx ends. It checks every second or so on a
// wake.Waker: a Go ticker cost the idle recorder ~5 thread wake-ups a
// tick (internal/wake says why).
func (r *recorder) watchWrites(ctx context.Context) {
	every := min(r.cfg.StallAfter/4, time.Second)
	w := wake.New(ctx)
	defer w.Close()
	next := time.Now()
	for {
		next = next.Add(every)
		if !w.Wait(next) {
			return
		}
		since := r.out.busySince.Load()
		if since == 0 || time.Duration(r.clock.Now()-since) < r.cfg.StallAfter {
			continue
		}
		r.mu.Lock()
		first := r.dataEnd == nil
		if first {
			r.dataEnd = &dataEnd{at: r.out.goodUntil.Load(), reason: fmt.Sprintf(
				"writing to %s stalled: a write did not return for %v", r.cfg.OutDir, r.cfg.StallAfter)}
		}
		r.mu.Unlock()
		if first {
			fmt.Fprintf(r.cfg.Log, "llem: warning: writing to %s has not returned for %v (a stalled disk?); the command goes on to its end\n",
				r.cfg.OutDir, r.cfg.StallAfter)
		}
		return
	}
}

// markDataEnd writes where the data stops into meta.json: its time and
// reason, a gap to the end of the recording and a warning.
func (r *recorder) markDataEnd(endNs int64) {
	r.mu.Lock()
	de := r.dataEnd
	r.mu.Unlock()
	if de == nil {
		return
	}
	m := r.meta
	at := max(de.at, m.Clock.WallStartNs)
	m.DataEndsNs, m.DataEndsReason = at, de.reason
	m.Gaps = append(m.Gaps, trace.Gap{StartNs: at, EndNs: max(endNs, at), Code: "data_ends",
		Message: "nothing was stored from here to the end of the recording: " + de.reason})
	m.Warnings = append(m.Warnings, trace.Warning{Code: "data_ends", Message: fmt.Sprintf(
		"the trace stops %.1f s into the recording, %.1f s before its end: %s",
		float64(at-m.Clock.WallStartNs)/1e9, float64(endNs-at)/1e9, de.reason)})
}

// writeMetaWithin writes meta.json unless the disk has stalled: it gives
// up after limit.
func writeMetaWithin(dir string, m *trace.Meta, limit time.Duration) error {
	done := make(chan error, 1)
	b := *m // the writer may outlive this call
	go func() { done <- trace.WriteMeta(dir, &b) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, trace.MetaFile), errStalled)
	}
}

// writeStalled records a trace writer that never returned at the end.
func (r *recorder) writeStalled() {
	r.mu.Lock()
	first := r.dataEnd == nil
	if first {
		r.dataEnd = &dataEnd{at: r.out.goodUntil.Load(), reason: fmt.Sprintf(
			"writing to %s stalled: a write did not return for %v", r.cfg.OutDir, r.cfg.StallAfter)}
	}
	r.mu.Unlock()
	fmt.Fprintf(r.cfg.Log, "llem: warning: writing to %s did not finish within %v of the end; giving up on what was not written\n",
		r.cfg.OutDir, r.cfg.StallAfter)
}
