package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
)

var update = flag.Bool("update", false, "rewrite testdata/analyze-golden.json")

// TestAnalyzeGolden pins the results document of a synthetic 8-GPU run
// (20 minutes, 5 cycles of 32 streams), byte for byte, as `llem analyze
// --json` writes it: a change to how the analysis is computed (streaming,
// parallel, memory) must not change a number of it (issue 12). Rewrite
// it with -update only for a change that means to change results, after
// reading the diff.
func TestAnalyzeGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	generate(t, Config{Out: dir, GPUs: 8, Duration: 20 * time.Minute, Seed: 7, RotateInterval: time.Minute})
	got := analyseJSON(t, []string{dir}, 1)
	// The run's directory is a temporary one: name it as the golden does.
	got = bytes.ReplaceAll(got, []byte(dir), []byte("synth-8gpu-20m"))
	golden := filepath.Join("testdata", "analyze-golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./bench/synth -run AnalyzeGolden -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := range max(len(g), len(w)) {
			if i >= len(g) || i >= len(w) || !bytes.Equal(g[i], w[i]) {
				t.Fatalf("results differ from %s at line %d", golden, i+1)
			}
		}
	}
}

// analyseJSON is the results document of the runs, as llem analyze --json
// writes it, analysed with the given number of workers.
func analyseJSON(t *testing.T, dirs []string, workers int) []byte {
	t.Helper()
	runs, err := analyze.OpenWith(dirs, analyze.DefaultSettings(), analyze.OpenOptions{Workers: workers, ResultsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(analyze.Document(runs, analyze.DefaultSettings(), "test")); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
