//go:build !linux

package record

import "context"

func newWaker(ctx context.Context) waker { return newTimerWaker(ctx) }
