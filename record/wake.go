package record

import (
	"context"
	"time"
)

// A waker sleeps until a deadline for runSchedule. wait reports false when
// the schedule's context has ended (or the waker failed): the loop stops.
type waker interface {
	wait(deadline time.Time) bool
	close()
}

// timerWaker is the portable waker: one Go timer, reset for each deadline.
type timerWaker struct {
	ctx   context.Context
	timer *time.Timer
}

func newTimerWaker(ctx context.Context) waker {
	return &timerWaker{ctx: ctx, timer: time.NewTimer(time.Hour)}
}

func (w *timerWaker) wait(deadline time.Time) bool {
	w.timer.Reset(time.Until(deadline))
	select {
	case <-w.ctx.Done():
		return false
	case <-w.timer.C:
		return true
	}
}

func (w *timerWaker) close() { w.timer.Stop() }
