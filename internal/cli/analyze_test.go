package cli

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/report"
)

// The real H100 runs (testdata/runs/README.md).
const (
	runsDir   = "../../testdata/runs"
	bs8Run    = runsDir + "/h100-bs8-cycles"    // 5 cycles: warmup, measure, p0_hold; requests
	matmulRun = runsDir + "/h100-matmul-cycles" // 3 cycles, no requests
)

// analyzeJSON runs `llem analyze --json -q args...` and returns the stdout,
// the decoded results and the raw document.
func analyzeJSON(t *testing.T, args ...string) (string, *analyze.Results, map[string]any) {
	t.Helper()
	r := runLlem(t, "", append([]string{"analyze", "--json", "-q"}, args...)...)
	if r.code != 0 {
		t.Fatalf("analyze --json %v: exit %d, stderr %q", args, r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("analyze --json -q %v: stderr %q, want nothing", args, r.stderr)
	}
	var res analyze.Results
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json output does not parse into analyze.Results: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("--json output does not parse: %v", err)
	}
	return r.stdout, &res, raw
}

// rawWindows is runs[i].windows of the raw document.
func rawWindows(t *testing.T, raw map[string]any, i int) []map[string]any {
	t.Helper()
	runs, ok := raw["runs"].([]any)
	if !ok || len(runs) <= i {
		t.Fatalf("runs: %T of %d, want run %d", raw["runs"], len(runs), i)
	}
	ws, ok := runs[i].(map[string]any)["windows"].([]any)
	if !ok || len(ws) == 0 {
		t.Fatalf("runs[%d].windows: %T, empty or missing", i, runs[i].(map[string]any)["windows"])
	}
	out := make([]map[string]any, len(ws))
	for j, w := range ws {
		out[j] = w.(map[string]any)
	}
	return out
}

func TestAnalyzeTable(t *testing.T) {
	r := runLlem(t, "", "analyze", bs8Run)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	// Progress goes to stderr, never into the table.
	if !strings.Contains(r.stderr, "analysing "+bs8Run) || strings.Contains(r.stdout, "analysing") {
		t.Errorf("progress: stderr %q", r.stderr)
	}
	if strings.Contains(r.stdout, "NaN") {
		t.Errorf("table prints NaN:\n%s", r.stdout)
	}
	lines := strings.Split(r.stdout, "\n")
	if !strings.HasPrefix(lines[0], "run       "+bs8Run+"  [complete, nvml]") {
		t.Errorf("first line %q", lines[0])
	}

	// The primary metric comes first: J/out-token before energy J.
	var header string
	for _, l := range lines {
		if strings.Contains(l, "J/out-token") {
			header = l
			break
		}
	}
	if header == "" {
		t.Fatalf("no column header with J/out-token:\n%s", r.stdout)
	}
	if i, j := strings.Index(header, "J/out-token"), strings.Index(header, "energy J"); j < 0 || i > j {
		t.Errorf("header %q: want J/out-token before energy J", header)
	}

	// The five measure phases are the measured windows, each with a
	// number for energy per output token.
	measured := regexp.MustCompile(`^\s*\* measure\s+([1-5])\s+\d+\.\d\s+\d+\.\d\s+(\d+\.\d{4})\s+1024\s`)
	var cycles []string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimLeft(l, " "), "* ") {
			m := measured.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("measured row %q does not match %s", l, measured)
				continue
			}
			cycles = append(cycles, m[1])
		}
	}
	if want := []string{"1", "2", "3", "4", "5"}; !slices.Equal(cycles, want) {
		t.Errorf("measured rows in cycles %v, want %v", cycles, want)
	}

	for _, re := range []string{
		// Five cycles: a CI of energy per output token and of energy, the
		// Student-t interval named, with BCa's beside it.
		`(?m)^cycles    n=5; energy per output token (\d+\.\d{5}) \[(\d+\.\d{5}), (\d+\.\d{5})\] \(Student-t, n=5; BCa \[\d+\.\d{5}, \d+\.\d{5}\]\) J; energy \d+\.\d \[\d+\.\d, \d+\.\d\] \(Student-t, n=5; BCa \[\d+\.\d, \d+\.\d\]\) J$`,
		`(?m)^steady    \w+ by pelt in measure, cycle 1`,
		`(?m)^baseline  idle 7\d\.\d \[\d+\.\d, \d+\.\d\] W median \(phases idle_before, idle_after, `,
		`(?m)^baseline  P0 12\d\.\d \[\d+\.\d, \d+\.\d\] W median \(phases p0_hold \(cycle 1\)`,
		`(?m)^latency   40 requests; mean TTFT `,
		`(?m)^thermal   measure \(cycle 5\) GPU 0: `,
		`(?m)^sensors   update period: `,
		`(?m)^warning   \[cpu_governor_unknown\] `,
		`(?m)^warning   \[short_window\] measure \(cycle 1\): the window lasts 7\.9 s, less than 10 s`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("table does not match %s:\n%s", re, r.stdout)
		}
	}
	m := regexp.MustCompile(`energy per output token (\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\]`).FindStringSubmatch(r.stdout)
	if m == nil || !(m[2] < m[1] && m[1] < m[3]) { // same width, so string order is numeric order
		t.Errorf("cycles CI %v: want low < estimate < high", m)
	}
}

