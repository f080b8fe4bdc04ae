package trace

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegment reads arbitrary bytes as a segment of a run without a
// manifest (format 1.0), the path where nothing but the segment's own
// structure stands between damaged bytes and the decoder: through
// ScanTable, ScanColumns and Check. Whatever the bytes, nothing panics or
// exhausts memory, the reader and Check agree on whether the segment is
// lost, and a lost segment hands over no rows. The seeds are a real
// segment of each table, whole and cut in half.
func FuzzSegment(f *testing.F) {
	tables := []string{TableDriverPower, TableEnergy, TableState, TableEvents}
	for i, table := range tables {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "runs", "h100-bs8-cycles", table, SegmentName(5)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
		f.Add(uint8(i), b[:len(b)/2])
	}
	// One run per table, made once per fuzzing process: each input only
	// replaces the segment.
	dirs := map[string]string{}
	for _, table := range tables {
		dir := f.TempDir()
		if err := WriteMeta(dir, &Meta{SchemaVersion: "1.0", RunID: flipRunID, Complete: true}); err != nil {
			f.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, table), 0o755); err != nil {
			f.Fatal(err)
		}
		dirs[table] = dir
	}
	f.Fuzz(func(t *testing.T, which uint8, seg []byte) {
		table := tables[int(which)%len(tables)]
		dir := dirs[table]
		if err := os.WriteFile(filepath.Join(dir, table, SegmentName(0)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		switch table {
		case TableDriverPower:
			n = fuzzRead[DriverPowerSample](t, r, table)
		case TableEnergy:
			n = fuzzRead[EnergyRead](t, r, table)
		case TableState:
			n = fuzzRead[DeviceState](t, r, table)
		case TableEvents:
			n = fuzzRead[Event](t, r, table)
		}
		lost := r.Lost()
		if lost && n != 0 {
			t.Errorf("the segment is lost (%v) yet %d rows were read from it", r.Damage(), n)
		}

		// Every column, by column, from a fresh open.
		r2, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		names := tableSchemas[table].Columns()
		cols := make([]string, len(names))
		for i, p := range names {
			cols[i] = p[0]
		}
		m := 0
		if err := ScanColumns(r2, table, cols, 100, func(c *Columns) error { m += c.Len(); return nil }); err != nil {
			t.Fatal(err)
		}
		if r2.Lost() != lost || m != n {
			t.Errorf("ScanTable: %d rows, lost %v; ScanColumns: %d rows, lost %v (%v)", n, lost, m, r2.Lost(), r2.Damage())
		}

		rep, err := Check(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkLost := false
		for _, d := range rep.Damage {
			checkLost = checkLost || d.Lost
		}
		if checkLost != lost {
			t.Errorf("the reader says lost %v (%v), llem check %v (%v)", lost, r.Damage(), checkLost, rep.Damage)
		}
	})
}

func fuzzRead[T any](t *testing.T, r *Run, table string) int {
	rows, err := ReadTable[T](r, table)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}
