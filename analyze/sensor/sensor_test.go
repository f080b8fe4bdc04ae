package sensor

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/internal/order"
)

const ms = int64(time.Millisecond)

// steppedSensor samples, at times ts, a sensor that takes a new value every
// periodNs starting at phaseNs: value k+1 from phaseNs + k*periodNs on (and
// 0 before the first update). The steps are small and noise-free.
func steppedSensor(ts []int64, periodNs, phaseNs int64) []float64 {
	v := make([]float64, len(ts))
	for i, t := range ts {
		if t >= phaseNs {
			v[i] = 50 + 0.25*float64((t-phaseNs)/periodNs+1)
		}
	}
	return v
}

// regular returns n timestamps from t0, stepNs apart.
func regular(t0, stepNs int64, n int) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = t0 + int64(i)*stepNs
	}
	return ts
}

func checkClose(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.6g, want %.6g ± %g", what, got, want, tol)
	}
}

func checkNaN(t *testing.T, what string, got float64) {
	t.Helper()
	if !math.IsNaN(got) {
		t.Errorf("%s = %g, want NaN", what, got)
	}
}

// A 100 ms sensor polled every 10 ms for 10 s: every change is seen exactly
// 100 ms after the one before.
func TestUpdatePeriodRegularPolling(t *testing.T) {
	ts := regular(0, 10*ms, 1001) // 0 .. 10 s
	v := steppedSensor(ts, 100*ms, 3*ms)
	c := Characterise(ts, v, 0, 10_000*ms)
	if c.Samples != 1001 {
		t.Errorf("Samples = %d, want 1001", c.Samples)
	}
	// Updates at 3, 103, ..., 9903 ms: 100, each seen at the next 10 ms poll.
	if c.Updates != 100 {
		t.Errorf("Updates = %d, want 100", c.Updates)
	}
	checkClose(t, "UpdatePeriodMs", c.UpdatePeriodMs, 100, 1e-9)
	checkClose(t, "SampleRateHz", c.SampleRateHz, 100, 1e-9)
	checkClose(t, "CoveragePct", c.CoveragePct, 100, 1e-9)
}

// Polling jittered like nvidia-smi (7 to 13 ms): single intervals between
// changes are off by up to a polling interval, the median is not.
func TestUpdatePeriodJitteredPolling(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ts []int64
	for t := int64(0); t <= 20_000*ms; t += 7*ms + rng.Int64N(6*ms+1) {
		ts = append(ts, t)
	}
	v := steppedSensor(ts, 100*ms, 41*ms)
	// One update that repeats the previous value (the sensor read the same
	// power twice) doubles one interval; the median does not move.
	for i, t := range ts {
		if t >= 5041*ms && t < 5141*ms {
			v[i] -= 0.25
		}
	}
	c := Characterise(ts, v, 0, 20_000*ms)
	if c.Updates != 199 {
		t.Errorf("Updates = %d, want 199 (200 updates, one a repeat)", c.Updates)
	}
	checkClose(t, "UpdatePeriodMs", c.UpdatePeriodMs, 100, 2)
	checkClose(t, "SampleRateHz", c.SampleRateHz, 100, 3)
	checkClose(t, "CoveragePct", c.CoveragePct, 100, 1e-9)
}

// A 1 s hole in a 10 s recording at 100 Hz leaves 90% covered.
func TestCoverageGap(t *testing.T) {
	var ts []int64
	for _, t := range regular(0, 10*ms, 1001) {
		if t <= 4000*ms || t >= 5000*ms {
			ts = append(ts, t)
		}
	}
	v := steppedSensor(ts, 100*ms, 3*ms)
	c := Characterise(ts, v, 0, 10_000*ms)
	if c.Samples != 902 { // 0 .. 4 s and 5 .. 10 s
		t.Errorf("Samples = %d, want 902", c.Samples)
	}
	checkClose(t, "CoveragePct", c.CoveragePct, 90, 1e-9)
	// The hole hides nine updates; the median interval is still 100 ms.
	checkClose(t, "UpdatePeriodMs", c.UpdatePeriodMs, 100, 1e-9)

	// A gap of exactly GapFactor median intervals is not a hole; one just
	// longer is.
	for _, tc := range []struct {
		gap  int64
		hole bool
	}{
		{30 * ms, false},
		{31 * ms, true},
	} {
		ts := regular(0, 10*ms, 501) // 0 .. 5 s, then a gap, then 1,000 more samples
		ts = append(ts, regular(5000*ms+tc.gap, 10*ms, 1000)...)
		end := ts[len(ts)-1]
		c := Characterise(ts, make([]float64, len(ts)), 0, end)
		want := 100.0
		if tc.hole {
			want = 100 * float64(end-tc.gap) / float64(end)
		}
		checkClose(t, fmt.Sprintf("CoveragePct with a %d ms gap", tc.gap/ms), c.CoveragePct, want, 1e-9)
	}
}

