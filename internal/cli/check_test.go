package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
)

// damagedRun copies the shipped matmul run into dir/name and damages it
// as an archive gets damaged: a segment cut short, a copy left beside its
// original, a segment of another run dropped in, a segment deleted.
func damagedRun(t *testing.T, dir, name string) string {
	t.Helper()
	run := filepath.Join(dir, name)
	if err := os.CopyFS(run, os.DirFS(filepath.Join(runsDir, "h100-matmul-cycles"))); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Truncate(filepath.Join(run, "energy", "part-000004.parquet"), 200))
	b, err := os.ReadFile(filepath.Join(run, "device_state", "part-000003.parquet"))
	must(err)
	must(os.WriteFile(filepath.Join(run, "device_state", "part-000003 (copy).parquet"), b, 0o644))
	b, err = os.ReadFile(filepath.Join(bs8Run, "driver_power", "part-000020.parquet"))
	must(err)
	must(os.WriteFile(filepath.Join(run, "driver_power", "part-000012.parquet"), b, 0o644))
	must(os.Remove(filepath.Join(run, "events", "part-000002.parquet")))
	return run
}

// The text of llem check on a damaged run is pinned in
// testdata/check.golden; `go test ./internal/cli -run CheckGolden -update`
// rewrites it.
func TestCheckGolden(t *testing.T) {
	golden, err := filepath.Abs("testdata/check.golden")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	damagedRun(t, dir, "damaged")
	t.Chdir(dir) // the output names the run as given
	r := runLlem(t, "", "check", "damaged")
	if r.code != 1 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q: want 1 and nothing on stderr", r.code, r.stderr)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if r.stdout != string(want) {
		t.Errorf("output differs from %s (-update rewrites it):\n--- got\n%s\n--- want\n%s", golden, r.stdout, want)
	}
}

func TestCheckArchive(t *testing.T) {
	r := runLlem(t, "", "check", runsDir)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "checked 4 runs: 4 intact, 0 damaged\n") {
		t.Errorf("shipped runs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	archive := t.TempDir()
	damagedRun(t, filepath.Join(archive, "2026"), "bad")
	if err := os.CopyFS(filepath.Join(archive, "2026", "good"), os.DirFS(bs8Run)); err != nil {
		t.Fatal(err)
	}
	r = runLlem(t, "", "check", "-q", archive)
	if r.code != 1 || strings.Contains(r.stdout, "good") || !strings.Contains(r.stdout, "checked 2 runs: 1 intact, 1 damaged") {
		t.Errorf("-q on an archive with one damaged run: exit %d\n%s", r.code, r.stdout)
	}
	r = runLlem(t, "", "check", "--json", archive)
	var reps []trace.CheckReport
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil || r.code != 1 || len(reps) != 2 {
		t.Fatalf("--json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	bad := reps[0]
	if !strings.HasSuffix(bad.Dir, "bad") || len(bad.Damage) != 3 || len(bad.Problems) != 2 || !reps[1].OK() {
		t.Errorf("--json: %+v", reps)
	}
}

func TestCheckBadCommandLine(t *testing.T) {
	if r := runLlem(t, "", "check"); r.code != 2 || !strings.Contains(r.stderr, "usage: llem check") {
		t.Errorf("no run: exit %d, %q", r.code, r.stderr)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if r := runLlem(t, "", "check", missing); r.code != 1 || !strings.Contains(r.stderr, missing) {
		t.Errorf("a missing directory: exit %d, %q", r.code, r.stderr)
	}
	if r := runLlem(t, "", "check", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "no runs inside it") {
		t.Errorf("an empty directory: exit %d, %q", r.code, r.stderr)
	}
}
