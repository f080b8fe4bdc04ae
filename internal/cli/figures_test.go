package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAnalyzePlots: llem analyze --plots DIR writes the usual output and
// the standard set, and says where on standard error.
func TestAnalyzePlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "figs")
	r := runLlem(t, "", "analyze", "-q", "--csv", "--plots", dir, bs8Run, bs32Run, matmulRun)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "run,") && !strings.Contains(r.stdout, bs8Run) {
		t.Errorf("no CSV on stdout: %.200q", r.stdout)
	}
	var want []string
	for _, base := range []string{"h100-bs8-cycles-timeline", "h100-bs32-cycles-timeline", "h100-matmul-cycles-timeline",
		"latency", "efficiency", "pareto", "power"} {
		for _, ext := range []string{".svg", ".png"} {
			want = append(want, filepath.Join(dir, base+ext))
		}
	}
	for _, p := range want {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		magic := map[string]string{".svg": "<?xml", ".png": pngMagic}[filepath.Ext(p)]
		if !bytes.HasPrefix(b, []byte(magic)) {
			t.Errorf("%s starts %q", p, b[:min(len(b), 8)])
		}
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr does not name %s: %s", p, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(want) {
		t.Errorf("%d files in %s, want %d", len(ents), dir, len(want))
	}
	// The matmul run has no requests: left out of latency, with a note.
	if !strings.Contains(r.stderr, "h100-matmul-cycles has no requests") {
		t.Errorf("no note of the run without requests: %s", r.stderr)
	}

	// Without --plots nothing is drawn and nothing is said of figures.
	r = runLlem(t, "", "analyze", "-q", bs8Run)
	if r.code != 0 || strings.Contains(r.stderr, "plots") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestFiguresCommand: a manifest of the shipped runs makes its outputs
// and provenance; bad manifests exit 2 naming the line.
func TestFiguresCommand(t *testing.T) {
	dir := t.TempDir()
	run, err := filepath.Abs(bs8Run)
	if err != nil {
		t.Fatal(err)
	}
	run = filepath.ToSlash(run)
	good := "[settings]\nseed = 3\n[[figure]]\nkind = \"timeline\"\nruns = [\"" + run + "\"]\nout = \"out/t.svg\"\n" +
		"[[table]]\nkind = \"analyze\"\nformat = \"json\"\nruns = [\"" + run + "\"]\nout = \"out/r.json\"\n"
	m := filepath.Join(dir, "m.toml")
	if err := os.WriteFile(m, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runLlem(t, "", "figures", m)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"t.svg", "r.json", "provenance.json"} {
		p := filepath.Join(dir, "out", f)
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr does not name %s: %s", p, r.stderr)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out", "r.json"))
	if !strings.Contains(string(b), `"seed": 3`) {
		t.Errorf("the table was not analysed with the manifest's seed")
	}
	if r := runLlem(t, "", "figures", "-q", m); r.code != 0 || r.stderr != "" {
		t.Errorf("-q: exit %d, stderr %q", r.code, r.stderr)
	}

	for _, tc := range []struct{ text, want string }{
		{"[[figure]]\nkind = \"timeline\"\nruns = [\"" + run + "\"]\nout = \"t.svg\"\nheight = 3\n", `m.toml:5: unknown key "height" in [[figure]]`},
		{"[[figure]]\nkind = \"bars\"\nruns = [\"" + run + "\"]\nout = \"t.svg\"\n", `m.toml:2: [[figure]] #1 kind: unknown kind "bars"`},
		{"[[table]]\nkind = \"analyze\"\nruns = [\"nowhere/*\"]\nout = \"r.csv\"\n", `m.toml:3: [[table]] #1 runs: "nowhere/*" matches nothing`},
		{"[[table]]\nkind = \"analyze\"\nruns = [\"nowhere\"]\nout = \"r.csv\"\n", `no such run directory`},
	} {
		if err := os.WriteFile(m, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runLlem(t, "", "figures", m)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
		}
	}
	for _, args := range [][]string{{"figures"}, {"figures", m, m}, {"figures", filepath.Join(dir, "none.toml")}} {
		if r := runLlem(t, "", args...); r.code != 2 {
			t.Errorf("llem %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}