// The stretches between the window's ends and the first and last samples
// follow the same rule as gaps between samples.
func TestCoverageWindowEdges(t *testing.T) {
	ts := regular(0, 10*ms, 1001) // 0 .. 10 s
	v := steppedSensor(ts, 100*ms, 3*ms)

	c := Characterise(ts, v, -5*ms, 10_005*ms)
	checkClose(t, "CoveragePct, window 5 ms wider each side", c.CoveragePct, 100, 1e-9)

	c = Characterise(ts, v, -1000*ms, 10_000*ms)
	checkClose(t, "CoveragePct, window starting 1 s before the first sample", c.CoveragePct, 100*10.0/11.0, 1e-9)

	// Only samples inside the window count.
	c = Characterise(ts, v, 2000*ms, 3000*ms)
	if c.Samples != 101 || c.Updates != 10 {
		t.Errorf("window [2 s, 3 s]: Samples, Updates = %d, %d; want 101, 10", c.Samples, c.Updates)
	}
	checkClose(t, "UpdatePeriodMs in [2 s, 3 s]", c.UpdatePeriodMs, 100, 1e-9)
	checkClose(t, "CoveragePct in [2 s, 3 s]", c.CoveragePct, 100, 1e-9)
}

func TestTooFewSamples(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ts           []int64
		v            []float64
		start, end   int64
		samples, upd int
	}{
		{"nil", nil, nil, 0, 1000 * ms, 0, 0},
		{"empty", []int64{}, []float64{}, 0, 1000 * ms, 0, 0},
		{"one sample", []int64{5 * ms}, []float64{80}, 0, 1000 * ms, 1, 0},
		{"none in the window", []int64{0, 10 * ms, 20 * ms}, []float64{1, 2, 3}, 100 * ms, 200 * ms, 0, 0},
		{"one change", []int64{0, 10 * ms, 20 * ms}, []float64{1, 1, 2}, 0, 20 * ms, 3, 1},
		{"reversed window", []int64{0, 10 * ms}, []float64{1, 2}, 20 * ms, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Characterise(tc.ts, tc.v, tc.start, tc.end)
			if c.Samples != tc.samples || c.Updates != tc.upd {
				t.Errorf("Samples, Updates = %d, %d; want %d, %d", c.Samples, c.Updates, tc.samples, tc.upd)
			}
			checkNaN(t, "UpdatePeriodMs", c.UpdatePeriodMs)
			if tc.samples < 2 {
				checkNaN(t, "SampleRateHz", c.SampleRateHz)
				checkNaN(t, "CoveragePct", c.CoveragePct)
			}
		})
	}
	// Two samples at one instant: no rate, and a zero-length window has no coverage.
	c := Characterise([]int64{7, 7}, []float64{1, 2}, 7, 7)
	checkNaN(t, "SampleRateHz of two samples at one instant", c.SampleRateHz)
	checkNaN(t, "CoveragePct of a zero-length window", c.CoveragePct)
}

// NaN readings (a field that failed) repeat like any value.
func TestNaNValuesAreNotChanges(t *testing.T) {
	nan := math.NaN()
	c := Characterise([]int64{0, 10 * ms, 20 * ms, 30 * ms, 40 * ms}, []float64{1, nan, nan, nan, 1}, 0, 40*ms)
	if c.Updates != 2 {
		t.Errorf("Updates = %d, want 2 (to NaN and back)", c.Updates)
	}
}

// Unsorted or mismatched input is not supported, but must not panic.
func TestBadInputDoesNotPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ts := regular(0, 10*ms, 500)
	v := steppedSensor(ts, 100*ms, 3*ms)
	rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
	c := Characterise(ts, v, 0, 5000*ms)
	if c.Samples != 500 {
		t.Errorf("unsorted: Samples = %d, want 500", c.Samples)
	}
	if p := c.CoveragePct; !math.IsNaN(p) && (p < 0 || p > 100) {
		t.Errorf("unsorted: CoveragePct = %g, outside [0, 100]", p)
	}
	Characterise(ts[:10], v, 0, 5000*ms)
	Characterise(ts, v[:10], 0, 5000*ms)
}

func TestJSON(t *testing.T) {
	ts := regular(0, 10*ms, 1001)
	for _, c := range []Characterisation{
		Characterise(ts, steppedSensor(ts, 100*ms, 3*ms), 0, 10_000*ms),
		Characterise(nil, nil, 0, 1),
	} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", c, err)
		}
		var back Characterisation
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if fmt.Sprint(back) != fmt.Sprint(c) { // fmt prints NaN as NaN, so NaN == NaN here
			t.Errorf("round trip: %+v -> %s -> %+v", c, b, back)
		}
	}
	b, _ := json.Marshal(Characterise(nil, nil, 0, 1))
	if want := `{"samples":0,"updates":0,"update_period_ms":null,"sample_rate_hz":null,"coverage_pct":null}`; string(b) != want {
		t.Errorf("empty window: got %s, want %s", b, want)
	}
}

