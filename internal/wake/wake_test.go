package wake

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
		make func(context.Context) Waker
	}{{"platform", New}, {"timer", NewTimer}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := c.make(ctx)
			defer w.Close()
			for i := range 5 {
				deadline := time.Now().Add(time.Duration(i+1) * 7 * time.Millisecond)
				if !w.Wait(deadline) {
					t.Fatalf("wait %d: false before the context ended", i)
				}
				if early := time.Until(deadline); early > 0 {
					t.Fatalf("wait %d returned %v before its deadline", i, early)
				}
			}
			start := time.Now()
			if !w.Wait(start.Add(-time.Second)) {
				t.Fatal("a past deadline: false")
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("a past deadline took %v", d)
			}
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
			start = time.Now()
			if w.Wait(start.Add(time.Hour)) {
				t.Fatal("wait returned true after the context ended")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("cancelling took %v", d)
			}
			if w.Wait(time.Now().Add(time.Millisecond)) {
				t.Fatal("wait after the end: true")
			}
		})
	}
}
