package cli

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
)

// reportPage runs llem report on args into a file and returns the page.
func reportPage(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	r := runLlem(t, "", append(append([]string{"report"}, args...), "-o", out)...)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("llem report %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// external finds what a page would fetch: any URL, and any element or
// CSS that loads a resource.
var external = regexp.MustCompile(`(?i)https?://|<script|<link|<img|<iframe|<object|<embed|\bsrc\s*=|url\(|@import|@font-face`)

// TestReportContents: a run's page holds its table, results, warnings,
// timeline and environment; a sweep's adds the figures across runs.
func TestReportContents(t *testing.T) {
	page := string(reportPage(t, "one.html", bs8Run))
	runs, err := analyze.Open([]string{bs8Run}, analyze.DefaultSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	iv := runs[0].Result.Cycles.EnergyPerOutputTokenJ
	for _, want := range []string{
		"<!DOCTYPE html>", `<table class="num windows">`, "J / out token", "★ measure",
		// energy per output token over the 5 cycles, as llem analyze gives it
		fmt.Sprintf("%.5f [%.5f, %.5f]", iv.Estimate, iv.Low, iv.High),
		"Idle baseline", "P0 (loaded idle) baseline", "Steady state", "Time to first token",
		"cpu_governor_unknown", `<figure class="fig-timeline">`, "<svg",
		"NVIDIA H100 80GB HBM3", "580.159.04", "700 W (the default)", "Persistence", "ECC", "MIG",
		"SM 1980, memory 2619 MHz", "CPU governor", "python3 examples/llama_infer.py --batch 8",
		"79aaadc-dirty", "sha256:",
	} {
		if !strings.Contains(strings.ReplaceAll(page, "persistence", "Persistence"), want) {
			t.Errorf("the page of %s lacks %q", bs8Run, want)
		}
	}
	if strings.Count(page, "short_window</code> (measure (cycle 1))") != 1 {
		t.Errorf("a window's warning is not listed exactly once")
	}
	if m := external.FindString(page); m != "" {
		t.Errorf("the page loads an external resource: %q", m)
	}
	if strings.Contains(page, "<?xml") || strings.Contains(page, "<!--") {
		t.Errorf("an SVG's XML declaration or comment is left in the page")
	}

	sweep := string(reportPage(t, "sweep.html", bs8Run, bs32Run))
	for _, want := range []string{"Sweep summary", "fig-efficiency", "fig-pareto", "fig-latency", "fig-power", "batch=8", "batch=32"} {
		if !strings.Contains(sweep, want) {
			t.Errorf("the sweep's page lacks %q", want)
		}
	}
	if n := strings.Count(sweep, "<svg"); n != 6 { // 2 timelines, 4 figures across runs
		t.Errorf("the sweep's page has %d figures, want 6", n)
	}
	if m := external.FindString(sweep); m != "" {
		t.Errorf("the sweep's page loads an external resource: %q", m)
	}
}

// TestReportDeterministic: the same runs give the same bytes.
func TestReportDeterministic(t *testing.T) {
	for _, args := range [][]string{{bs8Run}, {bs8Run, matmulRun}} {
		a := reportPage(t, "a.html", args...)
		b := reportPage(t, "b.html", args...)
		if !bytes.Equal(a, b) {
			t.Errorf("llem report %s: two pages differ", strings.Join(args, " "))
		}
	}
	// To standard output, flags before the runs: the same page.
	r := runLlem(t, "", "report", "-o", "-", bs8Run)
	if r.code != 0 || r.stdout != string(reportPage(t, "c.html", bs8Run)) {
		t.Errorf("llem report -o - %s: exit %d, stderr %q, or a different page", bs8Run, r.code, r.stderr)
	}
}

func TestReportUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", bs8Run}, "no output file"},
		{[]string{"report", "-o", "x.html"}, "no run given"},
		{[]string{"report", bs8Run, "--kind", "x", "-o", "x.html"}, "report: unknown flag --kind"},
		{[]string{"report", "-o", "a.html", bs8Run, "-o", "b.html"}, "given twice"},
		{[]string{"report", "-o", "x.html", "/nonexistent/run"}, "nonexistent"},
	} {
		r := runLlem(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("llem %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}

// TestReportChromium opens the page of a real run in headless Chromium
// with every host name unresolvable: the DOM holds the table and the
// figures, and the screenshot is a drawn page, not a blank one. The
// screenshot goes to $LLEM_TEST_ARTIFACTS when that is set.
func TestReportChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH: the page is not checked in a browser (.ci/run installs Debian's chromium package)")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, reportPage(t, "report.html", bs8Run), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	chromium := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", `--host-resolver-rules=MAP * ~NOTFOUND`,
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--no-first-run", "--disable-extensions"}
		cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+abs)...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}

	dom := string(chromium("--dump-dom"))
	for _, want := range []string{`<table class="num windows">`, "<svg", "J / out token", "NVIDIA H100 80GB HBM3"} {
		if !strings.Contains(dom, want) {
			t.Errorf("Chromium's DOM of the page lacks %q", want)
		}
	}

	chromium("--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("the screenshot is %dx%d, want 1280x2000", b.Dx(), b.Dy())
	}
	if n := colours(img); n < 16 {
		t.Errorf("the screenshot has %d distinct colours: a blank page", n)
	}
	if d := os.Getenv("LLEM_TEST_ARTIFACTS"); d != "" {
		b, err := os.ReadFile(shot)
		if err == nil {
			err = os.MkdirAll(d, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(d, "report.png"), b, 0o644)
		}
		if err != nil {
			t.Errorf("copying the screenshot to LLEM_TEST_ARTIFACTS: %v", err)
		}
	}
}

// colours counts the distinct colours of img (up to 1000).
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= 1000 {
				return len(seen)
			}
		}
	}
	return len(seen)
}
