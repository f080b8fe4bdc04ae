package rapl

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Zone is a fixture RAPL zone: its powercap directory name, name file,
// counter and range.
type Zone struct {
	Dir, Name        string
	EnergyUj, MaxUj  uint64
	NoEnergyFilePerm bool // energy_uj mode 000
}

// Fixture writes a sysfs tree holding class/powercap with the given zones
// (and the intel-rapl control type directory a real tree has) and returns
// its root.
func Fixture(t testing.TB, zones ...Zone) string {
	t.Helper()
	root := t.TempDir()
	pc := filepath.Join(root, "class", "powercap")
	if err := os.MkdirAll(filepath.Join(pc, "intel-rapl"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(pc, "intel-rapl", "enabled"), "1")
	for _, z := range zones {
		dir := filepath.Join(pc, z.Dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(dir, "name"), z.Name)
		write(filepath.Join(dir, "max_energy_range_uj"), strconv.FormatUint(z.MaxUj, 10))
		write(filepath.Join(dir, "energy_uj"), strconv.FormatUint(z.EnergyUj, 10))
		if z.NoEnergyFilePerm {
			if err := os.Chmod(filepath.Join(dir, "energy_uj"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// SetEnergy rewrites a fixture zone's counter.
func SetEnergy(t testing.TB, root, zone string, uj uint64) {
	t.Helper()
	p := filepath.Join(root, "class", "powercap", zone, "energy_uj")
	if err := os.WriteFile(p, []byte(strconv.FormatUint(uj, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

const maxUj = 262143328850

func twoSockets(t testing.TB) string {
	return Fixture(t,
		Zone{Dir: "intel-rapl:1", Name: "package-1", EnergyUj: 500, MaxUj: maxUj},
		Zone{Dir: "intel-rapl:0", Name: "package-0", EnergyUj: 1000, MaxUj: maxUj},
		Zone{Dir: "intel-rapl:0:0", Name: "dram", EnergyUj: 2000, MaxUj: 65712999613},
		Zone{Dir: "intel-rapl:1:0", Name: "dram", EnergyUj: 3000, MaxUj: 65712999613},
		Zone{Dir: "intel-rapl-mmio:0", Name: "package-0", EnergyUj: 7, MaxUj: maxUj},
	)
}

func TestOpenFindsDomains(t *testing.T) {
	root := twoSockets(t)
	r, info := Open(root)
	if r == nil {
		t.Fatalf("no reader: %+v", info)
	}
	var got []string
	for _, d := range info.Domains {
		got = append(got, d.Zone+"="+d.Name+"/"+strconv.FormatInt(d.MaxEnergyRangeUj, 10))
	}
	want := "intel-rapl:0=package-0/262143328850 intel-rapl:0:0=package-0/dram/65712999613 " +
		"intel-rapl:1=package-1/262143328850 intel-rapl:1:0=package-1/dram/65712999613"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("domains\n got %s\nwant %s", s, want)
	}
	if info.Unavailable != "" || len(info.Unreadable) != 0 {
		t.Errorf("unavailable %q, unreadable %v", info.Unavailable, info.Unreadable)
	}
	if info.Path != filepath.Join(root, "class", "powercap") {
		t.Errorf("path %s", info.Path)
	}
	vals, ok := r.Read(nil, nil)
	if len(vals) != 4 || vals[0] != 1000 || vals[1] != 2000 || vals[2] != 500 || vals[3] != 3000 || !ok[0] || !ok[3] {
		t.Errorf("read %v %v", vals, ok)
	}
	// The counters are read afresh each time, raw: a wrap is stored as read.
	SetEnergy(t, root, "intel-rapl:0", 12)
	vals, _ = r.Read(vals, ok)
	if vals[0] != 12 {
		t.Errorf("after the wrap read %d, want 12", vals[0])
	}
	// A zone that goes away mid-run reads as failed, the others go on.
	if err := os.Remove(filepath.Join(root, "class", "powercap", "intel-rapl:1", "energy_uj")); err != nil {
		t.Fatal(err)
	}
	vals, ok = r.Read(vals, ok)
	if ok[2] || !ok[0] || !ok[1] || !ok[3] || vals[3] != 3000 {
		t.Errorf("after removing intel-rapl:1: %v %v", vals, ok)
	}
}

func TestOpenNoPowercap(t *testing.T) {
	r, info := Open(t.TempDir())
	if r != nil || info.Unavailable != NoPowercap || !strings.Contains(info.Reason, "virtual machine") {
		t.Errorf("reader %v, info %+v", r, info)
	}
	if info.Domains == nil {
		t.Error("domains must be an empty list, not null")
	}
}

func TestOpenNoRAPLZones(t *testing.T) {
	r, info := Open(Fixture(t)) // the control type directory only
	if r != nil || info.Unavailable != NoRAPL || !strings.Contains(info.Reason, "modprobe intel_rapl_msr") {
		t.Errorf("reader %v, info %+v", r, info)
	}
}

// deny makes energy_uj files fail as a non-root user's read does.
func deny(t *testing.T, which func(path string) bool) {
	orig := readFile
	readFile = func(path string) ([]byte, error) {
		if filepath.Base(path) == "energy_uj" && which(path) {
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
		}
		return orig(path)
	}
	t.Cleanup(func() { readFile = orig })
}

func TestOpenPermissionDenied(t *testing.T) {
	root := twoSockets(t)
	deny(t, func(string) bool { return true })
	r, info := Open(root)
	if r != nil || info.Unavailable != PermissionDenied {
		t.Fatalf("reader %v, info %+v", r, info)
	}
	for _, s := range []string{"root", "5.10", "chmod a+r " + filepath.Join(root, "class", "powercap") + "/intel-rapl:*/energy_uj"} {
		if !strings.Contains(info.Reason, s) {
			t.Errorf("reason %q lacks %q", info.Reason, s)
		}
	}
	if len(info.Unreadable) != 4 || len(info.Domains) != 0 {
		t.Errorf("unreadable %v, domains %v", info.Unreadable, info.Domains)
	}
}

func TestOpenSomeZonesDenied(t *testing.T) {
	deny(t, func(p string) bool { return strings.Contains(p, "intel-rapl:1") })
	r, info := Open(twoSockets(t))
	if r == nil || len(r.Domains) != 2 || info.Unavailable != "" {
		t.Fatalf("reader %v, info %+v", r, info)
	}
	if len(info.Unreadable) != 2 || info.Unreadable[0].Zone != "intel-rapl:1" || !strings.Contains(info.Unreadable[0].Error, "permission denied") {
		t.Errorf("unreadable %+v", info.Unreadable)
	}
}

// A real unreadable file, for a user who is not root (root reads it).
func TestOpenChmod000(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a mode 000 file; TestOpenPermissionDenied covers the error")
	}
	r, info := Open(Fixture(t, Zone{Dir: "intel-rapl:0", Name: "package-0", EnergyUj: 1, MaxUj: maxUj, NoEnergyFilePerm: true}))
	if r != nil || info.Unavailable != PermissionDenied {
		t.Errorf("reader %v, info %+v", r, info)
	}
}

func TestOpenBadCounter(t *testing.T) {
	root := Fixture(t, Zone{Dir: "intel-rapl:0", Name: "package-0", EnergyUj: 1, MaxUj: maxUj})
	if err := os.WriteFile(filepath.Join(root, "class", "powercap", "intel-rapl:0", "energy_uj"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, info := Open(root)
	if r != nil || info.Unavailable != ReadFailed || len(info.Unreadable) != 1 {
		t.Errorf("reader %v, info %+v", r, info)
	}
}

func TestZoneOrder(t *testing.T) {
	if compareZones("intel-rapl:10", "intel-rapl:9") <= 0 || compareZones("intel-rapl:0:1", "intel-rapl:1") >= 0 ||
		compareZones("intel-rapl:0", "intel-rapl:0:0") >= 0 {
		t.Error("zones out of numeric order")
	}
}

// BenchmarkRead is the cost of one read of every domain (4 files here;
// on real sysfs the kernel also reads an MSR per file).
func BenchmarkRead(b *testing.B) {
	r, info := Open(twoSockets(b))
	if r == nil {
		b.Fatal(info.Reason)
	}
	var v []int64
	var ok []bool
	for b.Loop() {
		v, ok = r.Read(v, ok)
	}
}

// BenchmarkReadSysfs reads this host's own RAPL counters (skipped where
// none is readable): the cost with the kernel's MSR reads.
func BenchmarkReadSysfs(b *testing.B) {
	r, info := Open(DefaultSysfs)
	if r == nil {
		b.Skip(info.Reason)
	}
	var v []int64
	var ok []bool
	for b.Loop() {
		v, ok = r.Read(v, ok)
	}
	b.ReportMetric(float64(len(r.Domains)), "domains")
}
