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
	// anchorErr bounds how far the mapping can be off: half the time
	// between the two Go readings around the clock's.
	anchorErr time.Duration
)

func init() {
	// The Go reading is the midpoint of two around the clock's: off by
	// at most half the ~100 ns between them, unless the thread was
	// preempted between them (seen on a loaded CI machine: microseconds).
	// The tightest of a few pairs is kept.
	for i := 0; i < 8; i++ {
		var ts unix.Timespec
		t0 := time.Now()
		err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		t1 := time.Now()
		if err != nil {
			return
		}
		if gap := t1.Sub(t0); !monoOK || gap/2 < anchorErr {
			anchorTime, anchorMono, anchorErr, monoOK = t0.Add(gap/2), ts.Nano(), gap/2, true
		}
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
