package record

import (
	"context"
	"testing"
	"time"
)

// runSchedule runs each task on its own deadlines, none early, and stops
// when the context ends.
func TestRunScheduleDeadlines(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	var fast, slow []time.Duration
	tasks := []*task{
		{interval: 10 * time.Millisecond, stats: &loopStats{}, step: func() (bool, bool) {
			fast = append(fast, time.Since(start))
			if len(fast) == 12 {
				cancel()
			}
			return true, false
		}},
		{interval: 30 * time.Millisecond, stats: &loopStats{}, step: func() (bool, bool) {
			slow = append(slow, time.Since(start))
			return true, false
		}},
	}
	done := make(chan struct{})
	go func() { runSchedule(ctx, start, tasks); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("runSchedule did not stop when its context ended")
	}
	if len(fast) != 12 || len(slow) < 3 {
		t.Fatalf("%d fast and %d slow steps, want 12 and at least 3", len(fast), len(slow))
	}
	for k, at := range fast {
		if want := time.Duration(k+1) * 10 * time.Millisecond; at < want {
			t.Errorf("fast step %d at %v, before its deadline %v", k, at, want)
		}
	}
	for k, at := range slow {
		if want := time.Duration(k+1) * 30 * time.Millisecond; at < want {
			t.Errorf("slow step %d at %v, before its deadline %v", k, at, want)
		}
	}
}
