//go:build !linux

package wake

import "context"

// New returns the portable Waker: timerfds are Linux's.
func New(ctx context.Context) Waker { return NewTimer(ctx) }
