package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/methods"
)

// replayJSON runs `llem replay --json -q --as methods run` and decodes it.
func replayJSON(t *testing.T, specs, run string) methods.Doc {
	t.Helper()
	r := runLlem(t, "", "replay", "--json", "-q", "--as", specs, run)
	if r.code != 0 {
		t.Fatalf("replay --as %s: exit %d, stderr %q", specs, r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("replay -q: stderr %q, want nothing", r.stderr)
	}
	var doc methods.Doc
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
	}
	return doc
}

// TestReplayMatmul replays the H100 load-step run (73 -> ~700 W, three
// 10 s matmul cycles with 3 s idle phases between) as four methods.
func TestReplayMatmul(t *testing.T) {
	const as = "poll:1s:average,counter,mlperf,yang4"
	doc := replayJSON(t, as, matmulRun)
	if len(doc.Runs) != 1 || doc.Runs[0].Run != matmulRun {
		t.Fatalf("runs: %+v", doc.Runs)
	}
	ws := doc.Runs[0].Windows

	// The windows are llem analyze's, with its energy.
	_, res, _ := analyzeJSON(t, matmulRun)
	aw := res.Runs[0].Windows
	if len(ws) != len(aw) {
		t.Fatalf("%d windows, llem analyze has %d", len(ws), len(aw))
	}
	for i, w := range ws {
		if w.Name != aw[i].Name || w.Kind != aw[i].Kind || w.Cycle != aw[i].Cycle || w.StartS != aw[i].StartS ||
			w.EndS != aw[i].EndS || w.DurationS != aw[i].DurationS || w.LlemEnergyJ != aw[i].EnergyJ {
			t.Errorf("window %d: %+v, llem analyze: %s %s cycle %d %.3f..%.3f s %v J", i, w,
				aw[i].Name, aw[i].Kind, aw[i].Cycle, aw[i].StartS, aw[i].EndS, aw[i].EnergyJ)
		}
	}

	names := strings.Split(as, ",")
	var short int
	for _, w := range ws {
		if len(w.Methods) != len(names) {
			t.Fatalf("%s: %d methods, want %d", w.Name, len(w.Methods), len(names))
		}
		by := map[string]methods.Result{}
		for i, m := range w.Methods {
			if m.Method != names[i] {
				t.Errorf("%s: method %d is %q, want %q", w.Name, i, m.Method, names[i])
			}
			if !m.EnergyJ.Valid() || !m.ErrorPct.Valid() || !m.MeanPowerW.Valid() {
				t.Errorf("%s, %s: not measured: %+v", w.Name, m.Method, m)
				continue
			}
			if want := (m.EnergyJ - w.LlemEnergyJ) / w.LlemEnergyJ * 100; math.Abs(float64(m.ErrorPct-want)) > 1e-9 {
				t.Errorf("%s, %s: error %v%%, want %v%%", w.Name, m.Method, m.ErrorPct, want)
			}
			if want := m.EnergyJ / analyze.Num(w.DurationS); math.Abs(float64(m.MeanPowerW-want)) > 1e-6*float64(want) {
				t.Errorf("%s, %s: mean power %v W, want energy/duration %v W", w.Name, m.Method, m.MeanPowerW, want)
			}
			by[m.Method] = m
		}
		avg, ctr := by["poll:1s:average"], by["counter"]
		// Every run, cycle and phase edge has a counter read (the
		// recorder reads it at every boundary): there the Zeus-style
		// delta, which takes each read at face value, differs from llem's
		// energy only by the counter's ~60 ms lag that llem models: about
		// 1% of a 3 s window after a 700 W load, within llem's stated
		// uncertainty. A steady window starts between reads, where the
		// replayed tool's stale read costs up to about 2%.
		limit := float64(w.LlemUncertaintyPct)
		if w.Kind == analyze.KindSteady {
			limit = 2
		}
		if math.Abs(float64(ctr.ErrorPct)) > limit {
			t.Errorf("%s: counter off by %.2f%% (llem's uncertainty %.2f%%)", w.Name, float64(ctr.ErrorPct), limit)
		}
		// The short windows right after a cycle (3 s of cooldown or
		// idle_after, where power falls from ~700 W) are where the 1 s
		// average goes wrong: it still carries the load's last second.
		// Measured: +25%, +42%, +58%.
		if w.Kind == analyze.KindPhase && w.DurationS < 5 && w.StartS > 10 {
			short++
			t.Logf("%s at %.1f s (%.1f s): poll:1s:average %+.1f%%, counter %+.2f%%", w.Name, w.StartS, w.DurationS,
				float64(avg.ErrorPct), float64(ctr.ErrorPct))
			if !(avg.ErrorPct > 20) {
				t.Errorf("%s at %.1f s: poll:1s:average off by %+.1f%%, expected more than +20%%", w.Name, w.StartS, float64(avg.ErrorPct))
			}
		}
		// yang4 polls instant power: within llem's uncertainty everywhere.
		if y := by["yang4"]; math.Abs(float64(y.ErrorPct)) > float64(w.LlemUncertaintyPct) {
			t.Errorf("%s: yang4 off by %.2f%% (llem's uncertainty %.2f%%)", w.Name, float64(y.ErrorPct), float64(w.LlemUncertaintyPct))
		}
	}
	if short != 3 {
		t.Errorf("%d short windows after a cycle, want 3 (two cooldowns and idle_after)", short)
	}
}

