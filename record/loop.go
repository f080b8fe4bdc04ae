package record

import (
	"context"
	"sync"
	"time"

	"github.com/llem/llem/internal/wake"
	"github.com/llem/llem/trace"
)

// loopStats accumulates the timeliness of one kind of sampling loop across
// GPUs. Each loop runs on its own goroutine so a slow call (the energy
// counter takes ~3 ms on an H100) never delays the others.
type loopStats struct {
	mu          sync.Mutex
	interval    time.Duration
	iterations  int64
	missed      int64
	errors      int64
	worstJitter time.Duration
	sumJitter   time.Duration
	thread      string // trace.LoopStats.Thread
}

func (s *loopStats) setThread(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.thread = name
}

func (s *loopStats) record(jitter time.Duration, missed int64, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.iterations++
	s.missed += missed
	if failed {
		s.errors++
	}
	s.sumJitter += jitter
	if jitter > s.worstJitter {
		s.worstJitter = jitter
	}
}

func (s *loopStats) snapshot() trace.LoopStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := trace.LoopStats{
		IntervalMs:      ms(s.interval),
		Iterations:      s.iterations,
		MissedDeadlines: s.missed,
		WorstJitterMs:   ms(s.worstJitter),
		Errors:          s.errors,
		Thread:          s.thread,
	}
	if s.iterations > 0 {
		st.MeanJitterMs = ms(s.sumJitter / time.Duration(s.iterations))
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// task is one kind of reading on a GPU's sampling schedule.
type task struct {
	interval time.Duration
	stats    *loopStats
	step     func() (ok, failed bool) // ok false: stop (the GPU was lost)
	next     time.Time
	stopped  bool
}

// runSchedule calls each task's step at fixed deadlines (start +
// k*interval, k >= 1: the caller has taken the first readings itself) until
// ctx ends or every task has stopped. All of a GPU's readings share one
// goroutine and one timer, on deadlines that coincide (the driver-buffer
// drain every fifth state poll, the counter every hundredth): on an idle
// machine each wake-up of a Go program costs far more CPU than the NVML
// calls it makes (~0.2 ms against ~0.03 ms on the H200), so readings taken
// together cost one wake-up. Tasks run in the order given, the slow energy
// counter last, so it delays no other reading of its tick.
//
// Jitter is how late a step ran after its deadline. When a step overruns
// one or more later deadlines of its task, those are counted as missed and
// skipped rather than run back to back, so a stall never turns into a
// burst of calls.
func runSchedule(ctx context.Context, start time.Time, tasks []*task) {
	for _, t := range tasks {
		t.next = start.Add(t.interval)
	}
	waker := wake.New(ctx)
	defer waker.Close()
	for {
		var earliest time.Time
		for _, t := range tasks {
			if !t.stopped && (earliest.IsZero() || t.next.Before(earliest)) {
				earliest = t.next
			}
		}
		if earliest.IsZero() {
			return
		}
		if !waker.Wait(earliest) || ctx.Err() != nil {
			return
		}
		now := time.Now()
		for _, t := range tasks {
			if t.stopped || now.Before(t.next) {
				continue
			}
			jitter := time.Since(t.next)
			ok, failed := t.step()
			var missed int64
			t.next = t.next.Add(t.interval)
			if late := time.Since(t.next); late > 0 {
				skip := int64(late/t.interval) + 1
				missed = skip
				t.next = t.next.Add(time.Duration(skip) * t.interval)
			}
			t.stats.record(max(jitter, 0), missed, failed)
			t.stopped = !ok
		}
	}
}
