package cli

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llem/llem/analyze/compare"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ from the current output")

// The shipped batch-8 and batch-32 runs, as the docs' command names them
// from the repository root.
var compareArgs = []string{"compare", "testdata/runs/h100-bs8-cycles", "testdata/runs/h100-bs32-cycles"}

// atRoot makes the repository root the working directory for the rest of
// the test, so that the runs are named as in docs/compare.md. Call it once
// per test: each call moves two levels up.
func atRoot(t *testing.T) {
	t.Helper()
	t.Chdir("../..")
}

// The text table of the two shipped runs is pinned in
// testdata/compare.golden; `go test ./internal/cli -run CompareGolden
// -update` rewrites it.
func TestCompareGolden(t *testing.T) {
	golden, err := filepath.Abs("testdata/compare.golden")
	if err != nil {
		t.Fatal(err)
	}
	atRoot(t)
	r := runLlem(t, "", compareArgs...)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "analysing testdata/runs/h100-bs8-cycles (1 of 2)") {
		t.Errorf("no progress lines on stderr: %q", r.stderr)
	}
	checkGolden(t, golden, r.stdout)
	// The energy per token row of batch 32: a clear, significant decrease.
	var line string
	for l := range strings.Lines(r.stdout) {
		if strings.HasPrefix(l, "testdata/runs/h100-bs32-cycles") {
			line = l
			break
		}
	}
	if !strings.Contains(line, "-76.") || !strings.Contains(line, "p=0.008") {
		t.Errorf("energy per token row of batch 32: %q", line)
	}
}

// Same inputs and seed: byte-identical output in every format; another
// seed moves the intervals.
func TestCompareDeterministic(t *testing.T) {
	atRoot(t)
	for _, format := range [][]string{nil, {"--json"}, {"--csv"}} {
		args := append(append([]string{"compare", "-q"}, format...), compareArgs[1:]...)
		a := runLlem(t, "", args...)
		b := runLlem(t, "", args...)
		if a.code != 0 || b.code != 0 || a.stdout != b.stdout || a.stdout == "" {
			t.Errorf("%v: exits %d and %d, outputs equal %v", format, a.code, b.code, a.stdout == b.stdout)
		}
		if a.stderr != "" {
			t.Errorf("%v -q: stderr %q", format, a.stderr)
		}
		c := runLlem(t, "", append([]string{"compare", "-q", "--seed", "9"}, append(format, compareArgs[1:]...)...)...)
		if c.stdout == a.stdout {
			t.Errorf("%v: --seed 9 gives the same output as seed 0", format)
		}
	}
}

func TestCompareJSONAndCSV(t *testing.T) {
	atRoot(t)
	r := runLlem(t, "", "compare", "-q", "--json", "--group-by", "batch", "--baseline", "32", "--alpha", "0.01",
		"testdata/runs/h100-bs8-cycles", "testdata/runs/h100-bs32-cycles")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res compare.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	s := res.Settings
	if s.GroupBy != "batch" || s.Baseline != "32" || s.Alpha != 0.01 || s.Resamples != 2000 || s.Confidence != 0.95 ||
		res.AnalysisHash == "" || res.LlemVersion == "" {
		t.Errorf("settings %+v, hash %q", s, res.AnalysisHash)
	}
	if len(res.Groups) != 2 || res.Groups[0].Name != "batch=32" || res.Groups[1].Name != "batch=8" {
		t.Fatalf("groups %+v", res.Groups)
	}
	ept := res.Metrics[0]
	if ept.Key != "energy_per_output_token_j" || len(ept.Rows) != 2 || len(ept.Rows[1].Samples) != 5 {
		t.Fatalf("first metric %+v", ept)
	}
	// Against batch 32, batch 8 costs over four times the energy per token.
	if c := ept.Rows[1].Change; !(c.Ratio.Estimate > 4 && c.Ratio.Low > 3) || ept.Rows[1].Test.Alpha != 0.01 {
		t.Errorf("batch 8 vs 32: %+v %+v", c.Ratio, ept.Rows[1].Test)
	}

	r = runLlem(t, "", "compare", "-q", "--csv", "testdata/runs/h100-bs8-cycles", "testdata/runs/h100-bs32-cycles")
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != 0 || err != nil {
		t.Fatalf("exit %d, %v", r.code, err)
	}
	if len(recs) != 1+2*len(compare.Metrics) || strings.Join(recs[0], ",") != strings.Join(compare.CSVHeader, ",") {
		t.Fatalf("CSV: %d rows, header %v", len(recs), recs[0])
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	row := recs[2] // energy per token, batch 32
	if row[col["metric"]] != "energy_per_output_token_j" || row[col["significant"]] != "true" || row[col["test"]] != "exact" ||
		!strings.HasPrefix(row[col["change_pct"]], "-76.") || recs[1][col["change_pct"]] != "" {
		t.Errorf("CSV rows %v\n%v", recs[1], row)
	}
}

func TestCompareErrors(t *testing.T) {
	atRoot(t)
	bs8, bs32 := "testdata/runs/h100-bs8-cycles", "testdata/runs/h100-bs32-cycles"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "no run given"},
		{[]string{bs8}, "needs at least two"},
		{[]string{"--group-by", "study", bs8, bs32}, `at least two configurations; got 1`},
		{[]string{"--group-by", "gpu", bs8, bs32}, `no label "gpu"`},
		{[]string{"--group-by", "batch", "--baseline", "16", bs8, bs32}, "--baseline: 16: no such configuration; there are 8, 32"},
		{[]string{"--alpha", "0", bs8, bs32}, "--alpha: must be in (0, 1)"},
		{[]string{"--confidence", "1.5", bs8, bs32}, "--confidence"},
		{[]string{"--resamples", "0", bs8, bs32}, "--resamples"},
		{[]string{"--json", "--csv", bs8, bs32}, "exclude each other"},
		{[]string{"--no-such-flag", bs8, bs32}, "no-such-flag"},
		{[]string{bs8, "testdata/runs/nope"}, "nope"},
	} {
		r := runLlem(t, "", append([]string{"compare", "-q"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
