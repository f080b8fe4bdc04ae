package analyze_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
)

// hostTree writes a sysfs fixture: package-0 near the end of its range
// and its dram subzone. It returns the root and the two energy_uj paths.
func hostTree(t *testing.T) (root, pkg, dram string) {
	t.Helper()
	root = t.TempDir()
	pc := filepath.Join(root, "class", "powercap")
	for _, z := range []struct{ dir, name, energy, max string }{
		{"intel-rapl:0", "package-0", "262143000000", "262143328850"},
		{"intel-rapl:0:0", "dram", "1000", "65712999613"},
	} {
		dir := filepath.Join(pc, z.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range map[string]string{"name": z.name, "energy_uj": z.energy, "max_energy_range_uj": z.max} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root, filepath.Join(pc, "intel-rapl:0", "energy_uj"), filepath.Join(pc, "intel-rapl:0:0", "energy_uj")
}

// The host's energy per window comes from its counter reads with the wrap
// unwrapped, per domain, and stays out of the GPUs' energy.
func TestHostEnergyPerWindowAcrossAWrap(t *testing.T) {
	root, pkg, dram := hostTree(t)
	dir := filepath.Join(t.TempDir(), "run")
	// Counters are still at the cycle's edges (0.3 s of reads on either
	// side), and move inside it: the package across its wrap.
	script := fmt.Sprintf("sleep 0.3; echo 262143300000 > %[1]s; echo 1501000 > %[2]s; sleep 0.3; "+
		"echo 5000000 > %[1]s; echo 3001000 > %[2]s; sleep 0.3", pkg, dram)
	_, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sh", "-c", script}, Backend: sim.New(sim.Options{GPUs: 1, Seed: 3}),
		IdleBefore: 300 * time.Millisecond, IdleAfter: 300 * time.Millisecond,
		HostEnergyInterval: 50 * time.Millisecond, SysfsRoot: root,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := analyze.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Host) != 2 || d.Host[0].Name != "package-0" || d.Host[0].Wraps != 1 || d.Host[1].Name != "package-0/dram" {
		t.Fatalf("host domains: %+v", d.Host)
	}
	rr := analyze.New(d, dir, analyze.DefaultSettings()).Result
	var cycle *analyze.WindowResult
	for i, w := range rr.Windows {
		t.Logf("%s %s: host %v, GPU %v J", w.Name, w.Kind, w.HostEnergyJ, w.EnergyJ)
		if w.Kind == analyze.KindCycle {
			cycle = &rr.Windows[i]
		}
		if w.HostEnergyJ == nil {
			t.Errorf("%s: no host_energy_j", w.Name)
		}
	}
	if cycle == nil {
		t.Fatal("no cycle window")
	}
	// package: (262143328850 - 262143000000) + 5000000 uJ across the wrap.
	if e := cycle.HostEnergyJ["package-0"]; !e.Valid() || math.Abs(float64(e)-5.32885) > 1e-6 {
		t.Errorf("package-0 over the cycle: %v J, want 5.32885", e)
	}
	if e := cycle.HostEnergyJ["package-0/dram"]; !e.Valid() || math.Abs(float64(e)-3.0) > 1e-6 {
		t.Errorf("dram over the cycle: %v J, want 3", e)
	}
	// The GPU's energy is the simulated GPU's alone.
	if !cycle.EnergyJ.Valid() || cycle.SimTruthEnergyJ == nil ||
		math.Abs(float64(cycle.EnergyJ)-float64(*cycle.SimTruthEnergyJ)) > 0.1*float64(*cycle.SimTruthEnergyJ) {
		t.Errorf("GPU energy %v J against the truth %v", cycle.EnergyJ, cycle.SimTruthEnergyJ)
	}
	b, err := json.Marshal(cycle)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"host_energy_j":{"package-0":5.32885`) {
		t.Errorf("JSON: %s", b)
	}
}

// A run recorded without host energy has no host_energy_j anywhere in its
// results: its JSON is what it was before the table existed.
func TestNoHostEnergyNoField(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	_, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "0.3"}, Backend: sim.New(sim.Options{GPUs: 1, Seed: 3}), SysfsRoot: t.TempDir(),
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{dir, filepath.Join("..", "testdata", "runs", "h100-bs8-cycles")} {
		d, err := analyze.Load(run)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(analyze.New(d, run, analyze.DefaultSettings()).Result)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "host_energy") {
			t.Errorf("%s: results mention host_energy", run)
		}
	}
}

// Edges: a window may reach one read interval past the reads (extrapolated
// at the nearest interval's power), no further.
func TestHostEnergyEdges(t *testing.T) {
	h := analyze.NewHostDomainForTest("package-0", []int64{10e9, 11e9, 12e9}, []float64{0, 50, 150}, 1e9)
	for _, c := range []struct {
		start, end int64
		want       float64
	}{
		{10e9, 12e9, 150},
		{10.5e9, 11.5e9, 75},
		{9.6e9, 12e9, 170},         // 0.4 s before the first read at 50 W
		{10e9, 12.2e9, 170},        // 0.2 s after the last at 100 W
		{8e9, 12e9, math.NaN()},    // 2 s before: not measured
		{10e9, 13.5e9, math.NaN()}, // 1.5 s after
	} {
		got := analyze.HostWindowForTest(h, c.start, c.end)
		if math.IsNaN(c.want) != !got.Valid() || (got.Valid() && math.Abs(float64(got)-c.want) > 1e-9) {
			t.Errorf("[%g, %g]: %v, want %v", float64(c.start)/1e9, float64(c.end)/1e9, got, c.want)
		}
	}
}

// A decrease no wrap explains makes the energy of windows across it
// unknown, and of the others as measured.
func TestHostEnergyUnexplainedDecrease(t *testing.T) {
	h := analyze.NewHostDomainForTest("package-0", []int64{10e9, 11e9, 12e9, 13e9}, []float64{0, 50, 50, 80}, 1e9)
	h.Unknown = [][2]int64{{11e9, 12e9}}
	if got := analyze.HostWindowForTest(h, 10e9, 13e9); got.Valid() {
		t.Errorf("across the decrease: %v, want null", got)
	}
	if got := analyze.HostWindowForTest(h, 12e9, 13e9); float64(got) != 30 {
		t.Errorf("after it: %v, want 30", got)
	}
}