// TestReplayTable checks the table for the documented methods and the
// flags-after-the-run form of the issue.
func TestReplayTable(t *testing.T) {
	r := runLlem(t, "", "replay", matmulRun, "--as", "nvidia-smi:1s,poll:100ms:instant,counter,codecarbon,mlperf,yang4")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "analysing "+matmulRun) || strings.Contains(r.stdout, "replaying") {
		t.Errorf("progress: stderr %q", r.stderr)
	}
	if strings.Contains(r.stdout, "NaN") {
		t.Errorf("table prints NaN:\n%s", r.stdout)
	}
	lines := strings.Split(r.stdout, "\n")
	if lines[0] != "run  "+matmulRun {
		t.Errorf("first line %q", lines[0])
	}
	for _, want := range []string{"window", "llem J", "method J", "error %", "mean W"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("header %q lacks %q", lines[2], want)
		}
	}
	// 10 windows x 6 methods, a header, the run line, a blank and a note.
	if n := len(lines); n != 10*6+5 {
		t.Errorf("%d lines, want %d:\n%s", n, 10*6+5, r.stdout)
	}
	for _, want := range []string{"cooldown", "idle_after", "cycle 3", "steady", "nvidia-smi:1s", "codecarbon", "yang4"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if !strings.Contains(lines[3], "run") || !strings.Contains(lines[3], "nvidia-smi:1s") || !strings.Contains(lines[4], "poll:100ms:instant") {
		t.Errorf("first window's lines:\n%s\n%s", lines[3], lines[4])
	}
}

func TestReplayJSONNull(t *testing.T) {
	// A method that cannot measure a window writes null, never NaN or 0.
	b, err := json.Marshal(methods.Result{Method: "mlperf", EnergyJ: analyze.NaN, MeanPowerW: analyze.NaN, ErrorPct: analyze.NaN})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"method":"mlperf","energy_j":null,"mean_power_w":null,"error_pct":null}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}

func TestReplayUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"replay", "--as", "poll:1s:watts", matmulRun}, []string{`method "poll:1s:watts"`, `unknown field "watts"`, "valid forms: poll:<interval>:instant|average|driver"}},
		{[]string{"replay", "--as", "zeus", matmulRun}, []string{`method "zeus"`, "unknown method", "valid forms"}},
		{[]string{"replay", "--as", "counter,", matmulRun}, []string{`method ""`, "valid forms"}},
		{[]string{"replay", matmulRun, "--as", "nvidia-smi:fast"}, []string{`interval "fast"`}},
		{[]string{"replay", matmulRun}, []string{"--as is required", "usage: llem replay"}},
		{[]string{"replay", "--as", "counter"}, []string{"no run given", "usage: llem replay"}},
		{[]string{"replay", matmulRun, "--as"}, []string{"replay: --as needs a value"}},
		{[]string{"replay", "--as", "counter", matmulRun, "--csv"}, []string{"replay: unknown flag --csv"}},
		{[]string{"replay", "--bogus", matmulRun}, []string{"replay:", "bogus"}},
		{[]string{"replay", "--as", "counter", "../../testdata/no-such-run"}, []string{"no-such-run"}},
	}
	for _, c := range cases {
		r := runLlem(t, "", c.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, r.code, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%v: stdout %q, want nothing", c.args, r.stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, r.stderr, w)
			}
		}
	}
}

func TestReplayHelp(t *testing.T) {
	r := runLlem(t, "", "replay", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"nvidia-smi", "Zeus", "CodeCarbon", "MLPerf", "perun", "Yang", "measure_power_secs",
		"strictly between", "docs/replay.md"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("replay --help lacks %q", want)
		}
	}
}

// --plot draws the error of each method against the window length; the
// same inputs give the same bytes, and a bad extension is a usage error.
func TestReplayPlot(t *testing.T) {
	dir := t.TempDir()
	draw := func(name string) []byte {
		p := filepath.Join(dir, name)
		r := runLlem(t, "", "replay", "-q", "--as", "nvidia-smi:1s,counter", "--plot", p, matmulRun)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := draw("a.svg"), draw("b.svg")
	if !bytes.Contains(a, []byte("<svg")) || !bytes.Equal(a, b) {
		t.Errorf("svg: %d bytes, equal to a second drawing: %v", len(a), bytes.Equal(a, b))
	}
	if png := draw("c.png"); !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Error("not a PNG")
	}
	r := runLlem(t, "", "replay", "--as", "counter", "--plot", filepath.Join(dir, "x.gif"), matmulRun)
	if r.code != 2 || !strings.Contains(r.stderr, "--plot") {
		t.Errorf("a .gif plot: exit %d, stderr %q", r.code, r.stderr)
	}
}
