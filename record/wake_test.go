package record

import (
	"context"
	"testing"
	"time"
)

// Both wakers: never before the deadline, at once for a past one, and
// false once the context ends, also in the middle of a wait.
func TestWakers(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(context.Context) waker
	}{{"platform", newWaker}, {"timer", newTimerWaker}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := c.make(ctx)
			defer w.close()
			for i := range 5 {
				deadline := time.Now().Add(time.Duration(i+1) * 7 * time.Millisecond)
				if !w.wait(deadline) {
					t.Fatalf("wait %d: false before the context ended", i)
				}
				if early := time.Until(deadline); early > 0 {
					t.Fatalf("wait %d returned %v before its deadline", i, early)
				}
			}
			start := time.Now()
			if !w.wait(start.Add(-time.Second)) {
				t.Fatal("a past deadline: false")
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("a past deadline took %v", d)
			}
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
			start = time.Now()
			if w.wait(start.Add(time.Hour)) {
				t.Fatal("wait returned true after the context ended")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("cancelling took %v", d)
			}
			if w.wait(time.Now().Add(time.Millisecond)) {
				t.Fatal("wait after the end: true")
			}
		})
	}
}

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
