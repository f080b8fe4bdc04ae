package record_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// raplTree writes a sysfs fixture with package-0 and its dram subzone and
// returns the root and the package's energy_uj path.
func raplTree(t *testing.T) (root, pkg string) {
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
	return root, filepath.Join(pc, "intel-rapl:0", "energy_uj")
}

// The host's RAPL counters are recorded beside the simulated GPU into the
// host_energy table, raw (a wrap stays a wrap), and meta.json names the
// domains; llem check accepts the table.
func TestRecordHostEnergy(t *testing.T) {
	root, pkg := raplTree(t)
	dir := filepath.Join(t.TempDir(), "run")
	// The command moves the package counter on, then past its wrap.
	script := fmt.Sprintf("echo 262143300000 > %s; sleep 0.4; echo 5000000 > %s; sleep 0.4", pkg, pkg)
	var log bytes.Buffer
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sh", "-c", script}, Backend: sim.New(sim.Options{GPUs: 1, Seed: 1}),
		IdleBefore: 200 * time.Millisecond, IdleAfter: 200 * time.Millisecond,
		HostEnergyInterval: 50 * time.Millisecond, RotateInterval: 200 * time.Millisecond, SysfsRoot: root,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := res.Meta.HostEnergy
	if h == nil || len(h.Domains) != 2 || h.Domains[0].Name != "package-0" || h.Domains[1].Name != "package-0/dram" ||
		h.Domains[0].MaxEnergyRangeUj != 262143328850 || h.Unavailable != "" || h.IntervalMs != 50 {
		t.Fatalf("meta.json host_energy: %+v", h)
	}
	if !strings.Contains(log.String(), "recording host energy (RAPL): package-0, package-0/dram") {
		t.Errorf("log: %s", log.String())
	}
	m, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.HostEnergy == nil || len(m.HostEnergy.Domains) != 2 {
		t.Fatalf("meta.json on disk: host_energy %+v", m.HostEnergy)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := trace.ReadTable[trace.HostEnergyRead](run, trace.TableHostEnergy)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var pkgRows, dramRows int
	var last int64
	for _, r := range rows {
		switch r.Name {
		case "package-0":
			pkgRows++
			seen[r.EnergyUj] = true
			if r.Zone != "intel-rapl:0" {
				t.Errorf("zone %s", r.Zone)
			}
		case "package-0/dram":
			dramRows++
			if r.EnergyUj != 1000 {
				t.Errorf("dram read %d", r.EnergyUj)
			}
		default:
			t.Errorf("row of %q", r.Name)
		}
		if r.TimestampNs < last {
			t.Errorf("rows out of time order")
		}
		last = r.TimestampNs
	}
	// Before, during and after the wrap, every value as read.
	for _, v := range []int64{262143000000, 262143300000, 5000000} {
		if !seen[v] {
			t.Errorf("no package-0 row read %d (rows %d)", v, pkgRows)
		}
	}
	if pkgRows != dramRows || pkgRows < 10 {
		t.Errorf("%d package rows, %d dram rows", pkgRows, dramRows)
	}
	if n := m.Recorder.Rows[trace.TableHostEnergy]; n != int64(len(rows)) {
		t.Errorf("meta.json counts %d host_energy rows, the table has %d", n, len(rows))
	}
	if st := m.Recorder.Loops["host_energy"]; st.Iterations < 5 {
		t.Errorf("host_energy loop: %+v", st)
	}
	rep, err := trace.Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("check: damage %v problems %v", rep.Damage, rep.Problems)
	}
	for _, tc := range rep.Tables {
		if tc.Table == trace.TableHostEnergy && (tc.Rows != int64(len(rows)) || tc.MetaRows == nil || tc.Segments < 2) {
			t.Errorf("check of host_energy: %+v", tc)
		}
	}
}

// Without powercap (a VM) the run records the GPUs as before, has no
// host_energy folder, and meta.json and the log say why.
func TestRecordWithoutPowercap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	var log bytes.Buffer
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"true"}, Backend: sim.New(sim.Options{GPUs: 1, Seed: 1}), SysfsRoot: t.TempDir(),
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := res.Meta.HostEnergy
	if h == nil || h.Unavailable != "no_powercap" || len(h.Domains) != 0 {
		t.Fatalf("host_energy %+v", h)
	}
	if !strings.Contains(log.String(), "host energy (RAPL) not recorded") || !strings.Contains(log.String(), "virtual machine") {
		t.Errorf("log: %s", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, trace.TableHostEnergy)); !os.IsNotExist(err) {
		t.Errorf("host_energy folder: %v", err)
	}
	if _, ok := res.Meta.Recorder.Rows[trace.TableHostEnergy]; ok {
		t.Error("meta.json counts host_energy rows")
	}
	if _, ok := res.Meta.Recorder.Loops["host_energy"]; ok {
		t.Error("meta.json has a host_energy loop")
	}
}
