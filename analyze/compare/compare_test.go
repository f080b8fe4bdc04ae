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
	// The file's "ratios" are the two-sample bootstrap's references,
	// read by analyze/bootstrap's tests.
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
	if len(ref.UTests) == 0 {
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

// The shipped H100 runs: batch 8 and batch 32, 5 cycles each.
const (
	bs8Run  = "../../testdata/runs/h100-bs8-cycles"
	bs32Run = "../../testdata/runs/h100-bs32-cycles"
)

func loadRun(t *testing.T, dir string) (Samples, analyze.RunResult) {
	t.Helper()
	runs, err := analyze.Open([]string{dir}, analyze.DefaultSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return SamplesOf(runs[0]), runs[0].Result
}

// settings are the default analysis settings and comparison options, set
// by set.
func compareWith(t *testing.T, runs []Samples, set func(*analyze.Settings, *Options)) (*Result, error) {
	t.Helper()
	s, o := analyze.DefaultSettings(), DefaultOptions()
	if set != nil {
		set(&s, &o)
	}
	return compareSamples(runs, s, o)
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
		est := estimate(ept, analyze.DefaultSettings())
		if a := rr.Cycles.EnergyPerOutputTokenJ; est.Estimate != a.Estimate || est.Low != a.Low || est.High != a.High {
			t.Errorf("%s: %g [%g, %g], analyze %g [%g, %g]", dir, est.Estimate, est.Low, est.High, a.Estimate, a.Low, a.High)
		}
		for key, lm := range map[string]*analyze.LatencyMetric{"ttft_s": rr.Latency.TTFT, "itl_s": rr.Latency.ITL} {
			x := run.Samples[key]
			if len(x) != rr.Latency.Requests || bootstrap.Mean.Func(x) != lm.Mean.Estimate {
				t.Errorf("%s %s: %d requests, mean %g; analyze %d, %g", dir, key, len(x), bootstrap.Mean.Func(x), rr.Latency.Requests, lm.Mean.Estimate)
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
	res, err := compareWith(t, []Samples{r8, r32}, nil)
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

func synthRun(name string, labels map[string]string, vals ...float64) Samples {
	r := Samples{Name: name, Labels: labels, Cycles: len(vals), Samples: map[string][]float64{}}
	if len(vals) == 1 {
		r.Cycles = 0
	}
	for _, m := range Metrics {
		r.Samples[m.Key] = append([]float64(nil), vals...)
	}
	return r
}

func TestGroupBy(t *testing.T) {
	runs := []Samples{
		synthRun("a", map[string]string{"batch": "8"}, 10, 11, 12),
		synthRun("b", map[string]string{"batch": "32"}, 5, 6, 5.5),
		synthRun("c", map[string]string{"batch": "8"}, 10.5, 11.5),
		synthRun("d", map[string]string{"batch": "32"}, 6.5),
	}
	res, err := compareWith(t, runs, func(_ *analyze.Settings, o *Options) { o.GroupBy = "batch" })
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
	res, err = compareWith(t, runs, func(_ *analyze.Settings, o *Options) { o.GroupBy, o.Baseline = "batch", "32" })
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
		runs []Samples
		set  func(*analyze.Settings, *Options)
		want string
	}{
		"one run":        {[]Samples{a}, nil, "at least two"},
		"one group":      {[]Samples{a, b}, func(_ *analyze.Settings, o *Options) { o.GroupBy = "batch" }, `values of the label "batch"`},
		"missing label":  {[]Samples{a, b, c}, func(_ *analyze.Settings, o *Options) { o.GroupBy = "x" }, "a (labels: batch=8)"},
		"no labels":      {[]Samples{a, c}, func(_ *analyze.Settings, o *Options) { o.GroupBy = "batch" }, "c (labels: none)"},
		"bad baseline":   {[]Samples{a, c}, func(_ *analyze.Settings, o *Options) { o.Baseline = "zz" }, "baseline: zz"},
		"bad alpha":      {[]Samples{a, c}, func(_ *analyze.Settings, o *Options) { o.Alpha = 1 }, "alpha:"},
		"bad confidence": {[]Samples{a, c}, func(s *analyze.Settings, _ *Options) { s.Confidence = 0 }, "confidence:"},
		"bad resamples":  {[]Samples{a, c}, func(s *analyze.Settings, _ *Options) { s.Resamples = 0 }, "resamples:"},
	} {
		_, err := compareWith(t, tc.runs, tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// A run without cycles is one sample: an estimate, no CI, no test, and
// the table says so.
func TestSingleSample(t *testing.T) {
	runs := []Samples{synthRun("a", nil, 10), synthRun("b", nil, 12)}
	res, err := compareWith(t, runs, nil)
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
	for _, want := range []string{"no test", "one sample", "+20.00%", "no cycles", "record 5 cycles or more"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Too few cycles for the test to ever reach alpha: the note says so, and
// the change reads ~.
func TestTooFewForSignificance(t *testing.T) {
	runs := []Samples{synthRun("a", nil, 1, 2, 3), synthRun("b", nil, 4, 5, 6)}
	res, err := compareWith(t, runs, nil)
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
		res, err := compareWith(t, []Samples{r8, r32}, nil)
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