// The fields the issue requires, by their JSON names, with numbers (or
// null) of the right kind; the settings and their hash; reproducibility.
func TestAnalyzeJSON(t *testing.T) {
	out, res, raw := analyzeJSON(t, bs8Run)
	if !strings.HasSuffix(out, "}\n") {
		t.Errorf("output does not end in a newline")
	}
	if res.Tool != "llem" || res.LlemVersion == "" || len(res.Runs) != 1 {
		t.Fatalf("tool %q, version %q, %d runs", res.Tool, res.LlemVersion, len(res.Runs))
	}
	if !strings.HasPrefix(res.SettingsHash, "sha256:") || len(res.SettingsHash) != len("sha256:")+64 {
		t.Errorf("settings_hash %q", res.SettingsHash)
	}
	if def := analyze.DefaultSettings(); res.SettingsHash != def.Hash() || res.Settings.Resamples != def.Resamples || res.Settings.Steady != "pelt" {
		t.Errorf("default settings: hash %s (want %s), %+v", res.SettingsHash, def.Hash(), res.Settings)
	}

	run := res.Runs[0]
	if run.Run != bs8Run || !run.Complete || run.Status != "complete" || run.Labels["batch"] != "8" {
		t.Errorf("run %q complete %v status %q labels %v", run.Run, run.Complete, run.Status, run.Labels)
	}
	required := []string{"name", "start_s", "end_s", "duration_s", "energy_j", "energy_integrated_j", "mean_power_w",
		"uncertainty_pct", "samples", "output_tokens", "energy_per_output_token_j", "output_tokens_per_s", "warnings"}
	ws := rawWindows(t, raw, 0)
	if len(ws) != len(run.Windows) {
		t.Fatalf("%d raw windows, %d decoded", len(ws), len(run.Windows))
	}
	for i, w := range ws {
		for _, k := range required {
			if _, ok := w[k]; !ok {
				t.Errorf("window %d (%v) has no %q", i, w["name"], k)
			}
		}
		if _, ok := w["name"].(string); !ok {
			t.Errorf("window %d: name %v", i, w["name"])
		}
		for _, k := range []string{"start_s", "end_s", "duration_s", "energy_j", "energy_integrated_j", "mean_power_w", "uncertainty_pct", "samples"} {
			if _, ok := w[k].(float64); !ok {
				t.Errorf("window %v: %s = %v, want a number", w["name"], k, w[k])
			}
		}
		if _, ok := w["warnings"].([]any); !ok {
			t.Errorf("window %v: warnings = %v, want an array", w["name"], w["warnings"])
		}
	}

	var measured []analyze.WindowResult
	for _, w := range run.Windows {
		if w.Measured {
			measured = append(measured, w)
		}
	}
	if len(measured) != 5 {
		t.Fatalf("%d measured windows, want the 5 measure phases", len(measured))
	}
	for i, w := range measured {
		if w.Name != "measure" || w.Kind != "phase" || w.Cycle != i+1 {
			t.Errorf("measured %d: %s %s cycle %d", i, w.Name, w.Kind, w.Cycle)
		}
		if w.OutputTokens != 1024 || !w.EnergyJ.Valid() || !w.EnergyPerOutputTokenJ.Valid() {
			t.Errorf("%s cycle %d: %v tokens, %v J, %v J/token", w.Name, w.Cycle, w.OutputTokens, w.EnergyJ, w.EnergyPerOutputTokenJ)
		}
		if got, want := float64(w.EnergyPerOutputTokenJ), float64(w.EnergyJ/w.OutputTokens); math.Abs(got-want) > 1e-12*want {
			t.Errorf("cycle %d: J/token %g, energy/tokens %g", w.Cycle, got, want)
		}
		if got, want := w.DurationS, w.EndS-w.StartS; math.Abs(got-want) > 1e-9 {
			t.Errorf("cycle %d: duration %g, end-start %g", w.Cycle, got, want)
		}
		// The counter and integrated driver power agree on the real runs.
		if d := math.Abs(float64(w.EnergyIntegratedJ/w.EnergyJ) - 1); d > 0.01 {
			t.Errorf("cycle %d: counter %v J, integrated %v J", w.Cycle, w.EnergyJ, w.EnergyIntegratedJ)
		}
	}
	c := run.Cycles
	if c == nil || c.N != 5 || c.EnergyPerOutputTokenJ == nil || c.EnergyJ == nil {
		t.Fatalf("cycles: %+v", c)
	}
	// Five cycles: Student-t, with the BCa interval (2,000 resamples) beside it.
	if iv := c.EnergyPerOutputTokenJ; !(iv.Low < iv.Estimate && iv.Estimate < iv.High) || iv.N != 5 || iv.Method != "student_t" ||
		iv.Alternative == nil || iv.Alternative.Resamples != 2000 {
		t.Errorf("cycles energy per output token: %+v (alternative %+v)", iv, iv.Alternative)
	}
	if run.Latency == nil || run.Latency.Requests != 40 || run.Baseline.Idle == nil || run.Baseline.P0 == nil {
		t.Errorf("latency %+v, baselines %+v", run.Latency, run.Baseline)
	}

	// Same inputs, settings and seed: the same bytes. Another seed moves
	// the bootstrap intervals and the hash.
	if again, _, _ := analyzeJSON(t, bs8Run); again != out {
		t.Errorf("two runs of analyze --json differ")
	}
	seeded, res1, _ := analyzeJSON(t, "--seed", "1", bs8Run)
	if seeded == out || res1.Settings.Seed != 1 || res1.SettingsHash == res.SettingsHash {
		t.Errorf("--seed 1: seed %d, hash %s; output changed: %v", res1.Settings.Seed, res1.SettingsHash, seeded != out)
	}
	if iv := res1.Runs[0].Cycles.EnergyPerOutputTokenJ.Alternative; iv.Seed != 1 || iv.Estimate != c.EnergyPerOutputTokenJ.Estimate {
		t.Errorf("--seed 1: BCa interval %+v; want seed 1, the same estimate", iv)
	}
}

