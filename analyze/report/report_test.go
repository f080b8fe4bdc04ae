package report

import (
	"bytes"
	"encoding/csv"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
)

// results is one run with two windows: a measured one with every number
// and a phase where nothing but the time span could be measured.
func results() *analyze.Results {
	s := analyze.DefaultSettings()
	nan := analyze.NaN
	return &analyze.Results{
		Tool: "llem", LlemVersion: "test", Settings: s, SettingsHash: s.Hash(),
		Runs: []analyze.RunResult{{
			Run: "runs/a", RunID: "0123456789abcdef", Complete: true, Status: "complete", Device: "sim",
			Labels: map[string]string{"study": "unit", "batch": "8"},
			GPUs:   []analyze.GPUSummary{{Index: 0, Name: "Sim GPU", PowerLimitW: 700}},
			Windows: []analyze.WindowResult{
				{
					Name: "measure", Kind: "phase", Cycle: 1, Measured: true, StartS: 10, EndS: 20, DurationS: 10,
					EnergyPerOutputTokenJ: 1.25, OutputTokens: 1600, OutputTokensPerS: 160, Requests: 8, EnergyPerRequestJ: 250,
					EnergyJ: 2000, EnergyIntegratedJ: 2010, DisagreementPct: 0.5, EnergyAdjustedJ: 800,
					MeanPowerW: 200, P5PowerW: 190, P95PowerW: 210, MaxPowerW: 230,
					UncertaintyPct: 2.6, SpecUncertaintyPct: 2.5, EdgeUncertaintyPct: 1, Samples: 500, SensorUpdates: 100,
					Warnings: []analyze.Warning{{Code: "short_window", Message: "short"}, {Code: "thermal", Message: "hot"}},
				},
				{
					Name: "gap", Kind: "phase", Cycle: 0, StartS: 20, EndS: 20.5, DurationS: 0.5,
					EnergyPerOutputTokenJ: nan, OutputTokens: nan, OutputTokensPerS: nan, EnergyPerRequestJ: nan,
					EnergyJ: nan, EnergyIntegratedJ: nan, DisagreementPct: nan, EnergyAdjustedJ: nan,
					MeanPowerW: nan, P5PowerW: nan, P95PowerW: nan, MaxPowerW: analyze.Num(math.Inf(1)),
					UncertaintyPct: nan, SpecUncertaintyPct: nan, EdgeUncertaintyPct: nan,
					Warnings: []analyze.Warning{},
				},
			},
			SteadyState: &analyze.SteadyResult{Method: "pelt", Window: "measure", Cycle: 1, Class: "none",
				StartS: nan, EndS: nan, BinMs: 100, Note: "no steady state"},
			Thermal: []analyze.ThermalResult{{Window: "measure", Cycle: 1, GPUs: []analyze.GPUThermal{{
				GPU: 0, TempStartC: nan, TempEndC: nan, TempMinC: nan, TempMaxC: nan, TempSlopeCPerMin: nan, TempChangeC: nan, TempTrendP: nan, SMClockMinMHz: nan, SMClockMaxMHz: nan,
				SMClockRangePct: nan, LoadedBeforeS: nan}}}},
			Baseline: analyze.BaselineResult{P0: &analyze.Baseline{Source: "phases p0_hold", DurationS: 3,
				MedianW: bootstrap.Interval{Estimate: 122, Low: math.NaN(), High: math.NaN(), Degenerate: true}}},
			Sensor:   analyze.SensorResult{DriverPowerUpdatePeriodMs: 20, InstantPowerUpdatePeriodMs: nan, AveragePowerUpdatePeriodMs: nan},
			Cycles:   &analyze.CycleResult{N: 1, Note: "1 cycle(s): at least 5 are needed"},
			Warnings: []analyze.Warning{},
		}},
	}
}

