// Package gcroom gives the Go collector room by memory rather than by a
// fixed ratio: a process may grow to a budget (Floor) as it likes, with
// the collector's default headroom, and beyond it only by a fraction of
// what is live, as a small GOGC would allow.
//
// llem analyze used GOGC=25 throughout, which keeps a day's trace in the
// least memory but makes an hour's collect four times as often as it
// needs to: an hour's analysis took 10-15% of its time in the collector
// for a peak far below the memory an analysis may use (docs/performance.md,
// issue 12). A fixed GOMEMLIMIT alone would make a trace whose live heap
// passes the limit collect without end; here the limit follows the live
// heap up, re-set after every collection.
package gcroom

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Room says how much the heap may grow.
type Room struct {
	// Percent is the collector's growth while the process is under Floor
	// (GOGC; 100 is Go's default).
	Percent int
	// Floor is the memory, in bytes, that the process may use whatever is
	// live (the Go runtime's total, as GOMEMLIMIT counts it).
	Floor int64
	// Growth is the fraction of the live heap that the heap may grow by
	// once Floor is passed (0.25: as GOGC=25).
	Growth float64
}

// Set applies r until the returned function is called, which restores
// the collector's earlier settings. Only one Set may be in effect at a
// time.
func Set(r Room) (restore func()) {
	t := &tracker{room: r}
	for i, name := range memoryClasses {
		t.samples[i].Name = name
	}
	t.prevPercent = debug.SetGCPercent(r.Percent)
	t.prevLimit = debug.SetMemoryLimit(r.Floor)
	t.arm()
	return t.stop
}

type tracker struct {
	room        Room
	prevPercent int
	prevLimit   int64
	mu          sync.Mutex
	stopped     bool
	samples     [len(memoryClasses)]metrics.Sample
	lastLimit   int64
}

// sentinel is garbage from its birth: its cleanup runs after the first
// collection that finds it unreachable, that is, after every collection
// once re-armed.
type sentinel struct{ _ [16]byte }

func (t *tracker) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(t *tracker) { t.collected() }, t)
}

// collected re-sets the limit after a collection: the larger of Floor and
// the live heap plus its Growth, with what the runtime holds besides the
// heap (its metadata, stacks) and the heap's unused parts of spans. Freed
// heap memory that the runtime still holds is left out: counting it would
// ratchet the limit up to the largest the heap ever was, and the runtime
// returns it to the system to stay under the limit.
func (t *tracker) collected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.samples[:])
	var v [len(memoryClasses)]float64
	for i, s := range t.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			t.arm()
			return // a metric this Go does not have: the limit stays
		}
		v[i] = float64(s.Value.Uint64())
	}
	live, total, objects, free, released, unused := v[0], v[1], v[2], v[3], v[4], v[5]
	overhead := max(total-objects-free-released-unused, 0)
	want := overhead + unused + live*(1+t.room.Growth)
	limit := t.room.Floor
	if want > float64(limit) {
		limit = int64(min(want, math.MaxInt64/2))
	}
	if limit != t.lastLimit {
		debug.SetMemoryLimit(limit)
		t.lastLimit = limit
	}
	t.arm()
}

// memoryClasses are the runtime metrics collected reads, in its order.
var memoryClasses = [...]string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/unused:bytes",
}

func (t *tracker) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.prevPercent)
	debug.SetMemoryLimit(t.prevLimit)
}
