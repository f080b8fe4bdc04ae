package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
)

const importData = "../../testdata/imports/"

func TestImportThenAnalyze(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	r := runLlem(t, "", "import", "nvidia-smi", importData+"units.csv", "-o", run)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"imported 4 rows from 1 file(s): 1 GPU(s), 0.3 s from 2024-05-02 10:00:00.012", "0 of 4 lines skipped", "see: llem analyze " + run + "\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout %q, want %q", r.stdout, want)
		}
	}
	m, err := trace.ReadMeta(run)
	if err != nil {
		t.Fatal(err)
	}
	if m.Device != "import:nvidia-smi" || m.LlemVersion == "" || m.Source == nil || len(m.Source.Files) != 1 {
		t.Errorf("meta %+v", m)
	}

	a := runLlem(t, "", "analyze", "--json", "--quiet", run)
	if a.code != 0 {
		t.Fatalf("analyze: exit %d, stderr %q", a.code, a.stderr)
	}
	var doc struct {
		Runs []struct {
			Device  string           `json:"device"`
			Windows []map[string]any `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil {
		t.Fatalf("analyze --json: %v\n%s", err, a.stdout)
	}
	if len(doc.Runs) != 1 || doc.Runs[0].Device != "import:nvidia-smi" || len(doc.Runs[0].Windows) == 0 {
		t.Fatalf("analyze --json: %s", a.stdout)
	}
	if e, ok := doc.Runs[0].Windows[0]["energy_integrated_j"].(float64); !ok || e <= 0 {
		t.Errorf("energy_integrated_j %v: want the integral of power.draw.instant", doc.Runs[0].Windows[0]["energy_integrated_j"])
	}
}

// A log whose only power column is power.draw (the 1 s average) is
// analysed from it, with a warning saying so.
func TestImportAverageOnlyThenAnalyze(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if r := runLlem(t, "", "import", "nvidia-smi", importData+"MLPerf_data.csv", "-o", run); r.code != 0 {
		t.Fatalf("import: exit %d, stderr %q", r.code, r.stderr)
	}
	a := runLlem(t, "", "analyze", "--json", "--quiet", run)
	if a.code != 0 {
		t.Fatalf("analyze: exit %d, stderr %q", a.code, a.stderr)
	}
	var doc struct {
		Runs []struct {
			Warnings []struct{ Code string } `json:"warnings"`
			Windows  []struct {
				EnergyIntegratedJ *float64 `json:"energy_integrated_j"`
				GPUs              []struct {
					IntegratedFrom string `json:"integrated_from"`
				} `json:"gpus"`
			} `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	w := doc.Runs[0].Windows[0]
	if w.EnergyIntegratedJ == nil || *w.EnergyIntegratedJ <= 0 || w.GPUs[0].IntegratedFrom != "average_power" {
		t.Errorf("run window: %+v", w)
	}
	found := false
	for _, wn := range doc.Runs[0].Warnings {
		found = found || wn.Code == "average_power_only"
	}
	if !found {
		t.Errorf("no average_power_only warning: %+v", doc.Runs[0].Warnings)
	}
}

// TestImportOutAnywhere: -o may come before the format, before the files
// or after them.
func TestImportOutAnywhere(t *testing.T) {
	for i, args := range [][]string{
		{"import", "-o", "RUN", "nvidia-smi", importData + "units.csv"},
		{"import", "nvidia-smi", "-o", "RUN", importData + "units.csv"},
		{"import", "nvidia-smi", importData + "units.csv", "--out=RUN"},
		{"import", "nvidia-smi", importData + "units.csv", importData + "multi_gpu.csv", "-o", "RUN"},
	} {
		run := filepath.Join(t.TempDir(), "run")
		for k := range args {
			args[k] = strings.Replace(args[k], "RUN", run, 1)
		}
		r := runLlem(t, "", args...)
		if r.code != 0 {
			t.Errorf("%d %v: exit %d, stderr %q", i, args, r.code, r.stderr)
			continue
		}
		if _, err := trace.ReadMeta(run); err != nil {
			t.Errorf("%d %v: %v", i, args, err)
		}
	}
}

func TestImportBadCommandLine(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "ganglia", "x.csv", "-o", run}, `unknown format "ganglia"; known formats: nvidia-smi`},
		{[]string{"import"}, "no format given"},
		{[]string{"import", "nvidia-smi", importData + "units.csv"}, "no output directory: give -o RUN"},
		{[]string{"import", "nvidia-smi", "-o", run}, "no input file"},
		{[]string{"import", "nvidia-smi", importData + "units.csv", "-o"}, "-o needs a directory"},
		{[]string{"import", "nvidia-smi", importData + "units.csv", "--fast", "-o", run}, "unknown flag --fast"},
		{[]string{"import", "nvidia-smi", "--bogus", importData + "units.csv"}, "bogus"},
	} {
		r := runLlem(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("a refused command created %s", run)
	}
}

func TestImportRefusesNonEmptyOut(t *testing.T) {
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "meta.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runLlem(t, "", "import", "nvidia-smi", importData+"units.csv", "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, run+" already exists and is not empty") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(run, "meta.json")); string(b) != "{}" {
		t.Errorf("the existing run was overwritten: %q", b)
	}
}

func TestImportBadFile(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	r := runLlem(t, "", "import", "nvidia-smi", importData+"no_timestamp.csv", "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, "no_timestamp.csv:1: no timestamp column") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("a failed import left %s", run)
	}
	r = runLlem(t, "", "import", "nvidia-smi", filepath.Join(t.TempDir(), "missing.csv"), "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, "missing.csv") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	// Skipped lines are reported, and the import goes on.
	r = runLlem(t, "", "import", "nvidia-smi", importData+"bad_lines.csv", "-o", run)
	if r.code != 0 || !strings.Contains(r.stdout, "5 of 7 lines skipped") || !strings.Contains(r.stderr, "bad_lines.csv:3: 2 fields") {
		t.Errorf("bad lines: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestImportHelp(t *testing.T) {
	for _, args := range [][]string{
		{"import", "nvidia-smi", "--help"},
		{"import", "nvidia-smi", "x.csv", "--help"},
		{"import", "-h", "nvidia-smi"},
	} {
		r := runLlem(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "nvidia-smi --query-gpu=timestamp,index,") || !strings.Contains(r.stdout, "--format=csv -lms 100") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	r := runLlem(t, "", "import", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "nvidia-smi") || !strings.Contains(r.stdout, "FORMAT FILE... -o RUN") {
		t.Errorf("import --help: exit %d, stdout %q", r.code, r.stdout)
	}
}
