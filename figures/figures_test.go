package figures

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shipped makes a tree like the repository's (examples/figures.toml next
// to a testdata link to the shipped runs) in a temporary directory, so the
// example manifest writes its out/figures/ there.
func shipped(t *testing.T) (root, manifest string) {
	t.Helper()
	root = t.TempDir()
	td, err := filepath.Abs("../testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(td, filepath.Join(root, "testdata")); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	b, err := os.ReadFile("../examples/figures.toml")
	if err != nil {
		t.Fatal(err)
	}
	manifest = filepath.Join(root, "examples", "figures.toml")
	if err := os.MkdirAll(filepath.Dir(manifest), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root, manifest
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[strings.TrimPrefix(p, dir)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestExampleTwiceIdentical makes the shipped example twice: the outputs
// and provenance.json must be the same bytes, and the provenance must
// hash what is on disk.
func TestExampleTwiceIdentical(t *testing.T) {
	root, manifest := shipped(t)
	out := filepath.Join(root, "out", "figures")
	var trees []map[string][]byte
	for range 2 {
		m, err := Load(manifest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Generate(m, "test", nil); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, readTree(t, out))
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
	}
	a, b := trees[0], trees[1]
	if len(a) != 8 {
		t.Errorf("%d files in out/figures, want 7 outputs and provenance.json: %v", len(a), keys(a))
	}
	for name, x := range a {
		if !bytes.Equal(x, b[name]) {
			t.Errorf("%s differs between two runs of llem figures", name)
		}
	}

	var p Provenance
	if err := json.Unmarshal(a["/provenance.json"], &p); err != nil {
		t.Fatal(err)
	}
	if p.LlemVersion != "test" || p.Seed != 0 || !strings.HasPrefix(p.SettingsHash, "sha256:") || p.Settings.Resamples != 2000 {
		t.Errorf("provenance: version %q, seed %d, hash %q, resamples %d", p.LlemVersion, p.Seed, p.SettingsHash, p.Settings.Resamples)
	}
	if p.Manifest.Path != "figures.toml" {
		t.Errorf("manifest path %q", p.Manifest.Path)
	}
	// Every file of the four runs, sorted, relative to the manifest.
	want := 0
	for _, r := range []string{"h100-bs8-cycles", "h100-bs32-cycles", "h100-bs32-long", "h100-matmul-cycles"} {
		want += len(readTree(t, filepath.Join("../testdata/runs", r)))
	}
	if len(p.Inputs) != want {
		t.Errorf("%d inputs, want %d", len(p.Inputs), want)
	}
	for i, in := range p.Inputs {
		if i > 0 && p.Inputs[i-1].Path >= in.Path {
			t.Errorf("inputs not sorted: %s before %s", p.Inputs[i-1].Path, in.Path)
		}
		if !strings.HasPrefix(in.Path, "../testdata/runs/") || len(in.SHA256) != 64 {
			t.Errorf("input %+v", in)
		}
	}
	if len(p.Outputs) != 7 {
		t.Fatalf("%d outputs, want 7", len(p.Outputs))
	}
	for _, o := range p.Outputs {
		name := "/" + strings.TrimPrefix(o.Path, "../out/figures/")
		got, ok := a[name]
		if !ok {
			t.Errorf("output %s not written", o.Path)
			continue
		}
		if f := hashOf(got); f != o.SHA256 || int64(len(got)) != o.Bytes {
			t.Errorf("%s: provenance says sha256 %s, %d bytes; the file has %s, %d", o.Path, o.SHA256, o.Bytes, f, len(got))
		}
	}
}

func hashOf(b []byte) string {
	dir, _ := os.MkdirTemp("", "h")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "f")
	os.WriteFile(p, b, 0o644)
	f, _ := hashFile(p, "f")
	return f.SHA256
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// TestManifestErrors: each mistake is an *Error naming the line and key.
func TestManifestErrors(t *testing.T) {
	runs, err := filepath.Abs("../testdata/runs")
	if err != nil {
		t.Fatal(err)
	}
	bs8 := `"` + filepath.ToSlash(filepath.Join(runs, "h100-bs8-cycles")) + `"`
	fig := "[[figure]]\nkind = \"timeline\"\nruns = [" + bs8 + "]\nout = \"t.svg\"\n"
	for _, tc := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"unknown top key", "colour = 1\n" + fig, 1, `unknown key "colour" in top level`},
		{"unknown figure key", fig + "colour = \"red\"\n", 5, `unknown key "colour" in [[figure]]`},
		{"unknown setting", "[settings]\nseed = 1\nresample = 5\n" + fig, 3, `[settings] resample: no such setting`},
		{"bad setting type", "[settings]\nseed = \"x\"\n" + fig, 2, `[settings] seed: bad value x`},
		{"bad setting range", "[settings]\nconfidence = 2.0\n" + fig, 2, `[settings] confidence: must be in (0, 1)`},
		{"missing settings file", "settings_file = \"nope.json\"\n" + fig, 1, `nope.json: no such file or directory`},
		{"bad kind", "[[figure]]\nkind = \"histogram\"\nruns = [" + bs8 + "]\nout = \"t.svg\"\n", 2, `[[figure]] #1 kind: unknown kind "histogram"`},
		{"no kind", "[[figure]]\nruns = [" + bs8 + "]\nout = \"t.svg\"\n", 1, `[[figure]] #1: no kind`},
		{"missing run", fig + "[[figure]]\nkind = \"power\"\nruns = [\"nope/run\"]\nout = \"p.svg\"\n", 7, `[[figure]] #2 runs: "nope/run": no such run directory`},
		{"glob matching nothing", "[[table]]\nkind = \"analyze\"\nruns = [\"runs/*-nothing\"]\nout = \"r.csv\"\n", 3, `"runs/*-nothing" matches nothing`},
		{"no runs", "[[figure]]\nkind = \"power\"\nout = \"p.svg\"\n", 1, `no runs`},
		{"timeline of two", "[[figure]]\nkind = \"timeline\"\nruns = [\"" + filepath.ToSlash(runs) + "/h100-bs*-cycles\"]\nout = \"t.svg\"\n", 3, `a timeline figure draws one run, and 2 match`},
		{"bad extension", "[[figure]]\nkind = \"power\"\nruns = [" + bs8 + "]\nout = \"p.jpg\"\n", 4, `unknown extension .jpg`},
		{"bad width", fig + "width = \"triple\"\n", 5, `[[figure]] #1 width`},
		{"table kind", "[[table]]\nkind = \"plot\"\nruns = [" + bs8 + "]\nout = \"r.csv\"\n", 2, `unknown kind "plot": want analyze`},
		{"table format", "[[table]]\nkind = \"analyze\"\nformat = \"xlsx\"\nruns = [" + bs8 + "]\nout = \"r.csv\"\n", 3, `unknown format "xlsx"`},
		{"compare of one", "[[table]]\nkind = \"compare\"\nruns = [" + bs8 + "]\nout = \"c.csv\"\n", 3, `a comparison needs at least two runs`},
		{"analyze with alpha", "[[table]]\nkind = \"analyze\"\nalpha = 0.1\nruns = [" + bs8 + "]\nout = \"c.csv\"\n", 3, `only a compare table takes alpha`},
		{"same out twice", fig + fig, 8, `[[figure]] #2 out: out`},
		{"syntax", fig + "kind = = 1\n", 5, ``},
		{"wrong type", "[[figure]]\nkind = 3\n", 2, ``},
		{"empty", "# nothing\n", 0, `nothing to make`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.toml")
			if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load: %v (%T), want an *Error", err, err)
			}
			if e.Line != tc.line {
				t.Errorf("line %d, want %d: %v", e.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.line > 0 && !strings.Contains(err.Error(), "m.toml:") {
				t.Errorf("error %q does not name the manifest's line", err)
			}
		})
	}
}

// TestSettingsOverFile: [settings] keys override settings_file's, which
// override the defaults; provenance defaults beside the first output.
func TestSettingsOverFile(t *testing.T) {
	dir := t.TempDir()
	runs, _ := filepath.Abs("../testdata/runs/h100-bs8-cycles")
	os.WriteFile(filepath.Join(dir, "s.json"), []byte(`{"seed": 7, "resamples": 500}`), 0o644)
	text := "settings_file = \"s.json\"\n[settings]\nresamples = 300\n[[figure]]\nkind = \"timeline\"\nruns = [\"" +
		filepath.ToSlash(runs) + "\"]\nout = \"figs/t.png\"\n"
	p := filepath.Join(dir, "m.toml")
	os.WriteFile(p, []byte(text), 0o644)
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Settings.Seed != 7 || m.Settings.Resamples != 300 || m.Settings.Confidence != 0.95 {
		t.Errorf("settings: seed %d, resamples %d, confidence %g", m.Settings.Seed, m.Settings.Resamples, m.Settings.Confidence)
	}
	if want := filepath.Join(dir, "figs", "provenance.json"); m.Provenance != want {
		t.Errorf("provenance at %s, want %s", m.Provenance, want)
	}
}
