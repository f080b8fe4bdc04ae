package trace

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// flipRun is a run of one segment of one table, rewritten for each flip.
type flipRun struct {
	dir, path string
}

func newFlipRun(t *testing.T, table string, meta *Meta) flipRun {
	t.Helper()
	dir := t.TempDir()
	if err := WriteMeta(dir, meta); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, table), 0o755); err != nil {
		t.Fatal(err)
	}
	return flipRun{dir, filepath.Join(dir, table, SegmentName(0))}
}

// readBack reads the table back: its rows, and whether damage was
// reported. Damage must never make Open or the read fail.
func readBack[T any](t *testing.T, dir, table string) ([]T, bool) {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	rows, err := ReadTable[T](r, table)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	return rows, len(r.Damage()) > 0
}

// flipSweep flips each byte of seg in turn (every stride-th under the race
// detector) and checks that every flip is either reported as damage or
// leaves every value as it was: never a changed value without a word,
// never a panic. It returns the number of flips, and of those detected.
func flipSweep[T any](t *testing.T, fr flipRun, table string, seg []byte, mask byte) (flips, detected int) {
	t.Helper()
	if err := os.WriteFile(fr.path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	want, damaged := readBack[T](t, fr.dir, table)
	if damaged || len(want) == 0 {
		t.Fatalf("%s: the intact segment reads as damaged, or holds no rows", table)
	}
	stride := 1
	if raceDetector {
		stride = 7
	}
	b := make([]byte, len(seg))
	for i := 0; i < len(seg); i += stride {
		copy(b, seg)
		b[i] ^= mask
		if err := os.WriteFile(fr.path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, damaged := readBack[T](t, fr.dir, table)
		flips++
		switch {
		case damaged:
			detected++
			if len(got) != 0 {
				t.Errorf("%s: flip of byte %d: damage reported, yet %d rows read from the segment", table, i, len(got))
			}
		case !reflect.DeepEqual(got, want):
			t.Errorf("%s: flip of byte %d (^%#02x) changed values with no damage reported", table, i, mask)
		}
	}
	return flips, detected
}

const flipRunID = "8e43702356a8904b" // h100-bs8-cycles

func shippedSegment(t *testing.T, table string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "runs", "h100-bs8-cycles", table, SegmentName(5)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFlipsInAShippedSegment: a real segment of format 1.0 (no manifest),
// one per table. With no checksum over its footer, page headers and
// dictionaries, what catches a flip there is checkFooter, checkPages and
// validateSegment. Issue 17 counted 264 changed values without an error
// and 34 panics in such a sweep.
func TestFlipsInAShippedSegment(t *testing.T) {
	meta := &Meta{SchemaVersion: "1.0", RunID: flipRunID}
	sweep := func(table string, run func(flipRun, []byte) (int, int)) {
		flips, detected := run(newFlipRun(t, table, meta), shippedSegment(t, table))
		t.Logf("%s: %d flips, %d detected, %d identical", table, flips, detected, flips-detected)
	}
	sweep(TableDriverPower, func(fr flipRun, b []byte) (int, int) {
		return flipSweep[DriverPowerSample](t, fr, TableDriverPower, b, 0x01)
	})
	sweep(TableEnergy, func(fr flipRun, b []byte) (int, int) { return flipSweep[EnergyRead](t, fr, TableEnergy, b, 0x01) })
	sweep(TableState, func(fr flipRun, b []byte) (int, int) { return flipSweep[DeviceState](t, fr, TableState, b, 0x01) })
	sweep(TableEvents, func(fr flipRun, b []byte) (int, int) { return flipSweep[Event](t, fr, TableEvents, b, 0x01) })
}

// TestFlipsInASealedSegment: the same real rows written as format 1.1
// does, with a manifest: every flip of the segment must be detected, and a
// flip of its manifest line must either be detected or change nothing.
func TestFlipsInASealedSegment(t *testing.T) {
	src := newFlipRun(t, TableState, &Meta{SchemaVersion: "1.0", RunID: flipRunID})
	if err := os.WriteFile(src.path, shippedSegment(t, TableState), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, _ := readBack[DeviceState](t, src.dir, TableState)
	fr := newFlipRun(t, TableState, &Meta{SchemaVersion: SchemaVersion, RunID: flipRunID})
	w, err := NewTableWriter(fr.dir, TableState, flipRunID, CompareState)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(rows...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	seg, _ := os.ReadFile(fr.path)
	flips, detected := flipSweep[DeviceState](t, fr, TableState, seg, 0x01)
	if detected != flips {
		t.Errorf("%d of %d flips of a segment with a manifest went undetected", flips-detected, flips)
	}
	if err := os.WriteFile(fr.path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(fr.dir, TableState, ManifestFile)
	line, _ := os.ReadFile(manifest)
	for i := range line {
		b := append([]byte(nil), line...)
		b[i] ^= 0x01
		if err := os.WriteFile(manifest, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, damaged := readBack[DeviceState](t, fr.dir, TableState)
		if !damaged || !reflect.DeepEqual(got, rows) {
			t.Errorf("manifest flip of byte %d: damage reported %v, %d rows of %d (want the damage reported and the segment read)", i, damaged, len(got), len(rows))
		}
	}
	t.Logf("%d flips of the segment, all detected; %d flips of its manifest line, all detected, the segment read", flips, len(line))
}