func TestTableMissingValues(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, results()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(strings.ToLower(out), "nan") || strings.Contains(out, "Inf") {
		t.Errorf("table prints NaN or Inf:\n%s", out)
	}
	for _, want := range []string{
		"run       runs/a  [complete, sim]\n",
		"labels    batch=8 study=unit\n",
		"settings  " + results().SettingsHash[:19] + " (BCa 2000 resamples, 95%, seed 0; steady pelt)\n",
		"cycles    n=1; 1 cycle(s): at least 5 are needed\n",
		"steady    none by pelt in measure, cycle 1; no steady state\n",
		"baseline  idle: none found\n",
		"baseline  P0 122.0 (no CI) W median (phases p0_hold, 3.0 s)\n",
		"thermal   measure (cycle 1) GPU 0: -..- C seen, - C/min, change - C (no temperature), SM -..- MHz, under load - s before\n",
		"sensors   update period: instant power - ms, driver buffer 20.0 ms, 1 s average - ms\n",
		"warnings  none\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "latency") {
		t.Errorf("table shows latency without any:\n%s", out)
	}

	// The window rows: the primary metric before energy; every value of
	// the empty window is "-" (its times and the cycle column aside).
	rows := map[string][]string{}
	var header []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "window":
			header = f
		case len(f) > 1 && f[0] == "*" && f[1] == "measure":
			rows["measure"] = f[2:]
		case len(f) > 0 && f[0] == "gap":
			rows["gap"] = f[1:]
		}
	}
	if i, j := slices.Index(header, "J/out-token"), slices.Index(header, "energy"); i < 0 || j < 0 || i > j {
		t.Errorf("header %v: want J/out-token before energy J", header)
	}
	if want := []string{"1", "10.0", "10.0", "1.2500", "1600", "160.0", "2000.0", "2010.0", "+0.50", "200.0", "210.0", "2.60"}; !slices.Equal(rows["measure"], want) {
		t.Errorf("measure row %v, want %v", rows["measure"], want)
	}
	if want := []string{"-", "20.0", "0.5", "-", "-", "-", "-", "-", "-", "-", "-", "-"}; !slices.Equal(rows["gap"], want) {
		t.Errorf("gap row %v, want %v", rows["gap"], want)
	}
	if !regexp.MustCompile(`(?m)^\(\* measured windows`).MatchString(out) {
		t.Errorf("no legend of *:\n%s", out)
	}
}

func TestCSVMissingValues(t *testing.T) {
	var b bytes.Buffer
	res := results()
	if err := CSV(&b, res); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want a header and 2 windows", len(rows))
	}
	if want := append(slices.Clone(CSVColumns), "label:batch", "label:study"); !slices.Equal(rows[0], want) {
		t.Errorf("header %v\nwant   %v", rows[0], want)
	}
	get := func(row []string, col string) string { return row[slices.Index(rows[0], col)] }
	m, g := rows[1], rows[2]
	for col, want := range map[string]string{
		"run": "runs/a", "run_id": "0123456789abcdef", "complete": "true", "window": "measure", "kind": "phase",
		"cycle": "1", "measured": "true", "start_s": "10", "end_s": "20", "duration_s": "10",
		"energy_per_output_token_j": "1.25", "output_tokens": "1600", "requests": "8", "energy_j": "2000",
		"energy_disagreement_pct": "0.5", "samples": "500", "warnings": "short_window;thermal",
		"settings_hash": res.SettingsHash, "label:batch": "8", "label:study": "unit",
	} {
		if got := get(m, col); got != want {
			t.Errorf("measure %s = %q, want %q", col, got, want)
		}
	}
	// Missing (NaN) and infinite values are empty cells, never NaN or 0.
	for _, col := range []string{"energy_per_output_token_j", "output_tokens", "output_tokens_per_s", "energy_per_request_j",
		"energy_j", "energy_integrated_j", "energy_disagreement_pct", "energy_adjusted_j", "mean_power_w",
		"p5_power_w", "p95_power_w", "max_power_w", "uncertainty_pct", "warnings"} {
		if got := get(g, col); got != "" {
			t.Errorf("gap %s = %q, want empty", col, got)
		}
	}
	for col, want := range map[string]string{"window": "gap", "cycle": "0", "measured": "false", "start_s": "20",
		"duration_s": "0.5", "requests": "0", "samples": "0"} {
		if got := get(g, col); got != want {
			t.Errorf("gap %s = %q, want %q", col, got, want)
		}
	}
	for _, row := range rows {
		for _, cell := range row {
			if strings.Contains(strings.ToLower(cell), "nan") || strings.Contains(cell, "Inf") {
				t.Errorf("cell %q in %v", cell, row)
			}
		}
	}
}

