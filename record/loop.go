package record

import (
	"context"
	"sync"
	"time"

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
	}
	if s.iterations > 0 {
		st.MeanJitterMs = ms(s.sumJitter / time.Duration(s.iterations))
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runLoop calls step at fixed deadlines (start + k*interval, k >= 1: the
// caller has taken the first reading itself) until ctx ends.
// Jitter is how late a wake-up came after its deadline. When a step overruns
// one or more later deadlines, those are counted as missed and skipped rather
// than run back to back, so a stall never turns into a burst of calls.
// step returns false to stop the loop (the GPU was lost).
func runLoop(ctx context.Context, interval time.Duration, stats *loopStats, step func() (ok, failed bool)) {
	deadline := time.Now().Add(interval)
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		jitter := time.Since(deadline)
		ok, failed := step()
		var missed int64
		deadline = deadline.Add(interval)
		if late := time.Since(deadline); late > 0 {
			skip := int64(late/interval) + 1
			missed = skip
			deadline = deadline.Add(time.Duration(skip) * interval)
		}
		stats.record(max(jitter, 0), missed, failed)
		if !ok {
			return
		}
		timer.Reset(time.Until(deadline))
	}
}
