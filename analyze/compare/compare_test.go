package compare

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
)

// reference is testdata/reference.json, written by gen_reference.py from
// scipy.
type reference struct {
	ScipyVersion string `json:"scipy_version"`
	Confidence   float64
	UTests       []struct {
		Name   string
		X, Y   []float64
		Ties   bool
		Method string
		U, P   float64
	} `json:"utests"`
	Ratios []struct {
		Name         string
		A, B         []float64
		ThetaHat     float64   `json:"theta_hat"`
		ThetaStar    []float64 `json:"theta_star"`
		Acceleration float64
		BCa          [2]float64 `json:"bca"`
	} `json:"ratios"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.UTests) == 0 || len(ref.Ratios) == 0 {
		t.Fatal("reference.json holds no cases")
	}
	return ref
}

func near(got, want, rel float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

func TestMannWhitneyMatchesScipy(t *testing.T) {
	ref := loadReference(t)
	methods := map[string]int{}
	for _, c := range ref.UTests {
		got, err := MannWhitney(c.X, c.Y)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		methods[got.Method]++
		if got.Method != c.Method {
			t.Errorf("%s: method %s, want %s (ties %v, n %d+%d)", c.Name, got.Method, c.Method, c.Ties, len(c.X), len(c.Y))
		}
		if got.U != c.U {
			t.Errorf("%s: U = %g, scipy %g", c.Name, got.U, c.U)
		}
		// The exact p-values are ratios of counts: float64 counts agree
		// to rounding. The normal approximation goes through erfc.
		if !near(got.P, c.P, 1e-12) {
			t.Errorf("%s (%s): p = %.17g, scipy %.17g", c.Name, got.Method, got.P, c.P)
		}
		// Swapping the samples gives the other U and the same p.
		sw, err := MannWhitney(c.Y, c.X)
		if err != nil || sw.U != float64(len(c.X)*len(c.Y))-c.U || !near(sw.P, got.P, 1e-12) {
			t.Errorf("%s swapped: U %g p %g err %v; want U %g p %g", c.Name, sw.U, sw.P, err,
				float64(len(c.X)*len(c.Y))-c.U, got.P)
		}
	}
	for _, m := range []string{MethodExact, MethodExactTies, MethodNormal} {
		if methods[m] < 3 {
			t.Errorf("only %d reference cases use the %s method", methods[m], m)
		}
	}
}

func TestMannWhitneyErrors(t *testing.T) {
	for name, c := range map[string][2][]float64{
		"empty":     {{}, {1, 2}},
		"all equal": {{3, 3}, {3, 3, 3}},
		"NaN":       {{1, math.NaN()}, {2, 3}},
		"Inf":       {{1, 2}, {math.Inf(1), 3}},
	} {
		if _, err := MannWhitney(c[0], c[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMinExactP(t *testing.T) {
	for _, c := range []struct {
		n1, n2 int
		want   float64
	}{{5, 5, 2.0 / 252}, {3, 3, 0.1}, {2, 2, 1.0 / 3}, {1, 1, 1}, {4, 4, 2.0 / 70}} {
		if got := MinExactP(c.n1, c.n2); !near(got, c.want, 1e-14) {
			t.Errorf("MinExactP(%d, %d) = %g, want %g", c.n1, c.n2, got, c.want)
		}
	}
	// Two separated samples reach it.
	u, _ := MannWhitney([]float64{1, 2, 3, 4}, []float64{5, 6, 7, 8})
	if !near(u.P, MinExactP(4, 4), 1e-14) {
		t.Errorf("separated 4+4: p = %g, want %g", u.P, MinExactP(4, 4))
	}
}

func TestRatioBCaMatchesScipy(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Ratios {
		if got := RatioOfMeans(c.A, c.B); !near(got, c.ThetaHat, 1e-14) {
			t.Errorf("%s: ratio %g, scipy %g", c.Name, got, c.ThetaHat)
		}
		a := RatioAcceleration(c.A, c.B)
		if !near(a, c.Acceleration, 1e-9) && math.Abs(a-c.Acceleration) > 1e-15 {
			t.Errorf("%s: acceleration %.17g, scipy %.17g", c.Name, a, c.Acceleration)
		}
		iv := bootstrap.Interval{Estimate: RatioOfMeans(c.A, c.B), Confidence: ref.Confidence}
		iv = ratioInterval(iv, c.ThetaStar, a)
		if iv.Degenerate || !near(iv.Low, c.BCa[0], 1e-9) || !near(iv.High, c.BCa[1], 1e-9) {
			t.Errorf("%s: BCa [%.17g, %.17g] (%s), scipy [%.17g, %.17g]", c.Name, iv.Low, iv.High, iv.Note, c.BCa[0], c.BCa[1])
		}
	}
}

func TestRatioCI(t *testing.T) {
	a := []float64{10, 11, 9, 10.5, 9.5}
	b := []float64{5, 5.5, 4.5, 5.2, 4.8}
	opts := bootstrap.Options{Resamples: 2000, Confidence: 0.95, Seed: 3}
	iv := RatioCI(a, b, opts)
	if iv.Degenerate || !(iv.Low < iv.Estimate && iv.Estimate < iv.High) || !(iv.High < 0.6 && iv.Low > 0.4) {
		t.Errorf("ratio about 0.5: got %+v", iv)
	}
	if again := RatioCI(a, b, opts); again != iv {
		t.Errorf("same seed, different interval: %+v then %+v", iv, again)
	}
	opts.Seed = 4
	if other := RatioCI(a, b, opts); other.Low == iv.Low && other.High == iv.High {
		t.Error("another seed gives the same bounds")
	}
	for name, c := range map[string][2][]float64{
		"one value":     {{1}, {2, 3}},
		"empty":         {{}, {2, 3}},
		"zero baseline": {{0, 0}, {2, 3}},
		"both constant": {{2, 2, 2}, {3, 3}},
	} {
		iv := RatioCI(c[0], c[1], opts)
		if !iv.Degenerate || iv.Note == "" || !math.IsNaN(iv.Low) || !math.IsNaN(iv.High) {
			t.Errorf("%s: %+v, want a degenerate interval with a note", name, iv)
		}
	}
}

// The shipped H100 runs: batch 8 and batch 32, 5 cycles each.
const (
	bs8Run  = "../../testdata/runs/h100-bs8-cycles"
	bs32Run = "../../testdata/runs/h100-bs32-cycles"
)

func loadRun(t *testing.T, dir string) (Run, analyze.RunResult) {
	t.Helper()
	s := analyze.DefaultSettings()
	d, err := analyze.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rr := analyze.AnalyzeRun(d, dir, s)
	return FromAnalysis(d, &rr), rr
}

// The samples are what `llem analyze` reports: its per-cycle energy per
// token, and its pooled latency.
func TestSamplesAgreeWithAnalyze(t *testing.T) {
	for _, dir := range []string{bs8Run, bs32Run} {
		run, rr := loadRun(t, dir)
		if run.Cycles != 5 || rr.Cycles == nil || rr.Cycles.N != 5 {
			t.Fatalf("%s: %d cycles, want 5", dir, run.Cycles)
		}
		ept := run.Samples["energy_per_output_token_j"]
		if len(ept) != 5 {
			t.Fatalf("%s: %d energy-per-token samples", dir, len(ept))
		}
		for i, cv := range rr.Cycles.PerCycle {
			if ept[i] != float64(cv.EnergyPerOutputTokenJ) {
				t.Errorf("%s cycle %d: %g J/token, analyze %g", dir, cv.Cycle, ept[i], float64(cv.EnergyPerOutputTokenJ))
			}
		}
		// The same BCa interval as analyze's (same data, options, seed).
		est := estimate(ept, DefaultSettings())
		if a := rr.Cycles.EnergyPerOutputTokenJ; est.Estimate != a.Estimate || est.Low != a.Low || est.High != a.High {
			t.Errorf("%s: %g [%g, %g], analyze %g [%g, %g]", dir, est.Estimate, est.Low, est.High, a.Estimate, a.Low, a.High)
		}
		for key, lm := range map[string]*analyze.LatencyMetric{"ttft_s": rr.Latency.TTFT, "itl_s": rr.Latency.ITL} {
			x := run.Samples[key]
			if len(x) != rr.Latency.Requests || mean(x) != lm.Mean.Estimate {
				t.Errorf("%s %s: %d requests, mean %g; analyze %d, %g", dir, key, len(x), mean(x), rr.Latency.Requests, lm.Mean.Estimate)
			}
		}
		for _, key := range []string{"output_tokens_per_s", "mean_power_w", "energy_per_request_j"} {
			if len(run.Samples[key]) != 5 {
				t.Errorf("%s %s: %d samples, want 5", dir, key, len(run.Samples[key]))
			}
		}
		// Each request makes 128 tokens: energy per request is 128 times
		// energy per token in every cycle.
		for i, e := range run.Samples["energy_per_request_j"] {
			if !near(e, 128*ept[i], 1e-12) {
				t.Errorf("%s cycle %d: %g J/request, %g J/token", dir, i+1, e, ept[i])
			}
		}
	}
}

// Batch 32 spends clearly less energy per token than batch 8 on the H100:
// the change is large, negative, its CI excludes 0, and the U test finds
// it at the smallest p five cycles a side allow.
func TestRealRunsBatch8VersusBatch32(t *testing.T) {
	r8, _ := loadRun(t, bs8Run)
	r32, _ := loadRun(t, bs32Run)
	res, err := Compare([]Run{r8, r32}, DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]MetricResult{}
	for _, m := range res.Metrics {
		byKey[m.Key] = m
	}
	ept := byKey["energy_per_output_token_j"].Rows[1]
	if ept.Group != bs32Run || ept.Change == nil || ept.Test == nil {
		t.Fatalf("second row: %+v", ept)
	}
	if c := ept.Change; !(c.Pct < -60 && c.PctHigh < 0 && c.PctLow < c.Pct && c.Pct < c.PctHigh) {
		t.Errorf("energy per token change %g%% [%g, %g], want a clear decrease", float64(c.Pct), float64(c.PctLow), float64(c.PctHigh))
	}
	if tt := ept.Test; tt.Method != MethodExact || !near(float64(tt.P), 2.0/252, 1e-12) || !tt.Significant {
		t.Errorf("U test %+v, want exact p = 2/252, significant", tt)
	}
	tps := byKey["output_tokens_per_s"].Rows[1]
	if !(tps.Change.Pct > 100) || !tps.Test.Significant {
		t.Errorf("tokens/s: %+v %+v, want a large significant increase", tps.Change, tps.Test)
	}
}

func synthRun(name string, labels map[string]string, vals ...float64) Run {
	r := Run{Name: name, Labels: labels, Cycles: len(vals), Samples: map[string][]float64{}}
	if len(vals) == 1 {
		r.Cycles = 0
	}
	for _, m := range Metrics {
		r.Samples[m.Key] = append([]float64(nil), vals...)
	}
	return r
}

func TestGroupBy(t *testing.T) {
	runs := []Run{
		synthRun("a", map[string]string{"batch": "8"}, 10, 11, 12),
		synthRun("b", map[string]string{"batch": "32"}, 5, 6, 5.5),
		synthRun("c", map[string]string{"batch": "8"}, 10.5, 11.5),
		synthRun("d", map[string]string{"batch": "32"}, 6.5),
	}
	s := DefaultSettings()
	s.GroupBy = "batch"
	res, err := Compare(runs, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 2 || res.Groups[0].Name != "batch=8" || !res.Groups[0].Baseline ||
		strings.Join(res.Groups[0].Runs, ",") != "a,c" || strings.Join(res.Groups[1].Runs, ",") != "b,d" {
		t.Fatalf("groups %+v", res.Groups)
	}
	rows := res.Metrics[0].Rows
	if rows[0].N != 5 || rows[1].N != 4 || rows[1].Samples[3] != 6.5 {
		t.Errorf("pooled rows %+v", rows)
	}
	// --baseline moves the named configuration first.
	s.Baseline = "32"
	res, err = Compare(runs, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups[0].Name != "batch=32" || !res.Groups[0].Baseline || res.Groups[1].Baseline {
		t.Errorf("--baseline 32: groups %+v", res.Groups)
	}
	if c := res.Metrics[0].Rows[1].Change; !(c.Pct > 0) {
		t.Errorf("batch 8 against batch 32: change %g%%, want positive", float64(c.Pct))
	}
	if res.Runs[3].Group != "batch=32" {
		t.Errorf("run d in group %q", res.Runs[3].Group)
	}
}

func TestCompareErrors(t *testing.T) {
	a := synthRun("a", map[string]string{"batch": "8"}, 1, 2)
	b := synthRun("b", map[string]string{"batch": "8", "x": "y"}, 3, 4)
	c := synthRun("c", map[string]string{}, 3, 4)
	for name, tc := range map[string]struct {
		runs []Run
		set  func(*Settings)
		want string
	}{
		"one run":        {[]Run{a}, func(*Settings) {}, "at least two"},
		"one group":      {[]Run{a, b}, func(s *Settings) { s.GroupBy = "batch" }, `values of the label "batch"`},
		"missing label":  {[]Run{a, b, c}, func(s *Settings) { s.GroupBy = "x" }, "a (labels: batch=8)"},
		"no labels":      {[]Run{a, c}, func(s *Settings) { s.GroupBy = "batch" }, "c (labels: none)"},
		"bad baseline":   {[]Run{a, c}, func(s *Settings) { s.Baseline = "zz" }, "--baseline zz"},
		"bad alpha":      {[]Run{a, c}, func(s *Settings) { s.Alpha = 1 }, "--alpha"},
		"bad confidence": {[]Run{a, c}, func(s *Settings) { s.Confidence = 0 }, "--confidence"},
		"bad resamples":  {[]Run{a, c}, func(s *Settings) { s.Resamples = 0 }, "--resamples"},
	} {
		s := DefaultSettings()
		tc.set(&s)
		_, err := Compare(tc.runs, s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// A run without cycles is one sample: an estimate, no CI, no test, and
// the table says so.
func TestSingleSample(t *testing.T) {
	runs := []Run{synthRun("a", nil, 10), synthRun("b", nil, 12)}
	res, err := Compare(runs, DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	row := res.Metrics[0].Rows[1]
	if row.Estimate.Estimate != 12 || !row.Estimate.Degenerate || row.Test.P.Valid() || row.Test.Note == "" ||
		!near(float64(row.Change.Pct), 20, 1e-12) || !row.Change.Ratio.Degenerate {
		t.Errorf("single samples: %+v %+v %+v", row.Estimate, row.Change, row.Test)
	}
	var b bytes.Buffer
	if err := Table(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"no test", "one sample", "+20.00%", "no cycles", "record with --cycles 5"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Too few cycles for the test to ever reach alpha: the note says so, and
// the change reads ~.
func TestTooFewForSignificance(t *testing.T) {
	runs := []Run{synthRun("a", nil, 1, 2, 3), synthRun("b", nil, 4, 5, 6)}
	res, err := Compare(runs, DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	tt := res.Metrics[0].Rows[1].Test
	if !near(float64(tt.P), 0.1, 1e-12) || tt.Significant || !strings.Contains(tt.Note, "smallest possible p is 0.1") {
		t.Errorf("3+3 separated: %+v", tt)
	}
	var b bytes.Buffer
	if err := Table(&b, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "  ~  ") {
		t.Errorf("no ~ in\n%s", b.String())
	}
}

// Same inputs and seed: byte-identical JSON, text and CSV; the CSV has a
// row per metric and configuration.
func TestDeterministicOutput(t *testing.T) {
	r8, _ := loadRun(t, bs8Run)
	r32, _ := loadRun(t, bs32Run)
	render := func() (string, string, string) {
		res, err := Compare([]Run{r8, r32}, DefaultSettings())
		if err != nil {
			t.Fatal(err)
		}
		var j, tx, c bytes.Buffer
		if err := JSON(&j, res); err != nil {
			t.Fatal(err)
		}
		if err := Table(&tx, res); err != nil {
			t.Fatal(err)
		}
		if err := CSV(&c, res); err != nil {
			t.Fatal(err)
		}
		return j.String(), tx.String(), c.String()
	}
	j1, t1, c1 := render()
	j2, t2, c2 := render()
	if j1 != j2 || t1 != t2 || c1 != c2 {
		t.Error("two comparisons of the same runs differ")
	}
	recs, err := csv.NewReader(strings.NewReader(c1)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+2*len(Metrics) || len(recs[0]) != len(CSVHeader) {
		t.Errorf("CSV: %d rows of %d columns", len(recs), len(recs[0]))
	}
	var back Result
	if err := json.Unmarshal([]byte(j1), &back); err != nil || len(back.Metrics) != len(Metrics) {
		t.Errorf("JSON does not read back: %v", err)
	}
}