// Label columns are the union of every run's labels, sorted; a run
// without a label leaves its cell empty.
func TestCSVLabels(t *testing.T) {
	res := results()
	second := res.Runs[0]
	second.Run = "runs/b"
	second.Labels = map[string]string{"zeta": "z", "alpha": "a", "batch": "32"}
	second.Windows = second.Windows[:1]
	third := second
	third.Run = "runs/c"
	third.Labels = nil
	res.Runs = append(res.Runs, second, third)

	var b bytes.Buffer
	if err := CSV(&b, res); err != nil {
		t.Fatal(err)
	}
	first := b.String()
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	if got, want := head[len(CSVColumns):], []string{"label:alpha", "label:batch", "label:study", "label:zeta"}; !slices.Equal(got, want) {
		t.Errorf("label columns %v, want %v", got, want)
	}
	if len(rows) != 1+2+1+1 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	want := map[string][]string{
		"runs/a": {"", "8", "unit", ""},
		"runs/b": {"a", "32", "", "z"},
		"runs/c": {"", "", "", ""},
	}
	for _, row := range rows[1:] {
		if len(row) != len(head) {
			t.Errorf("row %v has %d cells, header %d", row, len(row), len(head))
			continue
		}
		if got := row[len(CSVColumns):]; !slices.Equal(got, want[row[0]]) {
			t.Errorf("%s labels %v, want %v", row[0], got, want[row[0]])
		}
	}

	// Map order never leaks: the same results give the same bytes.
	for range 20 {
		var again bytes.Buffer
		if err := CSV(&again, res); err != nil {
			t.Fatal(err)
		}
		if again.String() != first {
			t.Fatal("CSV differs between two calls")
		}
	}
}

// Runs are separated by a blank line, in order; an incomplete run says so.
func TestTableRuns(t *testing.T) {
	res := results()
	second := res.Runs[0]
	second.Run = "runs/b"
	second.Complete = false
	second.Status = "recording"
	second.Labels = nil
	second.Warnings = []analyze.Warning{{Code: "incomplete_run", Message: "the recorder did not finish"}}
	res.Runs = append(res.Runs, second)
	var b bytes.Buffer
	if err := Table(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	a, bb := strings.Index(out, "run       runs/a  [complete, sim]"), strings.Index(out, "\n\nrun       runs/b  [INCOMPLETE (recording), sim]\n")
	if a != 0 || bb < 0 {
		t.Errorf("runs at %d and %d:\n%s", a, bb, out)
	}
	if strings.Count(out, "labels    ") != 1 {
		t.Errorf("a run without labels prints a labels line:\n%s", out)
	}
	if !strings.HasSuffix(out, "warning   [incomplete_run] the recorder did not finish\n") {
		t.Errorf("warning of the second run missing:\n%s", out)
	}
}

// The table shows what JSON and CSV show: request problems, and the
// warnings of windows not measured, by code with their windows.
func TestTableShowsProblemsAndOtherWindowsWarnings(t *testing.T) {
	res := results()
	r := &res.Runs[0]
	r.Requests.Problems = []string{"3 requests never ended"}
	r.Windows[1].Warnings = []analyze.Warning{{Code: "no_energy", Message: "nothing covers it"}}
	var b strings.Builder
	if err := Table(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"requests  problem: 3 requests never ended\n",
		"note      [no_energy] also in windows not measured: gap (the JSON report has each message)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// Host energy gets a table of its own below the windows, with a missing
// domain as "-" like any missing number; a run without it has none.
func TestTableHostEnergy(t *testing.T) {
	var plain bytes.Buffer
	res := results()
	if err := Table(&plain, res); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "RAPL") {
		t.Errorf("a run without host energy shows a host table:\n%s", plain.String())
	}
	res.Runs[0].Windows[0].HostEnergyJ = map[string]analyze.Num{"package-0": 812.25, "package-0/dram": 95.5}
	res.Runs[0].Windows[1].HostEnergyJ = map[string]analyze.Num{"package-0": analyze.NaN}
	var b bytes.Buffer
	if err := Table(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, re := range []string{`window\s+cycle\s+dur s\s+package-0 J\s+package-0/dram J`, `\* measure\s+1\s+10\.0\s+812\.2\s+95\.5`,
		`gap\s+-\s+0\.5\s+-\s+-`, `not included in energy J above`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no %q in:\n%s", re, out)
		}
	}
	if strings.Index(out, "package-0 J") < strings.Index(out, "J/out-token") {
		t.Error("the host table must come after the GPU windows")
	}
}
