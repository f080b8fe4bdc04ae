package record

import "time"

// Clock stamps samples with nanoseconds since the Unix epoch, taken as the
// wall-clock time at the anchor plus the monotonic time elapsed since. A
// wall-clock step during the run (NTP, an administrator) therefore cannot
// reorder samples; meta.json records the anchor and the drift seen at the end.
type Clock struct {
	anchor      time.Time // carries Go's monotonic reading
	wallStartNs int64
}

// NewClock anchors a clock at the current time.
func NewClock() *Clock {
	now := time.Now()
	return &Clock{anchor: now, wallStartNs: now.UnixNano()}
}

// Now is the current time in ns since the epoch on the anchored clock.
func (c *Clock) Now() int64 { return c.wallStartNs + int64(time.Since(c.anchor)) }

// At is t in ns since the epoch on the anchored clock; t must carry a
// monotonic reading (time.Now, or a time derived from one).
func (c *Clock) At(t time.Time) int64 { return c.wallStartNs + int64(t.Sub(c.anchor)) }

// WallStartNs is the wall-clock time at the anchor.
func (c *Clock) WallStartNs() int64 { return c.wallStartNs }
