package wake

import (
	"context"
	"testing"
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
