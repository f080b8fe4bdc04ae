package plots

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/llem/llem/analyze"
)

type plotTick = plot.Tick

var update = flag.Bool("update", false, "rewrite the golden images in testdata/golden")

// The real H100 runs (testdata/runs/README.md).
const (
	runsDir = "../testdata/runs/"
	bs8     = runsDir + "h100-bs8-cycles"    // 5 cycles, batch 8
	bs32    = runsDir + "h100-bs32-cycles"   // 5 cycles, batch 32
	long    = runsDir + "h100-bs32-long"     // one 210 s measure, 2464 requests
	matmul  = runsDir + "h100-matmul-cycles" // 3 cycles of a load step, no requests
	simJob  = "../testdata/jobs/sim-2nodes"  // a two-node Slurm job, simulated GPUs
)

var (
	loadOnce sync.Once
	loaded   map[string]*Run
	loadErr  error
)

// runs loads the shipped runs once for every test, and names them as
// Load would for this set.
func runs(t *testing.T, dirs ...string) []*Run {
	t.Helper()
	loadOnce.Do(func() {
		all, err := analyze.Open([]string{bs8, bs32, long, matmul, simJob}, analyze.DefaultSettings(), nil)
		loaded, loadErr = map[string]*Run{}, err
		for _, r := range all {
			loaded[r.Dir] = r
		}
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	var out []*Run
	for _, d := range dirs {
		r := *loaded[d] // a copy: NameRuns sets Label
		out = append(out, &r)
	}
	analyze.NameRuns(out)
	return out
}

// goldenDPI keeps the golden images small; every figure is drawn at its
// printed size, so the layout is the one a PDF gets.
const goldenDPI = 100

var goldenCases = []struct {
	name  string
	kind  Kind
	dirs  []string
	width Width
}{
	{"timeline", Timeline, []string{bs8}, Single},
	{"timeline-long-double", Timeline, []string{long}, Double},
	{"timeline-matmul", Timeline, []string{matmul}, Single},
	{"latency", Latency, []string{bs8, bs32, long}, Single},
	{"latency-double", Latency, []string{bs8, bs32, long}, Double},
	{"efficiency", Efficiency, []string{bs8, bs32, long}, Single},
	{"pareto", Pareto, []string{bs8, bs32, long}, Single},
	{"power", Power, []string{bs8, bs32, long}, Single},
	{"nodes", Nodes, []string{simJob}, Single},
}

// TestGolden draws each kind from the shipped runs and compares the PNG
// with testdata/golden/NAME.png, pixel for pixel; `go test ./plots
// -update` rewrites them. gonum/plot rasterises its embedded fonts in Go,
// so the pixels are the same on every amd64 machine; elsewhere (arm64
// fuses multiply-adds) a few anti-aliased edge pixels may differ.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Draw(tc.kind, runs(t, tc.dirs...), tc.width)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := f.Render(&buf, PNG, goldenDPI); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name+".png")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./plots -update to create it)", err)
			}
			if bytes.Equal(want, buf.Bytes()) {
				return
			}
			n, total, err := pixelDiff(want, buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			allowed := 0
			if runtime.GOARCH != "amd64" {
				allowed = total / 2000 // 0.05%
			}
			if n > allowed {
				got := filepath.Join(t.TempDir(), tc.name+".png")
				os.WriteFile(got, buf.Bytes(), 0o644)
				t.Errorf("%s: %d of %d pixels differ from the golden image (allowed %d); got %s; if the change is meant, run go test ./plots -update and look at the images",
					tc.name, n, total, allowed, got)
			}
		})
	}
}

// pixelDiff counts the pixels that differ between two PNGs.
func pixelDiff(a, b []byte) (n, total int, err error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return 0, 0, err
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, 0, err
	}
	if ia.Bounds() != ib.Bounds() {
		return ia.Bounds().Dx() * ia.Bounds().Dy(), ia.Bounds().Dx() * ia.Bounds().Dy(), nil
	}
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if ia.At(x, y) != ib.At(x, y) {
				n++
			}
		}
	}
	return n, r.Dx() * r.Dy(), nil
}

