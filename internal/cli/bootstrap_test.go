package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/llem/llem/analyze/bootstrap"
)

// specX is the sample of scipy's test_bootstrap_against_R, whose reference
// intervals for the mean come from R's boot package with 10^6 resamples
// (quoted in ../shared/methodology-specs.md, "BCa bootstrap"):
// BCa (32.31, 91.43), percentile (28.86, 84.21), basic (23.77, 79.12).
const specX = "10\n12\n12.5\n12.5\n13.9\n15\n21\n22\n23\n34\n50\n81\n89\n121\n134\n213\n"

type cliResult struct {
	code           int
	stdout, stderr string
}

func runLlem(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"llem"}, args...), strings.NewReader(stdin), &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

func decodeInterval(t *testing.T, r cliResult) bootstrap.Interval {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var iv bootstrap.Interval
	if err := dec.Decode(&iv); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Errorf("--json printed more than one document: %q", r.stdout)
	}
	if !strings.HasSuffix(r.stdout, "}\n") {
		t.Errorf("--json output does not end in a newline: %q", r.stdout)
	}
	return iv
}

func checkRel(t *testing.T, what string, got, want, rtol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= rtol*math.Abs(want)) {
		t.Errorf("%s = %.4f, want %.2f (rtol %g)", what, got, want, rtol)
	}
}

// The reference intervals, with enough resamples (100,000 take ~20 ms) that
// the Monte Carlo error is well inside 1%.
func TestBootstrapAgainstR(t *testing.T) {
	for _, c := range []struct {
		method    string
		low, high float64
	}{
		{"bca", 32.31, 91.43},
		{"percentile", 28.86, 84.21},
		{"basic", 23.77, 79.12},
	} {
		iv := decodeInterval(t, runLlem(t, specX, "bootstrap", "--resamples", "100000", "--method", c.method, "--json"))
		if iv.Estimate != 53.99375 || iv.N != 16 || iv.Method != c.method || iv.Resamples != 100000 || iv.Seed != 0 || iv.Confidence != 0.95 || iv.Degenerate {
			t.Errorf("%s: %+v", c.method, iv)
		}
		checkRel(t, c.method+" low", iv.Low, c.low, 0.01)
		checkRel(t, c.method+" high", iv.High, c.high, 0.01)
	}
}

func TestBootstrapText(t *testing.T) {
	r := runLlem(t, specX, "bootstrap")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	// Defaults: mean, 95%, BCa, 2,000 resamples, seed 0.
	re := regexp.MustCompile(`^mean 53\.99  95% CI \[(\d+\.\d\d), (\d+\.\d\d)\]  \(BCa, n=16, 2000 resamples, seed 0\)\n$`)
	if !re.MatchString(r.stdout) {
		t.Fatalf("output %q does not match %s", r.stdout, re)
	}
	// The text shows the same interval as --json.
	iv := decodeInterval(t, runLlem(t, specX, "bootstrap", "--json"))
	if want := re.FindStringSubmatch(r.stdout); want[1] != strconv.FormatFloat(iv.Low, 'f', 2, 64) || want[2] != strconv.FormatFloat(iv.High, 'f', 2, 64) {
		t.Errorf("text interval [%s, %s], JSON (%g, %g)", want[1], want[2], iv.Low, iv.High)
	}

	// Other levels, statistics and methods are named as given.
	r = runLlem(t, specX, "bootstrap", "--stat", "median", "--confidence", "0.9", "--method", "percentile", "--seed", "42", "--resamples", "500")
	if !regexp.MustCompile(`^median 22\.50  90% CI \[\d+\.\d\d, \d+\.\d\d\]  \(percentile, n=16, 500 resamples, seed 42\)\n$`).MatchString(r.stdout) {
		t.Errorf("median: %q (stderr %q)", r.stdout, r.stderr)
	}
}

