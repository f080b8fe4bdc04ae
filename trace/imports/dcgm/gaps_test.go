package dcgm

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
)

// A timestamped dmon log of one GPU every 100 ms, whose clock is set back
// by a minute, then stops for ten minutes: the step is mended, the pause
// is a gap of both tables it has (power and energy).
func TestTimestampedClockBackAndGap(t *testing.T) {
	t0 := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	b.WriteString(t0.Format("2006-01-02 15:04:05.000000") + " #Entity   POWER    TOTEC\n")
	at := func(d time.Duration, i int) {
		fmt.Fprintf(&b, "%s GPU 0     %d.0    %d\n", t0.Add(d).Format("2006-01-02 15:04:05.000000"), 300+i, 1_000_000+30*i)
	}
	i := 0
	for k := range 20 {
		at(time.Duration(k)*100*time.Millisecond, i)
		i++
	}
	for k := range 20 { // the clock set back by a minute
		at(-time.Minute+time.Duration(k)*100*time.Millisecond, i)
		i++
	}
	for k := range 20 { // ten minutes later
		at(9*time.Minute+time.Duration(k)*100*time.Millisecond, i)
		i++
	}
	im := importFile(t, writeFile(t, "ts.txt", b.String()), Options{})
	for k, s := range im.states {
		if *s.AveragePowerMw != int64(300_000+1000*k) {
			t.Fatalf("row %d holds sample %d: interleaved", k, *s.AveragePowerMw/1000-300)
		}
	}
	var back, gaps []trace.Gap
	for _, g := range im.meta.Gaps {
		switch g.Code {
		case imports.ClockBackCode:
			back = append(back, g)
		case imports.GapCode:
			gaps = append(gaps, g)
		}
	}
	if len(back) != 1 || !strings.Contains(back[0].Message, "ts.txt:22:") {
		t.Errorf("clock steps %+v", back)
	}
	// After the step the samples follow on from 10:00:02.0, shifted by
	// 62 s (the minute set back, and the 2 s logged before it); the last
	// of them is at 10:00:03.9, the first after the pause logged at
	// 10:09:00, so 10:10:02 with the same shift.
	if len(gaps) != 2 || gaps[0].Table != trace.TableEnergy || gaps[1].Table != trace.TableState ||
		gaps[0].StartNs != t0.Add(3900*time.Millisecond).UnixNano() || gaps[0].EndNs != t0.Add(10*time.Minute+2*time.Second).UnixNano() {
		t.Errorf("gaps %+v", gaps)
	}
	if warning(im.meta, imports.GapCode, "1 gap(s) in the samples") == nil {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
}
