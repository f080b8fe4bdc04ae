package trace

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// growingRun writes driver power of two GPUs at 50 Hz for seconds s,
// flushing every 5 s of samples as the recorder rotates, into a table
// whose segments grow to 60 s. It returns the run, the writer (not
// closed) and the rows written.
func growingRun(t *testing.T, seconds int) (string, *TableWriter[DriverPowerSample], []DriverPowerSample) {
	t.Helper()
	dir := newTestRun(t)
	w, err := NewTableWriter(dir, TableDriverPower, "test", CompareDriverPower)
	if err != nil {
		t.Fatal(err)
	}
	w.SetGrow(DriverPowerSegmentSpan)
	var all []DriverPowerSample
	const t0 = 1_700_000_000_000_000_000
	for k := range seconds * 50 {
		for g := range int32(2) {
			// the driver's stamps: whole microseconds, jittered off the grid
			ts := t0 + int64(k)*20_000_000 + int64((k*7919+int(g)*31)%997)*1000
			r := DriverPowerSample{GPU: g, TimestampNs: ts, DriverPowerMw: 70_000 + int64((k*104729)%400_000)}
			all = append(all, r)
			if err := w.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		if (k+1)%250 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.SortStableFunc(all, CompareDriverPower)
	return dir, w, all
}

func sortedPower(rows []DriverPowerSample) []DriverPowerSample {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, CompareDriverPower)
	return rows
}

// A growing table holds one segment a minute, every flushed row is on
// disk at once, and the rows read back are exactly those written: format
// 2 stores the stamps in us and power as uint32, losslessly.
func TestGrowingSegmentsKeepEveryRow(t *testing.T) {
	dir, w, all := growingRun(t, 150)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, TableDriverPower, "part-*.parquet"))
	if len(segs) != 3 || w.Segments() != 3 {
		t.Errorf("%d segment files, writer says %d, want 3 (two full minutes and the rest)", len(segs), w.Segments())
	}
	m, err := readManifest(filepath.Join(dir, TableDriverPower))
	if err != nil || m == nil || len(m.Entries) != 3 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	var listed int64
	for _, e := range m.Entries {
		listed += e.Rows
		if e.Rows != 0 && e.Segment != SegmentName(2) && e.LastNs-e.FirstNs < DriverPowerSegmentSpan {
			t.Errorf("%s spans %d ns, under the 60 s it should grow to", e.Segment, e.LastNs-e.FirstNs)
		}
	}
	if listed != int64(len(all)) || w.Rows() != int64(len(all)) {
		t.Errorf("manifest lists %d rows, writer %d, %d written", listed, w.Rows(), len(all))
	}
	rows, r := readPower(t, dir)
	if len(r.Damage()) != 0 {
		t.Errorf("damage %v", r.Damage())
	}
	if !slices.Equal(sortedPower(rows), all) {
		t.Errorf("rows read differ from the rows written")
	}
	// The column scan gives the same stamps in ns.
	var stamps []int64
	err = ScanColumns(r, TableDriverPower, []string{ColTimestampNs, ColDriverPowerMw}, 1000, func(c *Columns) error {
		for i := range c.Len() {
			v, _ := c.Int(0, i)
			stamps = append(stamps, v)
		}
		return nil
	})
	if err != nil || len(stamps) != len(all) || stamps[0] != rows[0].TimestampNs {
		t.Errorf("ScanColumns: %d stamps (first %v), err %v", len(stamps), stamps[:1], err)
	}
}

// A recorder killed while a segment is open leaves it without a manifest
// line: it is read (checked by its structure) and said to be unverified,
// and nothing flushed is lost. A kill during a rewrite leaves the previous
// version and a .tmp: the rows of the last flush are what a kill costs.
func TestKilledWhileSegmentOpen(t *testing.T) {
	dir, _, all := growingRun(t, 75) // a closed minute and 15 s open
	rows, r := readPower(t, dir)
	if !slices.Equal(sortedPower(rows), all) {
		t.Errorf("%d rows read, %d flushed", len(rows), len(all))
	}
	d := onlyDamage(t, r, DamageUnverified, filepath.Join(TableDriverPower, SegmentName(1)))
	if d.Lost {
		t.Errorf("the open segment is not lost: %+v", d)
	}

	// The same open segment, but killed between a rewrite's .tmp and its
	// rename: the name holds the previous version.
	dir2, w2, _ := growingRun(t, 70)
	prev, err := os.ReadFile(segPath(dir2, TableDriverPower, 1))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := readPower(t, dir2)
	for k := range 250 {
		w2.Add(DriverPowerSample{GPU: 0, TimestampNs: 1_700_000_070_000_000_000 + int64(k)*20_000_000, DriverPowerMw: 1})
	}
	if err := w2.Flush(); err != nil {
		t.Fatal(err)
	}
	p := segPath(dir2, TableDriverPower, 1)
	if err := os.Rename(p, p+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, prev, 0o644); err != nil {
		t.Fatal(err)
	}
	after, r2 := readPower(t, dir2)
	if len(after) != len(before) || len(r2.Partial) != 1 {
		t.Errorf("%d rows after, %d before the unfinished rewrite; partial %v; damage %v", len(after), len(before), r2.Partial, r2.Damage())
	}
}

// Only the last segment, and only one that begins after every listed
// segment, is taken for the open one: a copy of a listed segment under
// the next name is a stray, not rows read twice.
func TestCopiedSegmentIsNotTheOpenOne(t *testing.T) {
	dir, w, all := growingRun(t, 130)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, segPath(dir, TableDriverPower, 0), segPath(dir, TableDriverPower, 3))
	rows, r := readPower(t, dir)
	if len(rows) != len(all) {
		t.Errorf("%d rows, want %d", len(rows), len(all))
	}
	onlyDamage(t, r, DamageStray, filepath.Join(TableDriverPower, SegmentName(3)))
}

// Stamps the format cannot hold exactly are an error naming the table,
// never rounded.
func TestDriverPowerOutsideTheFormatIsAnError(t *testing.T) {
	for _, r := range []DriverPowerSample{
		{GPU: 0, TimestampNs: 1_700_000_000_000_000_001, DriverPowerMw: 1},
		{GPU: 0, TimestampNs: 1_700_000_000_000_000_000, DriverPowerMw: -1},
		{GPU: 0, TimestampNs: 1_700_000_000_000_000_000, DriverPowerMw: math.MaxUint32 + 1},
	} {
		w, err := NewTableWriter(newTestRun(t), TableDriverPower, "test", CompareDriverPower)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(r)
		if err := w.Flush(); err == nil {
			t.Errorf("%+v written", r)
		}
	}
	// The largest power NVML can report reads back as written.
	dir := newTestRun(t)
	w, _ := NewTableWriter(dir, TableDriverPower, "test", CompareDriverPower)
	big := DriverPowerSample{GPU: 3, TimestampNs: 1_700_000_000_000_001_000, DriverPowerMw: math.MaxUint32}
	w.Add(big)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows, r := readPower(t, dir)
	if len(rows) != 1 || rows[0] != big {
		t.Errorf("read %+v, wrote %+v", rows, big)
	}
	ScanColumns(r, TableDriverPower, []string{ColDriverPowerMw}, 8, func(c *Columns) error {
		if v, _ := c.Int(0, 0); v != big.DriverPowerMw {
			t.Errorf("column scan: %d mW, wrote %d", v, big.DriverPowerMw)
		}
		return nil
	})
}
