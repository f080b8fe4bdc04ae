// Package wake sleeps a goroutine until a deadline at the least cost to an
// idle process: the recorder's sampling schedule and its event readers
// wake ten to a few hundred times a second, and on a virtual machine each
// wake-up of a Go program costs more CPU than the NVML calls it makes.
//
// On Linux a Waker is a timerfd read through Go's network poller with raw
// system calls; elsewhere (and where timerfds are refused) a Go timer.
// docs/performance.md ("Wake-ups without Go timers") has the measurements.
package wake

import (
	"context"
	"time"
)

// A Waker sleeps until deadlines, one at a time (it is not safe for
// concurrent use). Wait reports false when the Waker's context has ended,
// also during a wait, or the Waker failed: the caller stops.
type Waker interface {
	Wait(deadline time.Time) bool
	Close()
}

// timerWaker is the portable Waker: one Go timer, reset for each deadline.
type timerWaker struct {
	ctx   context.Context
	timer *time.Timer
}

// NewTimer returns the portable Waker, on a Go timer.
func NewTimer(ctx context.Context) Waker {
	return &timerWaker{ctx: ctx, timer: time.NewTimer(time.Hour)}
}

func (w *timerWaker) Wait(deadline time.Time) bool {
	if w.ctx.Err() != nil {
		return false
	}
	w.timer.Reset(time.Until(deadline))
	select {
	case <-w.ctx.Done():
		return false
	case <-w.timer.C:
		return true
	}
}

func (w *timerWaker) Close() { w.timer.Stop() }
