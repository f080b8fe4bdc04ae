package ptdaemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/trace/imports"
)

// splLog is a PTDaemon log of one reading a second from start at 595 W
// (plus i mW for the i-th line, to follow the rows' order).
func splLog(start time.Time, n, first int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Time,%s,Watts,%.3f,Volts,230.0,Amps,2.6,PF,0.99,Mark,test\n",
			start.Add(time.Duration(i)*time.Second).Format("01-02-2006 15:04:05.000"), 595+float64(first+i)/1000)
	}
	return b.String()
}

var t0 = time.Date(2024, 7, 17, 7, 0, 0, 0, time.UTC)

// A log that stops for 29 minutes and goes on: the pause is a gap, not 29
// minutes at 595 W (issue 17: 1,799,500 J integrated instead of 59,500 J).
func TestPTDaemonGap(t *testing.T) {
	spl := writeFile(t, "spl.txt", splLog(t0, 50, 0)+splLog(t0.Add(30*time.Minute), 50, 50))
	im := importFiles(t, spl, Options{})
	if len(im.states) != 100 || len(im.meta.Gaps) != 1 {
		t.Fatalf("%d rows, gaps %+v", len(im.states), im.meta.Gaps)
	}
	g := im.meta.Gaps[0]
	if g.Code != imports.GapCode || g.StartNs != t0.Add(49*time.Second).UnixNano() || g.EndNs != t0.Add(30*time.Minute).UnixNano() {
		t.Errorf("gap %+v", g)
	}
}

// The director's clock set back by 10 minutes mid-run: the later samples
// are shifted to follow on, and the loadgen window is warned about.
func TestPTDaemonClockBack(t *testing.T) {
	spl := writeFile(t, "spl.txt", splLog(t0, 50, 0)+splLog(t0.Add(-10*time.Minute), 50, 50))
	lg := writeFile(t, "detail.txt", strings.Join([]string{
		`:::MLLOG {"key": "power_begin", "value": "07-17-2024 07:00:10.000", "time_ms": 1, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "x", "line_no": 1, "pid": 1, "tid": 1}}`,
		`:::MLLOG {"key": "power_end", "value": "07-17-2024 07:00:40.000", "time_ms": 2, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "x", "line_no": 2, "pid": 1, "tid": 1}}`,
	}, "\n")+"\n")
	im := importFiles(t, spl, Options{Loadgen: lg})
	for i, s := range im.states {
		if *s.InstantPowerMw != int64(595_000+i) || s.TimestampNs != t0.Add(time.Duration(i)*time.Second).UnixNano() {
			t.Fatalf("row %d: %d mW at %d: interleaved or not one period apart", i, *s.InstantPowerMw, s.TimestampNs)
		}
	}
	if len(im.meta.Gaps) != 1 || im.meta.Gaps[0].Code != imports.ClockBackCode || !strings.Contains(im.meta.Gaps[0].Message, "spl.txt:51:") {
		t.Errorf("gaps %+v", im.meta.Gaps)
	}
	if warning(im.meta, "import_window_clock_back", "may not line up") == nil {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
}
