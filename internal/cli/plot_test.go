package cli

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	bs32Run  = runsDir + "/h100-bs32-cycles"
	longRun  = runsDir + "/h100-bs32-long"
	pngMagic = "\x89PNG\r\n\x1a\n"
)

// TestPlotKinds draws every kind through the command line, flags before
// and after the runs, in every format.
func TestPlotKinds(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args  []string
		out   string
		magic string
	}{
		{[]string{bs8Run, "--kind", "timeline", "-o"}, "timeline.pdf", "%PDF-"},
		{[]string{"--kind", "timeline", "--width", "double", "-o", "@", bs8Run}, "timeline.svg", "<?xml"},
		{[]string{bs8Run, bs32Run, longRun, "--kind=latency", "-o"}, "latency.png", pngMagic},
		{[]string{"-k", "efficiency", bs8Run, bs32Run, "--width", "double", "-o"}, "efficiency.pdf", "%PDF-"},
		{[]string{bs8Run, bs32Run, longRun, "--kind", "pareto", "--dpi", "72", "-o"}, "pareto.png", pngMagic},
		{[]string{"--kind", "power", bs8Run, matmulRun, "-o"}, "power.svg", "<?xml"},
	} {
		out := filepath.Join(dir, tc.out)
		args := append([]string{"plot"}, tc.args...)
		if args[len(args)-1] == "-o" {
			args = append(args, out)
		}
		for i, a := range args {
			if a == "@" {
				args[i] = out
			}
		}
		r := runLlem(t, "", args...)
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("llem %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			continue
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(tc.magic)) {
			t.Errorf("%s starts %q, want %q", tc.out, b[:min(len(b), 8)], tc.magic)
		}
	}
	// --dpi 72 at 3.5 in: 252 pixels wide.
	f, err := os.Open(filepath.Join(dir, "pareto.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 252 {
		t.Errorf("pareto.png at 72 dpi: %d px wide (%v), want 252", cfg.Width, err)
	}
}

// TestPlotSameBytes: the same command twice writes the same file.
func TestPlotSameBytes(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{"pdf", "svg", "png"} {
		var files [][]byte
		for i := range 2 {
			out := filepath.Join(dir, string(rune('a'+i))+"."+ext)
			if r := runLlem(t, "", "plot", "--kind", "timeline", "-o", out, bs8Run); r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, b)
		}
		if !bytes.Equal(files[0], files[1]) {
			t.Errorf("%s: two runs of the same command wrote different files", ext)
		}
	}
}

func TestPlotErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "fig.pdf")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{bs8Run, "--kind", "bars", "-o", out}, []string{`unknown kind "bars"`, "timeline, latency, efficiency, pareto, power"}},
		{[]string{bs8Run, "--kind", "timeline", "-o", filepath.Join(dir, "fig.jpg")}, []string{"unknown extension .jpg", ".pdf, .svg or .png"}},
		{[]string{bs8Run, "--kind", "timeline", "-o", filepath.Join(dir, "fig")}, []string{"no extension"}},
		{[]string{bs8Run, bs32Run, "--kind", "timeline", "-o", out}, []string{"timeline draws one run, and 2 were given", "plot each on its own"}},
		{[]string{runsDir, "--kind", "timeline", "-o", out}, []string{"4 were given"}},
		{[]string{bs8Run, "-o", out}, []string{"no --kind"}},
		{[]string{bs8Run, "--kind", "timeline"}, []string{"no output file", "-o FILE.pdf"}},
		{[]string{"--kind", "timeline", "-o", out}, []string{"no run given"}},
		{[]string{bs8Run, "--kind", "timeline", "-o", out, "--width", "wide"}, []string{`unknown width "wide"`, "single", "double"}},
		{[]string{bs8Run, "--kind", "timeline", "-o", out, "--dpi", "0"}, []string{"--dpi"}},
		{[]string{bs8Run, "--kind", "timeline", "-o", out, "--colour", "red"}, []string{"plot: unknown flag --colour"}},
		{[]string{bs8Run, "--kind", "timeline", "-o", out, "--kind", "power"}, []string{"--kind given twice"}},
		{[]string{"--kind", "power", bs8Run, "--kind", "latency", "-o", out}, []string{"plot: --kind given twice"}},
		{[]string{bs8Run, "--kind", "timeline", "-o"}, []string{"plot: -o needs a value"}},
		{[]string{matmulRun, "--kind", "latency", "-o", out}, []string{"latency: no run has requests", "docs/events.md"}},
		{[]string{filepath.Join(dir, "nope"), "--kind", "timeline", "-o", out}, []string{"nope"}},
	} {
		r := runLlem(t, "", append([]string{"plot"}, tc.args...)...)
		if r.code != 2 {
			t.Errorf("plot %v: exit %d, want 2 (stderr %q)", tc.args, r.code, r.stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("plot %v: stderr %q, want %q", tc.args, r.stderr, w)
			}
		}
		if !strings.HasPrefix(r.stderr, "llem: plot: ") {
			t.Errorf("plot %v: stderr %q, want it to start llem: plot:", tc.args, r.stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed plot left %s behind", out)
	}
	// A file that cannot be written: exit 1, nothing half-written.
	r := runLlem(t, "", "plot", "--kind", "timeline", "-o", filepath.Join(dir, "no", "fig.pdf"), bs8Run)
	if r.code != 1 || !strings.Contains(r.stderr, "fig.pdf") {
		t.Errorf("unwritable output: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestPlotNotes: a run a figure cannot use is left out with a note.
func TestPlotNotes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "l.png")
	r := runLlem(t, "", "plot", "--kind", "latency", "-o", out, bs8Run, matmulRun)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "llem: plot: latency: "+matmulRun+" has no requests") {
		t.Errorf("stderr %q, want a note on the run left out", r.stderr)
	}
}

func TestPlotHelp(t *testing.T) {
	for _, args := range [][]string{{"plot", "--help"}, {"plot", bs8Run, "--help"}, {"plot", "-h"}} {
		r := runLlem(t, "", args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d", args, r.code)
		}
		for _, want := range []string{"timeline", "latency", "efficiency", "pareto", "power", "--width", "3.5 in", "Okabe-Ito", "Examples:"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
}