func TestAnalyzeTableReproducible(t *testing.T) {
	a := runLlem(t, "", "analyze", "-q", bs8Run)
	b := runLlem(t, "", "analyze", "-q", bs8Run)
	if a.code != 0 || a.stdout != b.stdout || a.stderr != "" {
		t.Errorf("two tables differ (exit %d, stderr %q)", a.code, a.stderr)
	}
}

func TestAnalyzeCSV(t *testing.T) {
	r := runLlem(t, "", "analyze", "--csv", "-q", bs8Run)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	_, res, _ := analyzeJSON(t, bs8Run)
	windows := res.Runs[0].Windows
	if len(rows) != 1+len(windows) {
		t.Fatalf("%d rows, want a header and %d windows", len(rows), len(windows))
	}
	head := rows[0]
	if !slices.Equal(head[:len(report.CSVColumns)], report.CSVColumns) {
		t.Errorf("header %v", head)
	}
	if want := append(slices.Clone(report.CSVColumns), "label:batch", "label:study"); !slices.Equal(head, want) {
		t.Errorf("header %v, want %v", head, want)
	}
	col := func(name string) int {
		i := slices.Index(head, name)
		if i < 0 {
			t.Fatalf("no column %q in %v", name, head)
		}
		return i
	}
	batch, study, window, measured, ept := col("label:batch"), col("label:study"), col("window"), col("measured"), col("energy_per_output_token_j")
	for i, row := range rows[1:] {
		if row[batch] != "8" || row[study] != "cycles" {
			t.Errorf("row %d: label:batch %q, label:study %q", i+1, row[batch], row[study])
		}
		if row[window] != windows[i].Name {
			t.Errorf("row %d: window %q, JSON has %q", i+1, row[window], windows[i].Name)
		}
		// A missing value is empty, never NaN or 0.
		if windows[i].EnergyPerOutputTokenJ.Valid() == (row[ept] == "") {
			t.Errorf("row %d (%s): energy_per_output_token_j %q, JSON %v", i+1, row[window], row[ept], windows[i].EnergyPerOutputTokenJ)
		}
		if slices.Contains(row, "NaN") {
			t.Errorf("row %d: %v", i+1, row)
		}
		if row[measured] == "true" && row[ept] == "" {
			t.Errorf("measured row %d has no energy per output token", i+1)
		}
	}
}