// TestDeterministic: the vector formats are byte-identical from one
// drawing to the next (no timestamps, no random ids, no map order), and
// the PDF carries the fixed date rather than the time of writing.
func TestDeterministic(t *testing.T) {
	for _, tc := range goldenCases {
		if tc.name != "timeline" && tc.name != "pareto" && tc.name != "efficiency" {
			continue
		}
		for _, format := range []Format{PDF, SVG, PNG} {
			var outs [][]byte
			for range 3 {
				f, err := Draw(tc.kind, runs(t, tc.dirs...), tc.width)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := f.Render(&buf, format, 72); err != nil {
					t.Fatal(err)
				}
				outs = append(outs, buf.Bytes())
			}
			for i := 1; i < len(outs); i++ {
				if !bytes.Equal(outs[0], outs[i]) {
					t.Errorf("%s %s: drawing %d differs from the first (%d and %d bytes)", tc.name, format, i+1, len(outs[0]), len(outs[i]))
				}
			}
			if format == PDF {
				for _, want := range []string{"/CreationDate (D:20000101000000)", "/ModDate (D:20000101000000)"} {
					if !bytes.Contains(outs[0], []byte(want)) {
						t.Errorf("%s: the PDF lacks %s", tc.name, want)
					}
				}
			}
		}
	}
}

// TestSizes: the printed widths, a sensible height, and PNG pixels at the
// asked resolution.
func TestSizes(t *testing.T) {
	for _, w := range []Width{Single, Double} {
		f, err := Draw(Timeline, runs(t, bs8), w)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.W.Points(); got != w.Length().Points() {
			t.Errorf("%s: width %g pt, want %g", w, got, w.Length().Points())
		}
		if h := f.H.Points() / 72; h < 2.5 || h > 6 {
			t.Errorf("%s timeline: height %.2f in", w, h)
		}
		var buf bytes.Buffer
		if err := f.Render(&buf, PNG, 200); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := int(math.Round(f.W.Points() / 72 * 200)); cfg.Width != want {
			t.Errorf("%s: PNG %d px wide at 200 dpi, want %d", w, cfg.Width, want)
		}
	}
	if got := Single.Length().Points(); got != 252 {
		t.Errorf("single = %g pt, want 3.5 in", got)
	}
	if got := Double.Length().Points(); got != 504 {
		t.Errorf("double = %g pt, want 7 in", got)
	}
}

