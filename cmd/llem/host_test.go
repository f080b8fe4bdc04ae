package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/llem/llem/trace"
)

// raplSysfs writes a sysfs fixture with package-0 and its dram subzone.
func raplSysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, z := range []struct{ dir, name, energy string }{
		{"intel-rapl:0", "package-0", "1000000"}, {"intel-rapl:0:0", "dram", "2000"},
	} {
		dir := filepath.Join(root, "class", "powercap", z.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range map[string]string{"name": z.name, "energy_uj": z.energy, "max_energy_range_uj": "262143328850"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// --path.sysfs reaches the recorder; a kill -9 keeps the host_energy
// segments already rotated, and info and analyze read them.
func TestHostEnergyFromAFixtureSysfsSurvivesKill9(t *testing.T) {
	root := raplSysfs(t)
	dir := filepath.Join(t.TempDir(), "run")
	cmd, _ := startRecord(t, "record", "--device", "sim", "--quiet", "--out", dir, "--path.sysfs", root,
		"--rotate-interval", "300ms", "--", "sleep", "3")
	waitFor(t, "two host_energy segments", func() bool { return len(segments(dir, trace.TableHostEnergy)) >= 2 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h := run.Meta.HostEnergy; h == nil || len(h.Domains) != 2 || h.Path != filepath.Join(root, "class", "powercap") {
		t.Fatalf("meta.json host_energy of the killed run: %+v", h)
	}
	rows, err := trace.ReadTable[trace.HostEnergyRead](run, trace.TableHostEnergy)
	if err != nil || len(rows) < 4 {
		t.Fatalf("%d host_energy rows after kill -9: %v", len(rows), err)
	}
	s := info(t, dir)
	if s.Host == nil || len(s.Host.Domains) != 2 || s.Host.Domains[1].Name != "package-0/dram" {
		t.Errorf("llem info host: %+v", s.Host)
	}
	r := llem(t, nil, "analyze", "--json", dir)
	if r.code != 0 {
		t.Fatalf("analyze: exit %d: %s", r.code, r.stderr)
	}
	var res struct {
		Runs []struct {
			Windows []struct {
				Name        string              `json:"name"`
				HostEnergyJ map[string]*float64 `json:"host_energy_j"`
			} `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Runs) != 1 || len(res.Runs[0].Windows) == 0 {
		t.Fatalf("analyze --json: %v\n%s", err, r.stdout)
	}
	for _, w := range res.Runs[0].Windows {
		// The counters stood still: zero joules, measured, not null.
		if e := w.HostEnergyJ["package-0"]; e == nil || *e != 0 {
			t.Errorf("%s: host_energy_j %v", w.Name, w.HostEnergyJ)
		}
	}
}

// Without powercap (a root given by LLEM_PATH_SYSFS, the flag's variable)
// the recorder says so on stderr and llem info shows why.
func TestHostEnergyUnavailableIsSaid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := llem(t, []string{"LLEM_PATH_SYSFS=" + t.TempDir()}, "record", "--device", "sim", "--out", dir, "--", "true")
	if r.code != 0 || !strings.Contains(r.stderr, "llem: host energy (RAPL) not recorded:") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if s := info(t, dir); s.Host == nil || s.Host.Unavailable != "no_powercap" {
		t.Errorf("llem info host: %+v", s.Host)
	}
}
