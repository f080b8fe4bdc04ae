package trace

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestHostEnergyDelta(t *testing.T) {
	const max = 262143328850
	for _, c := range []struct {
		prev, cur, max, want int64
		wrapped, ok          bool
	}{
		{100, 350, max, 250, false, true},
		{max - 1000, 500, max, 1500, true, true},
		{5, 5, max, 0, false, true},
		{500, 100, 0, 0, false, false},        // range unknown
		{max + 10, 100, max, 0, false, false}, // above the range: no wrap explains it
	} {
		d, w, ok := HostEnergyDeltaUj(c.prev, c.cur, c.max)
		if d != c.want || w != c.wrapped || ok != c.ok {
			t.Errorf("delta(%d, %d, %d) = %d %v %v, want %d %v %v", c.prev, c.cur, c.max, d, w, ok, c.want, c.wrapped, c.ok)
		}
	}
}

// A run with a host_energy table: Check accepts it, Summarize unwraps the
// counters; a run without one summarises with no host account.
func TestHostEnergyTableSummaryAndCheck(t *testing.T) {
	dir := t.TempDir()
	m := &Meta{SchemaVersion: SchemaVersion, RunID: "test", Status: StatusComplete, Complete: true,
		HostEnergy: &HostEnergyInfo{Path: "/sys/class/powercap", Domains: []HostEnergyDomain{
			{Zone: "intel-rapl:0", Name: "package-0", MaxEnergyRangeUj: 1_000_000_000},
			{Zone: "intel-rapl:0:0", Name: "package-0/dram", MaxEnergyRangeUj: 2_000_000_000},
		}}}
	w, err := NewTableWriter[HostEnergyRead](dir, TableHostEnergy, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := []HostEnergyRead{
		{TimestampNs: 1e9, Zone: "intel-rapl:0", Name: "package-0", EnergyUj: 999_000_000},
		{TimestampNs: 1e9, Zone: "intel-rapl:0:0", Name: "package-0/dram", EnergyUj: 10},
		{TimestampNs: 2e9, Zone: "intel-rapl:0", Name: "package-0", EnergyUj: 4_000_000}, // wrapped: 1 J + 4 J
		{TimestampNs: 2e9, Zone: "intel-rapl:0:0", Name: "package-0/dram", EnergyUj: 2_000_010},
	}
	for _, r := range rows[:2] {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil { // two segments, as a recorder's rotation writes them
		t.Fatal(err)
	}
	if err := w.Add(rows[2:]...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	m.Recorder.Rows = map[string]int64{TableHostEnergy: 4}
	m.Recorder.Segments = map[string]int{TableHostEnergy: 2}
	if err := WriteMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("check: damage %v problems %v", rep.Damage, rep.Problems)
	}
	found := false
	for _, tc := range rep.Tables {
		if tc.Table == TableHostEnergy {
			found = true
			if tc.Rows != 4 || tc.Segments != 2 || tc.Verified != 2 {
				t.Errorf("host_energy check: %+v", tc)
			}
		}
	}
	if !found {
		t.Error("check does not list host_energy")
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Host == nil || len(s.Host.Domains) != 2 {
		t.Fatalf("host summary %+v", s.Host)
	}
	p, d := s.Host.Domains[0], s.Host.Domains[1]
	if p.Name != "package-0" || math.Abs(p.EnergyJ-5) > 1e-9 || p.Wraps != 1 || p.Reads != 2 {
		t.Errorf("package: %+v", p)
	}
	if d.Name != "package-0/dram" || math.Abs(d.EnergyJ-2) > 1e-9 || d.Wraps != 0 {
		t.Errorf("dram: %+v", d)
	}

	old := newTestRun(t)
	r, err = Open(old)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Summarize(r); err != nil || s.Host != nil {
		t.Errorf("a run without host energy: %+v, %v", s.Host, err)
	}
}

// A run that never had host energy is checked as before the table
// existed: no host_energy entry. One whose host_energy folder holds
// anything, a stray file included, has one.
func TestCheckLeavesOutAbsentHostEnergy(t *testing.T) {
	dir := newTestRun(t)
	rep, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rep.Tables {
		if tc.Table == TableHostEnergy {
			t.Errorf("a run without host energy has a host_energy entry: %+v", tc)
		}
	}
	if len(rep.Tables) != len(Tables)-1 {
		t.Errorf("%d tables checked, want %d", len(rep.Tables), len(Tables)-1)
	}
	if err := os.MkdirAll(filepath.Join(dir, TableHostEnergy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TableHostEnergy, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tc := range rep.Tables {
		found = found || tc.Table == TableHostEnergy
	}
	if !found || rep.OK() {
		t.Errorf("a stray file in host_energy: entry %v, OK %v, damage %v", found, rep.OK(), rep.Damage)
	}
}