// The published number: Yang, Adamek and Armour measured an update period
// of 20 ms for the V100-SXM2 (arXiv:2312.02741, their Overall_Results.xlsx),
// from this very trace of theirs (see testdata/README.md).
func TestV100UpdatePeriod(t *testing.T) {
	ts, cols := readNvidiaSmiCSV(t, filepath.Join("testdata", "pwr_update_freq_V100_gpudata.csv"),
		"power.draw [W]", "power.draw.instant [W]")
	if len(ts) != 20542 {
		t.Fatalf("read %d rows, want 20542", len(ts))
	}
	for name, v := range cols {
		c := Characterise(ts, v, ts[0], ts[len(ts)-1])
		t.Logf("%s: %+v", name, c)
		checkClose(t, name+" UpdatePeriodMs", c.UpdatePeriodMs, 20, 1)
		// nvidia-smi polled every 7 to 13 ms: about 100 Hz, with no holes.
		checkClose(t, name+" SampleRateHz", c.SampleRateHz, 100, 5)
		if c.CoveragePct < 99 {
			t.Errorf("%s CoveragePct = %g, want at least 99", name, c.CoveragePct)
		}
	}
}

// readNvidiaSmiCSV reads `nvidia-smi --query-gpu=timestamp,... --format=csv`
// output: a header, then rows whose first field is a local timestamp such as
// "2023/07/30 18:26:14.684" (read as UTC: only differences matter). It
// returns the timestamps in ns and the named numeric columns.
func readNvidiaSmiCSV(t *testing.T, path string, names ...string) ([]int64, map[string][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	idx := map[string]int{}
	for _, name := range names {
		i := indexOf(header, name)
		if i < 0 {
			t.Fatalf("%s: no column %q in %q", path, name, header)
		}
		idx[name] = i
	}
	var ts []int64
	cols := map[string][]float64{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		tm, err := time.Parse("2006/01/02 15:04:05.000", rec[0])
		if err != nil {
			t.Fatalf("%s: line %d: timestamp: %v", path, line, err)
		}
		ts = append(ts, tm.UnixNano())
		for name, i := range idx {
			x, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil {
				t.Fatalf("%s: line %d: %s: %v", path, line, name, err)
			}
			cols[name] = append(cols[name], x)
		}
	}
	return ts, cols
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if strings.TrimSpace(v) == x {
			return i
		}
	}
	return -1
}

// spans hold their values as int32 until one does not fit, then as int64:
// the values kept and their median are those of an int64 slice, wherever
// the first wide value comes (first, middle, last, never).
func TestSpansMatchInt64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 400 {
		n := 1 + r.IntN(200)
		vals := make([]int64, n)
		for i := range vals {
			vals[i] = int64(r.IntN(40)) * ms / 2 // repeats, as sample intervals have
			if r.IntN(10) == 0 {
				vals[i] = -vals[i] // unsorted input
			}
		}
		switch trial % 4 {
		case 1:
			vals[0] = 3 * int64(math.MaxInt32)
		case 2:
			vals[n/2] = -5_000_000_000 // past int32 below
		case 3:
			vals[n-1] = int64(math.MaxInt32) + 1
		}
		s := newSpans(n / 2) // room too small: grows too
		for _, v := range vals {
			s.add(v)
		}
		var got []int64
		if s.wide != nil {
			got = append(got, s.wide...)
		} else {
			for _, v := range s.small {
				got = append(got, int64(v))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(vals) {
			t.Fatalf("trial %d: kept %v, added %v", trial, got, vals)
		}
		if wantWide := trial%4 != 0; (s.wide != nil) != wantWide {
			t.Errorf("trial %d: wide %v, want %v", trial, s.wide != nil, wantWide)
		}
		want := order.Median(vals)
		if m := s.medianInPlace(); m != want {
			t.Errorf("trial %d: median %v, want %v", trial, m, want)
		}
	}
}

// A gap longer than an int32 of nanoseconds (2.1 s) in the middle of a
// series: the characterisation is that of the same samples with every
// interval known to be held as int64, here the gap's own hole.
func TestCoverageGapPastInt32(t *testing.T) {
	ts := regular(0, 10*ms, 301) // 0 .. 3 s
	ts = append(ts, regular(6000*ms, 10*ms, 401)...)
	v := steppedSensor(ts, 100*ms, 3*ms)
	c := Characterise(ts, v, 0, 10_000*ms)
	if c.Samples != 702 {
		t.Errorf("Samples = %d, want 702", c.Samples)
	}
	checkClose(t, "CoveragePct", c.CoveragePct, 70, 1e-9) // the 3 s hole: 3..6 s
	checkClose(t, "UpdatePeriodMs", c.UpdatePeriodMs, 100, 1e-9)
}
