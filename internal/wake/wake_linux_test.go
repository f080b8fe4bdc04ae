package wake

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// The mapping onto CLOCK_MONOTONIC agrees with the clock itself, and back.
func TestMono(t *testing.T) {
	var ts unix.Timespec
	before := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	// The anchor pair was not read at one instant: the mapping is off by
	// at most anchorErr (plus a nanosecond of rounding).
	slack := int64(anchorErr) + 1
	if m := ts.Nano(); m < MonoNs(before)-slack || m > MonoNs(after)+slack {
		t.Errorf("CLOCK_MONOTONIC %d outside [%d, %d] (anchor error %v)", m, MonoNs(before), MonoNs(after), anchorErr)
	}
	if anchorErr > 100*time.Microsecond {
		t.Logf("anchor error %v: the anchoring thread was preempted in all tries", anchorErr)
	}
	if d := FromMono(MonoNs(before)).Sub(before); d != 0 {
		t.Errorf("FromMono(MonoNs(t)) is %v off t", d)
	}
}