func TestFonts(t *testing.T) {
	for _, w := range []Width{Single, Double} {
		st := newStyle(w)
		for name, s := range map[string]float64{"tick": st.tick.Font.Size.Points(), "label": st.label.Font.Size.Points(),
			"legend": st.legend.Font.Size.Points(), "small": st.small.Font.Size.Points()} {
			if s < 7 {
				t.Errorf("%s: %s font %g pt, want at least 7 pt at print size", w, name, s)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := ParseKind("scatter"); err == nil || !strings.Contains(err.Error(), "timeline, latency, efficiency, pareto, power") {
		t.Errorf("ParseKind(scatter): %v, want the list of kinds", err)
	}
	for in, want := range map[string]Format{"a.pdf": PDF, "b/c.SVG": SVG, "x.y.png": PNG} {
		if got, err := FormatOf(in); err != nil || got != want {
			t.Errorf("FormatOf(%q) = %q, %v", in, got, err)
		}
	}
	for in, want := range map[string]string{"fig.jpg": "unknown extension .jpg", "fig": "no extension"} {
		if _, err := FormatOf(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FormatOf(%q): %v, want %q", in, err, want)
		}
	}
	if _, err := ParseWidth("triple"); err == nil || !strings.Contains(err.Error(), "single") {
		t.Errorf("ParseWidth(triple): %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		dirs []string
		want string
	}{
		{Timeline, []string{bs8, bs32}, "draws one run; 2 were given"},
		{Latency, []string{matmul}, "no run has requests"},
		{Efficiency, []string{matmul}, "no run has requests"},
		{Pareto, []string{matmul}, "no run has requests"},
		{Kind("bar"), []string{bs8}, "unknown kind"},
		{Nodes, []string{bs8}, "not a multi-node job"},
		{Nodes, []string{simJob, simJob}, "draws one job; 2 were given"},
	} {
		_, err := Draw(tc.kind, runs(t, tc.dirs...), Single)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want %q", tc.kind, tc.dirs, err, tc.want)
		}
	}
	// A run without requests among others is left out, and said so.
	f, err := Draw(Latency, runs(t, bs8, matmul), Single)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "h100-matmul-cycles has no requests") {
		t.Errorf("notes %q", f.Notes)
	}
}

// TestNames: runs are named by the labels that differ between them.
func TestNames(t *testing.T) {
	var got []string
	for _, r := range runs(t, bs8, bs32, long) {
		got = append(got, r.Label)
	}
	want := []string{"batch=8 study=cycles", "batch=32 study=cycles", "batch=32 study=long"}
	if !slices.Equal(got, want) {
		t.Errorf("labels %q, want %q", got, want)
	}
	if l := runs(t, bs8, bs32)[1].Label; l != "batch=32" {
		t.Errorf("bs8 vs bs32: %q, want batch=32 (study is the same)", l)
	}
	if l := runs(t, bs8)[0].Label; l != "batch=8 study=cycles" {
		t.Errorf("one run: %q, want all its labels", l)
	}
	if l := runs(t, matmul, bs8)[0].Label; l != "h100-matmul-cycles" {
		t.Errorf("unlabelled run: %q, want its directory's name", l)
	}
	if ls := runs(t, bs8, bs8); ls[0].Label != "h100-bs8-cycles (1)" || ls[1].Label != "h100-bs8-cycles (2)" {
		t.Errorf("the same run twice: %q, %q, want the directory's name, numbered", ls[0].Label, ls[1].Label)
	}
}

// TestAgreesWithAnalyze: what the figures draw is what llem analyze
// reports.
func TestAgreesWithAnalyze(t *testing.T) {
	for _, r := range runs(t, bs8, bs32, long) {
		rr := r.Result
		// Latency: the same requests, the same median.
		l := r.Latency
		if len(l.TTFT) != rr.Latency.Requests {
			t.Errorf("%s: %d TTFTs, analyze counts %d requests", r.Dir, len(l.TTFT), rr.Latency.Requests)
		}
		s := slices.Clone(l.TTFT)
		slices.Sort(s)
		if med := median(s); math.Abs(med-float64(rr.Latency.TTFT.Median)) > 1e-12 {
			t.Errorf("%s: median TTFT %g, analyze %g", r.Dir, med, float64(rr.Latency.TTFT.Median))
		}
		// Efficiency: the cycles' BCa interval where there is one.
		e, ok := efficiencyOf(r)
		if !ok {
			t.Fatalf("%s: no efficiency", r.Dir)
		}
		if iv := rr.Cycles.EnergyPerOutputTokenJ; iv != nil {
			if e.ept != (interval{iv.Estimate, iv.Low, iv.High}) || e.cycles != 5 || !e.tps.hasBar() {
				t.Errorf("%s: %+v, analyze %+v", r.Dir, e, iv)
			}
			if !(e.tps.lo < e.tps.est && e.tps.est < e.tps.hi) {
				t.Errorf("%s: tokens/s %+v: estimate outside its interval", r.Dir, e.tps)
			}
		} else {
			var m analyze.WindowResult
			for _, w := range rr.Windows {
				if w.Measured {
					m = w
				}
			}
			if math.Abs(e.ept.est-float64(m.EnergyPerOutputTokenJ)) > 1e-9 || math.Abs(e.tps.est-float64(m.OutputTokensPerS)) > 1e-9 || e.ept.hasBar() {
				t.Errorf("%s: %+v, measured window %v J/token %v tokens/s", r.Dir, e, m.EnergyPerOutputTokenJ, m.OutputTokensPerS)
			}
		}
		// The counter's steps integrate to the counter's energy.
		ps := powerSeries(r)
		var energy float64
		for _, seg := range ps.counter {
			for i := 1; i < len(seg.x); i++ {
				energy += seg.y[i-1] * (seg.x[i] - seg.x[i-1])
			}
		}
		g := r.Data.GPUs[0]
		reads := g.Energy
		want := float64(reads[len(reads)-1].EnergyMj-reads[0].EnergyMj) / 1000
		if math.Abs(energy-want) > 1e-6*want {
			t.Errorf("%s: counter steps integrate to %.3f J, the counter reads %.3f J", r.Dir, energy, want)
		}
	}
}

func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func TestParetoFront(t *testing.T) {
	mk := func(tps, ept float64) effRun {
		return effRun{e: efficiency{tps: interval{est: tps}, ept: interval{est: ept}}}
	}
	rs := []effRun{mk(100, 1), mk(500, 0.5), mk(400, 0.6), mk(1000, 0.5), mk(50, 0.3), mk(700, 0.4)}
	if got := paretoFront(rs); !slices.Equal(got, []int{4, 5, 3}) {
		t.Errorf("front %v, want [4 5 3] (50 tok/s at 0.3 J, 700 at 0.4 J, 1000 at 0.5 J)", got)
	}
	if got := paretoFront(runsEff(t)); !slices.Equal(got, []int{2}) {
		t.Errorf("shipped runs: front %v, want the long batch-32 run alone", got)
	}
}

func runsEff(t *testing.T) []effRun {
	var out []effRun
	for _, r := range runs(t, bs8, bs32, long) {
		e, _ := efficiencyOf(r)
		out = append(out, effRun{r, e})
	}
	return out
}

func TestTicks(t *testing.T) {
	labels := func(ts []plotTick) string {
		var s []string
		for _, t := range ts {
			if t.Label != "" {
				s = append(s, t.Label)
			}
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   string
	}{
		{0, 153.5, 6, "0 50 100 150"},
		{0, 153.5, 10, "0 20 40 60 80 100 120 140"},
		{33.8, 39.2, 3, "34 36 38"},
		{0, 0.27, 4, "0.0 0.1 0.2"},
		{-1, 1, 4, "-1.0 -0.5 0.0 0.5 1.0"},
	} {
		if got := labels(niceTicks{tc.n}.Ticks(tc.lo, tc.hi)); got != tc.want {
			t.Errorf("niceTicks{%d}(%g, %g) = %q, want %q", tc.n, tc.lo, tc.hi, got, tc.want)
		}
	}
	if got := labels(logTicks{}.Ticks(math.Log10(0.08), math.Log10(1.5))); got != "0.1 0.2 0.5 1" {
		t.Errorf("log ticks %q", got)
	}
	if got := labels(logTicks{}.Ticks(0, 5)); got != "1 10 100 1000 10000 100000" {
		t.Errorf("wide log ticks %q", got)
	}
}

func TestOrdinal(t *testing.T) {
	for k, want := range map[int]string{2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 21: "21st", 19: "19th"} {
		if got := ordinal(k); got != want {
			t.Errorf("ordinal(%d) = %s", k, got)
		}
	}
}

func TestDecimate(t *testing.T) {
	var p xy
	for i := range 100000 {
		p.add(float64(i), math.Sin(float64(i)/50))
	}
	p.y[54321] = 9 // a spike must survive
	l := line(p, draw.LineStyle{}, 0)
	if len(l.XYs) > 2*maxPoints+2 || len(l.XYs) < maxPoints {
		t.Errorf("%d points after decimation", len(l.XYs))
	}
	peak := 0.0
	for _, q := range l.XYs {
		peak = max(peak, q.Y)
	}
	if peak != 9 {
		t.Errorf("the spike was lost: max %g", peak)
	}
	for i := 1; i < len(l.XYs); i++ {
		if l.XYs[i].X <= l.XYs[i-1].X {
			t.Fatalf("not in time order at %d", i)
		}
	}
}

func ExampleDraw() {
	rs, err := analyze.Open([]string{"../testdata/runs/h100-bs8-cycles", "../testdata/runs/h100-bs32-cycles"}, analyze.DefaultSettings(), nil)
	if err != nil {
		panic(err)
	}
	f, err := Draw(Pareto, rs, Single)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s, %.1f x %.1f in: %s, %s\n", f.Kind, f.W.Points()/72, f.H.Points()/72, rs[0].Label, rs[1].Label)
	// To write it: f.WriteFile("pareto.pdf", 0)
	// Output: pareto, 3.5 x 3.2 in: batch=8, batch=32
}

func TestPDFText(t *testing.T) {
	for in, want := range map[string]string{"Temp. (°C)": "Temp. (\xb0C)", "batch=8": "batch=8", "GPU 日本": "GPU ??", "€5 – x": "\x805 \x96 x"} {
		if got := pdfText(in); got != want {
			t.Errorf("pdfText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSVGText: text is drawn as outlines (no font needed to view the
// file), laid out as the layout measured it.
func TestSVGText(t *testing.T) {
	f, err := Draw(Timeline, runs(t, bs8), Single)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Render(&buf, SVG, 0); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<text", "@font-face"} {
		if bytes.Contains(buf.Bytes(), []byte(bad)) {
			t.Errorf("the SVG holds %s", bad)
		}
	}
	st := newStyle(Single)
	for _, s := range []string{"Power (W)", "Temp. (°C)", "AVAWToy"} {
		var p vg.Path
		face := font.DefaultCache.Lookup(st.label.Font, st.label.Font.Size)
		if err := glyphPath(&p, face, vg.Point{}, s); err != nil {
			t.Fatal(err)
		}
		lo, hi := vg.Length(math.Inf(1)), vg.Length(math.Inf(-1))
		for _, c := range p {
			for _, q := range append([]vg.Point{c.Pos}, c.Control...) {
				lo, hi = min(lo, q.X), max(hi, q.X)
			}
		}
		if w := st.label.Width(s); math.Abs(float64(hi-w)) > 1 || lo < -0.5 || lo > 1 {
			t.Errorf("%q: outlines span %.2f..%.2f pt, the layout's width is %.2f pt", s, lo.Points(), hi.Points(), w.Points())
		}
	}
}