// A directory of runs: every run inside, in name order.
func TestAnalyzeDirectory(t *testing.T) {
	_, res, _ := analyzeJSON(t, "--resamples", "200", runsDir)
	var got []string
	for _, r := range res.Runs {
		got = append(got, r.Run)
	}
	var want []string
	for _, n := range []string{"h100-bs32-cycles", "h100-bs32-long", "h100-bs8-cycles", "h100-matmul-cycles"} {
		want = append(want, filepath.Join(runsDir, n))
	}
	if !slices.Equal(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
	// The same directory one level further up: runs two levels deep, and
	// the shipped job as one (not its two node runs).
	_, res, _ = analyzeJSON(t, "--resamples", "200", "../../testdata")
	if len(res.Runs) != 6 || res.Runs[0].Run != filepath.Join("../../testdata", "faults", "h100-kill9") ||
		res.Runs[1].Run != filepath.Join("../../testdata", "jobs", "sim-2nodes") || res.Runs[1].Job == nil ||
		res.Runs[2].Run != filepath.Join("../../testdata", "runs", "h100-bs32-cycles") {
		t.Errorf("two levels deep: %d runs, first %q", len(res.Runs), res.Runs[0].Run)
	}
}

func TestAnalyzeOut(t *testing.T) {
	want, _, _ := analyzeJSON(t, bs8Run)
	for _, flag := range []string{"--out", "-o"} {
		path := filepath.Join(t.TempDir(), "results.json")
		r := runLlem(t, "", "analyze", "--json", "-q", flag, path, bs8Run)
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 0 and no output", flag, r.code, r.stdout, r.stderr)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s FILE differs from standard output", flag)
		}
	}
	// An --out that cannot be created names it.
	bad := filepath.Join(t.TempDir(), "no", "such", "dir", "x.txt")
	if r := runLlem(t, "", "analyze", "-q", "--out", bad, bs8Run); r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, bad) {
		t.Errorf("--out %s: exit %d, stderr %q", bad, r.code, r.stderr)
	}
}

func TestAnalyzeConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "methodology.json")
	if err := os.WriteFile(cfg, []byte(`{"resamples": 500, "seed": 3, "min_window_s": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, res, _ := analyzeJSON(t, "--config", cfg, bs8Run)
	s := res.Settings
	if s.Resamples != 500 || s.Seed != 3 || s.MinWindowS != 5 || s.Confidence != 0.95 || res.SettingsHash != s.Hash() {
		t.Errorf("--config: %+v, hash %s", s, res.SettingsHash)
	}
	if iv := res.Runs[0].Cycles.EnergyPerOutputTokenJ.Alternative; iv.Resamples != 500 || iv.Seed != 3 {
		t.Errorf("--config: the cycles' interval used %d resamples, seed %d", iv.Resamples, iv.Seed)
	}
	// min_window_s 5: the 6.9-9 s measure phases are no longer short.
	for _, w := range res.Runs[0].Warnings {
		if w.Code == "short_window" {
			t.Errorf("min_window_s 5 still warns: %s", w.Message)
		}
	}
	// Flags override the file; what the file sets and no flag does stays.
	_, res, _ = analyzeJSON(t, "--config", cfg, "--resamples", "300", bs8Run)
	if res.Settings.Resamples != 300 || res.Settings.Seed != 3 {
		t.Errorf("--config with --resamples 300: %+v", res.Settings)
	}
}

// Bad input exits 2 with one line that names the problem; nothing on
// standard output.
func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.json", `{"resamples": 100, "bogus_key": 1}`)
	badValue := write("bad.json", `{"confidence": 5}`)
	notJSON := write("notjson.json", `resamples = 100`)
	missing := filepath.Join(dir, "no-such-run")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string // all in stderr
	}{
		{nil, []string{"no run given"}},
		{[]string{"--json", "--csv", bs8Run}, []string{"--json and --csv exclude each other"}},
		{[]string{missing}, []string{missing, "no such file"}},
		{[]string{bs8Run, missing}, []string{missing}},
		{[]string{empty}, []string{empty, "no runs inside it"}},
		{[]string{bs8Run + "/meta.json"}, []string{"meta.json", "not a directory"}},
		{[]string{"--config", unknown, bs8Run}, []string{unknown, `"bogus_key"`}},
		{[]string{"--config", badValue, bs8Run}, []string{": confidence: must be in (0, 1), got 5"}},
		{[]string{"--config", notJSON, bs8Run}, []string{notJSON}},
		{[]string{"--config", filepath.Join(dir, "none.json"), bs8Run}, []string{"--config", "none.json"}},
		{[]string{"--window", "5..2", bs8Run}, []string{`--window: "5..2"`, "START < END"}},
		{[]string{"--steady", "bogus", bs8Run}, []string{"steady", `"bogus"`, "pelt", "mser5"}},
		{[]string{"--confidence", "2", bs8Run}, []string{"--confidence: must be in (0, 1), got 2"}},
		{[]string{"--confidence", "0", bs8Run}, []string{"--confidence: must be in (0, 1), got 0"}},
		{[]string{"--resamples", "0", bs8Run}, []string{"--resamples: must be at least 1, got 0"}},
		// Flag parse errors are usage errors too (exit 2, not 1).
		{[]string{"--resamples", "abc", bs8Run}, []string{"resamples", `"abc"`}},
		{[]string{"--confidence", "high", bs8Run}, []string{"confidence", `"high"`}},
		{[]string{"--seed", "-1", bs8Run}, []string{"seed", `"-1"`}},
		{[]string{"--bogus", bs8Run}, []string{"bogus"}},
	} {
		r := runLlem(t, "", append([]string{"analyze"}, c.args...)...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want exit 2 and no output", c.args, r.code, r.stdout)
		}
		if !strings.HasPrefix(r.stderr, "llem: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: stderr %q; want one line starting llem:", c.args, r.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr %q does not contain %q", c.args, r.stderr, w)
			}
		}
	}
}

func TestAnalyzeUserWindow(t *testing.T) {
	_, res, _ := analyzeJSON(t, "--window", "30..90", "--window", "p0_hold", bs8Run)
	var measured []string
	for _, w := range res.Runs[0].Windows {
		if w.Measured {
			measured = append(measured, w.Name)
			if w.Kind != "user" {
				t.Errorf("measured window %s is a %s, want user", w.Name, w.Kind)
			}
		}
		if w.Name == "30..90" && (w.StartS != 30 || w.EndS != 90 || w.DurationS != 60) {
			t.Errorf("30..90: %g..%g (%g s)", w.StartS, w.EndS, w.DurationS)
		}
	}
	if want := []string{"30..90", "p0_hold", "p0_hold", "p0_hold", "p0_hold", "p0_hold"}; !slices.Equal(sortedCopy(measured), want) {
		t.Errorf("measured windows %v, want %v", measured, want)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestAnalyzeSteadyMSER5(t *testing.T) {
	_, res, _ := analyzeJSON(t, "--steady", "mser5", bs8Run)
	st := res.Runs[0].SteadyState
	if res.Settings.Steady != "mser5" || st == nil || st.Method != "mser5" || st.Window != "measure" || st.Cycle != 1 {
		t.Fatalf("--steady mser5: settings %q, steady_state %+v", res.Settings.Steady, st)
	}
	if r := runLlem(t, "", "analyze", "-q", "--steady", "mser5", bs8Run); r.code != 0 || !strings.Contains(r.stdout, "by mser5 in measure") {
		t.Errorf("table: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A run without requests has no tokens: energy per output token and
// latency are null, never 0.
func TestAnalyzeNoRequests(t *testing.T) {
	out, res, raw := analyzeJSON(t, matmulRun)
	run := res.Runs[0]
	for i, w := range rawWindows(t, raw, 0) {
		for _, k := range []string{"energy_per_output_token_j", "output_tokens", "output_tokens_per_s", "energy_per_request_j"} {
			v, ok := w[k]
			if !ok || v != nil {
				t.Errorf("window %d (%v): %s = %v (present %v), want null", i, w["name"], k, v, ok)
			}
		}
		if _, ok := w["energy_j"].(float64); !ok {
			t.Errorf("window %v: energy_j = %v, want a number", w["name"], w["energy_j"])
		}
	}
	if l, ok := raw["runs"].([]any)[0].(map[string]any)["latency"]; !ok || l != nil {
		t.Errorf("latency = %v (present %v), want null", l, ok)
	}
	if strings.Contains(out, `"energy_per_output_token_j": 0,`) {
		t.Errorf("energy per output token written as 0")
	}
	if run.Latency != nil || run.Cycles == nil || run.Cycles.N != 3 || run.Cycles.EnergyPerOutputTokenJ != nil {
		t.Errorf("latency %+v, cycles %+v", run.Latency, run.Cycles)
	}
	var codes []string
	for _, w := range run.Warnings {
		codes = append(codes, w.Code)
	}
	if !slices.Contains(codes, "few_cycles") {
		t.Errorf("3 cycles and no few_cycles warning: %v", codes)
	}
	// The table shows - for what is missing.
	r := runLlem(t, "", "analyze", "-q", matmulRun)
	if r.code != 0 || strings.Contains(r.stdout, "NaN") || !strings.Contains(r.stdout, "cycles    n=3; ") {
		t.Errorf("table: exit %d\n%s", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "latency   ") {
		t.Errorf("table shows latency for a run without requests")
	}
	if !regexp.MustCompile(`(?m)^\s*\* cycle 1\s+1\s+\d+\.\d\s+\d+\.\d\s+-\s+-\s+-\s+\d+\.\d`).MatchString(r.stdout) {
		t.Errorf("measured cycle 1 does not show - for tokens:\n%s", r.stdout)
	}
}

func TestAnalyzeHelp(t *testing.T) {
	r := runLlem(t, "", "analyze", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"energy per output token", "--window", "docs/results.md", "--config", "--steady", "mser5", "--json", "--csv", "--parquet", "label:KEY", "null", "byte-identical",
		// Each default once, from the flag's value.
		"(default: 2000)", "(default: 0.95)", `(default: "measure")`, `(default: "pelt")`} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("help does not mention %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, ") (default: 0)\n") && strings.Contains(r.stdout, "(default 2000)") {
		t.Errorf("help gives two defaults:\n%s", r.stdout)
	}
}

// A killed recorder leaves meta.json saying "recording" and the last
// segment missing: the run is analysed and flagged, not refused.
func TestAnalyzeIncompleteRun(t *testing.T) {
	run := filepath.Join(t.TempDir(), "killed")
	if err := os.CopyFS(run, os.DirFS(bs8Run)); err != nil {
		t.Fatal(err)
	}
	metaPath := filepath.Join(run, "meta.json")
	b, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	meta["complete"] = false
	meta["status"] = "recording"
	if b, err = json.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metaPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(run, "driver_power", "*.parquet"))
	if err != nil || len(segs) < 2 {
		t.Fatalf("driver_power segments %v, %v", segs, err)
	}
	slices.Sort(segs)
	if err := os.Remove(segs[len(segs)-1]); err != nil {
		t.Fatal(err)
	}

	_, full, _ := analyzeJSON(t, bs8Run)
	_, res, raw := analyzeJSON(t, run)
	r := res.Runs[0]
	if r.Complete || r.Status != "recording" {
		t.Errorf("complete %v, status %q", r.Complete, r.Status)
	}
	if c, ok := raw["runs"].([]any)[0].(map[string]any)["complete"]; c != false || !ok {
		t.Errorf("raw complete = %v", c)
	}
	var found bool
	for _, w := range r.Warnings {
		if w.Code == "incomplete_run" {
			found = true
			if !strings.Contains(w.Message, "recording") {
				t.Errorf("incomplete_run: %q does not name the status", w.Message)
			}
		}
	}
	if !found {
		t.Errorf("no incomplete_run warning in %+v", r.Warnings)
	}
	// Fewer driver power samples; the measured windows are still there.
	if r.Windows[0].Samples >= full.Runs[0].Windows[0].Samples {
		t.Errorf("run window: %d samples, the complete run %d", r.Windows[0].Samples, full.Runs[0].Windows[0].Samples)
	}
	if r.Cycles == nil || r.Cycles.N != 5 {
		t.Errorf("cycles %+v", r.Cycles)
	}
	tab := runLlem(t, "", "analyze", "-q", run)
	if tab.code != 0 || !strings.Contains(tab.stdout, "[INCOMPLETE (recording), nvml]") || !strings.Contains(tab.stdout, "[incomplete_run]") {
		t.Errorf("table: exit %d\n%s", tab.code, tab.stdout)
	}
}

// A --window no run has is an error naming the run's phases, not a
// silent fall-back to the measure phase.
func TestAnalyzeWindowNotFound(t *testing.T) {
	r := runLlem(t, "", "analyze", "-q", "--window", "nosuchphase", bs8Run)
	if r.code != 2 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want exit 2 and no output", r.code, r.stdout)
	}
	for _, want := range []string{"--window: no run has the window nosuchphase", bs8Run, "phases: idle_before, warmup, measure, p0_hold, cooldown, idle_after"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not contain %q", r.stderr, want)
		}
	}
	r = runLlem(t, "", "analyze", "-q", "--window", "500..600", bs8Run)
	if r.code != 2 || !strings.Contains(r.stderr, "lies outside the trace") {
		t.Errorf("a span after the run: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A --measure-phase no run has is an error too: a mistyped phase must not
// measure the cycles instead.
func TestAnalyzeMeasurePhaseNotFound(t *testing.T) {
	r := runLlem(t, "", "analyze", "-q", "--measure-phase", "mesure", bs8Run)
	if r.code != 2 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want exit 2 and no output", r.code, r.stdout)
	}
	for _, want := range []string{`--measure-phase: no run has the phase "mesure"`, bs8Run, "phases: idle_before, warmup, measure, p0_hold, cooldown, idle_after"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not contain %q", r.stderr, want)
		}
	}
	if r := runLlem(t, "", "analyze", "-q", "--measure-phase", "warmup", bs8Run); r.code != 0 {
		t.Errorf("an existing phase: exit %d, stderr %q", r.code, r.stderr)
	}
}

// One unreadable run of a sweep: the others are analysed and written, and
// the command fails naming it.
func TestAnalyzeSweepWithBrokenRun(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "meta.json"), []byte(`{"schema_version": "1.1",`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runLlem(t, "", "analyze", bs8Run, broken)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stdout, "run       "+bs8Run) {
		t.Errorf("stdout lacks the readable run's table:\n%s", r.stdout)
	}
	for _, want := range []string{"skipping " + broken, "1 of 2 run(s) could not be read", "meta.json"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not contain %q", r.stderr, want)
		}
	}
}
