package nvsmi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
)

// smiLog is an nvidia-smi log of one GPU polled every second from start:
// n lines at 598 W, the i-th line's power is 598 W + i mW, so that the
// order of the rows can be checked after import.
func smiLog(start time.Time, n, first int) string {
	var b strings.Builder
	b.WriteString("timestamp, power.draw [W]\n")
	for i := range n {
		fmt.Fprintf(&b, "%s, %.3f W\n", start.Add(time.Duration(i)*time.Second).Format("2006/01/02 15:04:05.000"), 598+float64(first+i)/1000)
	}
	return b.String()
}

func gapsWith(m *trace.Meta, code string) []trace.Gap {
	var out []trace.Gap
	for _, g := range m.Gaps {
		if g.Code == code {
			out = append(out, g)
		}
	}
	return out
}

var t0 = time.Date(2026, 3, 29, 0, 59, 30, 0, time.UTC)

// Two 30 s logs an hour apart: the hour between them is a gap, not an
// hour of 598 W (issue 17: 1,088,970 J integrated instead of 17,940 J).
func TestTwoLogsAnHourApartLeaveAGap(t *testing.T) {
	a := writeCSV(t, "a.csv", smiLog(t0, 30, 0))
	b := writeCSV(t, "b.csv", smiLog(t0.Add(time.Hour+29*time.Second), 30, 30))
	im := importFiles(t, a, b)
	if len(im.states) != 60 {
		t.Fatalf("%d rows, want the 60 logged", len(im.states))
	}
	gaps := gapsWith(im.meta, imports.GapCode)
	if len(gaps) != 1 || *gaps[0].GPU != 0 || gaps[0].Table != trace.TableState ||
		gaps[0].StartNs != t0.Add(29*time.Second).UnixNano() || gaps[0].EndNs != t0.Add(time.Hour+29*time.Second).UnixNano() {
		t.Fatalf("gaps %+v", im.meta.Gaps)
	}
	if !strings.Contains(gaps[0].Message, "no sample for 3600.000 s") || !strings.Contains(gaps[0].Message, "daylight-saving") {
		t.Errorf("message %q", gaps[0].Message)
	}
	if w := warning(im.meta, imports.GapCode, "1 gap(s) in the samples, 3600.000 s in all"); w == nil {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
}

// Summer time begins at 01:00 UTC in Europe: a log of local time jumps
// from 01:59:59 to 03:00:00. The jump is a gap (a pause of an hour would
// look the same), named as a possible daylight-saving change.
func TestDaylightSavingJumpForward(t *testing.T) {
	local := time.Date(2026, 3, 29, 1, 59, 50, 0, time.UTC) // as printed
	log := smiLog(local, 10, 0) + strings.TrimPrefix(smiLog(local.Add(time.Hour+10*time.Second), 10, 10), "timestamp, power.draw [W]\n")
	im := importFiles(t, writeCSV(t, "dst.csv", log))
	gaps := gapsWith(im.meta, imports.GapCode)
	if len(im.states) != 20 || len(gaps) != 1 || !strings.Contains(gaps[0].Message, "3601.000 s") {
		t.Fatalf("%d rows, gaps %+v", len(im.states), im.meta.Gaps)
	}
}

// Summer time ends: 02:59:59 is followed by 02:00:00. The rows after the
// step are shifted to follow on, never interleaved with the hour before,
// and the step is recorded with the time it assumed.
func TestClockBackIsMendedNotInterleaved(t *testing.T) {
	local := time.Date(2026, 10, 25, 2, 59, 0, 0, time.UTC)
	log := smiLog(local, 60, 0) + strings.TrimPrefix(smiLog(local.Add(-59*time.Minute), 60, 60), "timestamp, power.draw [W]\n")
	im := importFiles(t, writeCSV(t, "back.csv", log))
	if len(im.states) != 120 {
		t.Fatalf("%d rows", len(im.states))
	}
	for i, s := range im.states {
		if want := int64(598_000 + i); *s.AveragePowerMw != want {
			t.Fatalf("row %d holds line %d's value: the two hours were interleaved", i, *s.AveragePowerMw-598_000)
		}
		if want := local.Add(time.Duration(i) * time.Second).UnixNano(); s.TimestampNs != want {
			t.Fatalf("row %d at %d, want %d (one period after the row before)", i, s.TimestampNs, want)
		}
	}
	back := gapsWith(im.meta, imports.ClockBackCode)
	if len(back) != 1 || back[0].StartNs != local.Add(59*time.Second).UnixNano() || back[0].EndNs != local.Add(60*time.Second).UnixNano() ||
		!strings.Contains(back[0].Message, "back.csv:62: the log's clock goes back 3599.000 s") || !strings.Contains(back[0].Message, "shifted by 3600.000 s") {
		t.Fatalf("gaps %+v", im.meta.Gaps)
	}
	if len(gapsWith(im.meta, imports.GapCode)) != 0 {
		t.Errorf("a gap where the samples follow on: %+v", im.meta.Gaps)
	}
	if w := warning(im.meta, imports.ClockBackCode, "goes back 1 time(s) (3599.000 s at line 62)"); w == nil {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
}

// With several GPUs in one log, each GPU's clock steps are its own lines.
func TestClockBackSeveralGPUs(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp, index, power.draw [W]\n")
	times := []string{"10:00:00", "10:00:01", "10:00:02", "09:59:00", "09:59:01"}
	for _, ts := range times {
		for g := range 2 {
			fmt.Fprintf(&b, "2026/01/01 %s.000, %d, 100 W\n", ts, g)
		}
	}
	im := importFiles(t, writeCSV(t, "two.csv", b.String()))
	back := gapsWith(im.meta, imports.ClockBackCode)
	if len(back) != 2 || *back[0].GPU != 0 || *back[1].GPU != 1 {
		t.Fatalf("gaps %+v", im.meta.Gaps)
	}
	for _, s := range im.states {
		if s.TimestampNs < time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).UnixNano() {
			t.Errorf("a row left before the step: %+v", s)
		}
	}
}
