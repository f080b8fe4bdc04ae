//go:build unix

package wake

import (
	"time"

	"golang.org/x/sys/unix"
)

// Go's times carry the runtime's monotonic reading, which it does not
// expose; timerfds and the C threads of the NVML backend work on
// CLOCK_MONOTONIC. One pair of readings taken together maps one onto the
// other: on Linux they are the same clock, so the offset is constant.
var (
	anchorTime time.Time
	anchorMono int64
	monoOK     bool
)

func init() {
	// The Go reading is the midpoint of two around the clock's: off by
	// at most half the ~100 ns between them.
	var ts unix.Timespec
	t0 := time.Now()
	err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	t1 := time.Now()
	anchorTime = t0.Add(t1.Sub(t0) / 2)
	if err == nil {
		anchorMono, monoOK = ts.Nano(), true
	}
}

// MonoNs is t on CLOCK_MONOTONIC, in ns; t must carry a monotonic
// reading (time.Now, or a time derived from one). It is 0 where the
// clock could not be read (MonoOK false).
func MonoNs(t time.Time) int64 {
	if !monoOK {
		return 0
	}
	return anchorMono + int64(t.Sub(anchorTime))
}

// FromMono is the time of a CLOCK_MONOTONIC reading in ns, with Go's
// monotonic reading, so that it subtracts exactly from time.Now().
func FromMono(ns int64) time.Time { return anchorTime.Add(time.Duration(ns - anchorMono)) }

// MonoOK reports whether CLOCK_MONOTONIC could be read.
func MonoOK() bool { return monoOK }
