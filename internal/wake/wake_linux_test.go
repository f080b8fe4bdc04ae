package wake

import (
	"context"
	"testing"
	"time"
)

// On Linux New gives the timerfd Waker, so TestWakers's "platform" case
// tests it and not the fallback.
func TestNewIsTimerfd(t *testing.T) {
	w := New(context.Background())
	defer w.Close()
	if _, ok := w.(*fdWaker); !ok {
		t.Fatalf("New returned %T, want *fdWaker", w)
	}
}

// A tick allocates nothing: Wait runs ten times a second for as long as
// the recorder runs.
func TestWaitAllocatesNothing(t *testing.T) {
	w := New(context.Background())
	defer w.Close()
	past := time.Now().Add(-time.Second)
	if n := testing.AllocsPerRun(100, func() { w.Wait(past) }); n != 0 {
		t.Fatalf("Wait allocates %v times a call", n)
	}
}
