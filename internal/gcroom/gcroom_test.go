package gcroom

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The limit follows a live heap larger than Floor up, so that the
// collector does not run without end, and Set's restore gives back the
// settings it found.
func TestLimitFollowsLiveHeap(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}()

	restore := Set(Room{Percent: 100, Floor: 8 << 20, Growth: 0.25})
	if got := debug.SetMemoryLimit(-1); got != 8<<20 {
		t.Fatalf("limit %d after Set, want the floor %d", got, 8<<20)
	}
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20) // 64 MiB live, 8 times the floor
	}
	limit := int64(0)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run on their own goroutine
		if limit = debug.SetMemoryLimit(-1); limit >= 64<<20*5/4 {
			break
		}
	}
	if limit < 64<<20*5/4 {
		t.Fatalf("limit %d with 64 MiB live, want at least 1.25 times that", limit)
	}
	if limit > 64<<20*2 {
		t.Errorf("limit %d with 64 MiB live and growth 0.25: more room than asked", limit)
	}
	runtime.KeepAlive(live)
	live = nil

	restore()
	if got := debug.SetGCPercent(-1); got != 100 {
		t.Errorf("GOGC %d after restore, want 100", got)
	}
	debug.SetGCPercent(100)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d after restore, want none (%d)", got, int64(math.MaxInt64))
	}
	// Collections after restore leave the limit alone.
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d after a collection past restore, want none", got)
	}
}

// Under Floor the limit stays at Floor: a small heap grows as GOGC says.
func TestSmallHeapKeepsFloor(t *testing.T) {
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(prevLimit)
	restore := Set(Room{Percent: 100, Floor: 1 << 30, Growth: 0.25})
	defer restore()
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("limit %d with a small heap, want the floor %d", got, 1<<30)
	}
}
