package record

import (
	"fmt"
	"time"
)

// startStatus prints a one-line live status (elapsed, power, energy so far)
// to cfg.Status every second, rewriting the line in place. It goes to
// stderr, never into the command's stdout. The returned func stops it and
// clears the line.
func (r *recorder) startStatus() (stop func()) {
	w := r.cfg.Status
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprintf(w, "\r\033[K%s", r.statusLine())
			}
		}
	}()
	return func() { close(quit); <-done }
}

func (r *recorder) statusLine() string {
	elapsed := time.Duration(r.clock.Now() - r.clock.WallStartNs()).Round(time.Second)
	r.mu.Lock()
	var watts, joules float64
	for _, w := range r.latestW {
		watts += w
	}
	for idx, last := range r.lastMj {
		if last >= r.firstMj[idx] {
			joules += float64(last-r.firstMj[idx]) / 1000
		}
	}
	r.mu.Unlock()
	return fmt.Sprintf("llem: recording %s  %.0f W  %s  (%d GPU)", elapsed, watts, formatJoules(joules), len(r.gpus))
}

func formatJoules(j float64) string {
	switch {
	case j >= 1e6:
		return fmt.Sprintf("%.2f MJ", j/1e6)
	case j >= 1e3:
		return fmt.Sprintf("%.1f kJ", j/1e3)
	}
	return fmt.Sprintf("%.0f J", j)
}