// The same data, flags and seed give the same bytes; another seed, other
// resamples. A file, "-" and stdin are the same input.
func TestBootstrapReproducible(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.txt")
	if err := os.WriteFile(file, []byte(specX), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range [][]string{nil, {"--json"}} {
		args := append([]string{"bootstrap", "--seed", "7"}, format...)
		a := runLlem(t, specX, args...)
		b := runLlem(t, specX, args...)
		if a.code != 0 || a.stdout != b.stdout {
			t.Errorf("%v twice: exit %d\n%s\n%s", args, a.code, a.stdout, b.stdout)
		}
		if f := runLlem(t, "", append(args, file)...); f.stdout != a.stdout {
			t.Errorf("%v FILE differs from stdin:\n%s\n%s", args, f.stdout, a.stdout)
		}
		if d := runLlem(t, specX, append(args, "-")...); d.stdout != a.stdout {
			t.Errorf("%v - differs from stdin:\n%s\n%s", args, d.stdout, a.stdout)
		}
		if o := runLlem(t, specX, append([]string{"bootstrap", "--seed", "8"}, format...)...); o.stdout == a.stdout {
			t.Errorf("seeds 7 and 8 give the same output %q", a.stdout)
		}
	}
}

func TestBootstrapDegenerate(t *testing.T) {
	r := runLlem(t, "5\n5\n# a comment\n\n5\n", "bootstrap")
	want := "mean 5  no 95% CI  (BCa, n=3, 2000 resamples, seed 0)\n" +
		"  all 3 values are equal (5): every resample is the same, so there is no interval\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("all equal: exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	iv := decodeInterval(t, runLlem(t, "5\n5\n5\n", "bootstrap", "--json"))
	if !iv.Degenerate || iv.Estimate != 5 || !math.IsNaN(iv.Low) || !math.IsNaN(iv.High) || iv.Note == "" {
		t.Errorf("all equal, --json: %+v", iv)
	}
	r = runLlem(t, "5\n5\n5\n", "bootstrap", "--json")
	if !strings.Contains(r.stdout, `"ci_low": null`) || !strings.Contains(r.stdout, `"degenerate": true`) {
		t.Errorf("all equal, --json: %s", r.stdout)
	}
	r = runLlem(t, "42\n", "bootstrap", "--stat", "median")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "median 42  no 95% CI") || !strings.Contains(r.stdout, "n = 1") {
		t.Errorf("one value: exit %d, %q", r.code, r.stdout)
	}
}

// Bad input exits 2 with a message that names the flag, or the file and line.
func TestBootstrapBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte("1.5\n2\n3 W\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		want  []string // all in stderr
	}{
		{specX, []string{"--confidence", "0"}, []string{"--confidence must be in (0, 1), got 0"}},
		{specX, []string{"--confidence", "1"}, []string{"--confidence must be in (0, 1), got 1"}},
		{specX, []string{"--confidence", "95"}, []string{"--confidence must be in (0, 1), got 95"}},
		{specX, []string{"--confidence", "-0.5"}, []string{"--confidence must be in (0, 1)"}},
		{specX, []string{"--confidence", "NaN"}, []string{"--confidence must be in (0, 1), got NaN"}},
		{specX, []string{"--confidence", "high"}, []string{"bootstrap:", "confidence", `"high"`}},
		{specX, []string{"--resamples", "0"}, []string{"--resamples must be at least 1, got 0"}},
		{specX, []string{"--resamples", "-10"}, []string{"--resamples must be at least 1, got -10"}},
		{specX, []string{"--resamples", "lots"}, []string{"resamples", `"lots"`}},
		{specX, []string{"--seed", "-1"}, []string{"seed", `"-1"`}},
		{specX, []string{"--stat", "mode"}, []string{`--stat "mode": want mean or median`}},
		{specX, []string{"--method", "studentized"}, []string{`--method "studentized": want bca, percentile or basic`}},
		{specX, []string{"--bogus"}, []string{"bootstrap:", "bogus"}},
		{specX, []string{"a.txt", "b.txt"}, []string{"one input at most, got 2"}},
		{"", nil, []string{"stdin: no numbers"}},
		{"# only a comment\n\n", []string{"-"}, []string{"stdin: no numbers"}},
		{"1\n2\nfoo\n", nil, []string{`stdin: line 3: "foo" is not a number`}},
		{"1\nNaN\n", nil, []string{`stdin: line 2: "NaN" is not a finite number`}},
		{"", []string{bad}, []string{bad + `: line 3: "3 W" is not a number`}},
	} {
		r := runLlem(t, c.stdin, append([]string{"bootstrap"}, c.args...)...)
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
	// A file that cannot be read is not a usage error: exit 1, naming it.
	missing := filepath.Join(t.TempDir(), "missing.txt")
	if r := runLlem(t, "", "bootstrap", missing); r.code != 1 || !strings.Contains(r.stderr, missing) {
		t.Errorf("missing file: exit %d, stderr %q; want exit 1 naming %s", r.code, r.stderr, missing)
	}
}

// The help teaches what BCa is, that the seed makes a run reproducible and
// what happens with degenerate data.
func TestBootstrapHelp(t *testing.T) {
	r := runLlem(t, "", "bootstrap", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"bias-corrected and accelerated", "--seed", "reproducible", "all values equal", "no interval", "--json", "[FILE|-]"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("help does not mention %q:\n%s", w, r.stdout)
		}
	}
}
