package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkGolden compares got with the file testdata/golden/name (relative to
// this package), rewriting it under -update. A mismatch prints the first
// line that differs.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("output differs from %s at line %d (-update rewrites it):\n got: %s\nwant: %s", golden, i+1, gl, wl)
			return
		}
	}
}

// TestAnalyzeGolden pins `llem analyze`'s table and JSON of every shipped
// run and job (a job's CSV too, with its rows per node): a change to any
// number or word of them shows here, and is
// regenerated with `go test ./internal/cli -run AnalyzeGolden -update`
// after looking at the diff.
func TestAnalyzeGolden(t *testing.T) {
	dir, err := filepath.Abs("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	atRoot(t)
	runs, err := filepath.Glob("testdata/runs/*/meta.json")
	if err != nil || len(runs) == 0 {
		t.Fatalf("no shipped runs: %v", err)
	}
	jobs, _ := filepath.Glob("testdata/jobs/*/manifest")
	for _, m := range append(runs, jobs...) {
		run := filepath.Dir(m)
		formats := []struct{ flag, ext string }{{"", ".txt"}, {"--json", ".json"}}
		if filepath.Base(m) == "manifest" {
			formats = append(formats, struct{ flag, ext string }{"--csv", ".csv"})
		}
		for _, format := range formats {
			args := []string{"analyze", "-q", run}
			if format.flag != "" {
				args = []string{"analyze", "-q", format.flag, run}
			}
			r := runLlem(t, "", args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			checkGolden(t, filepath.Join(dir, "analyze-"+filepath.Base(run)+format.ext), r.stdout)
		}
	}
}
