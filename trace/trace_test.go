package trace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func newTestRun(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	m := &Meta{SchemaVersion: SchemaVersion, RunID: "test", Status: StatusComplete, Complete: true}
	if err := WriteMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRoundTripKeepsNullsAndOrder(t *testing.T) {
	dir := newTestRun(t)
	w, err := NewTableWriter(dir, TableState, "test", CompareState)
	if err != nil {
		t.Fatal(err)
	}
	in := []DeviceState{
		{GPU: 1, TimestampNs: 20, InstantPowerMw: ptr[int64](300_000)},
		{GPU: 0, TimestampNs: 10, TemperatureC: ptr[int32](41), ClockEventReasons: ptr[int64](1)},
		{GPU: 0, TimestampNs: 5, AveragePowerMw: ptr[int64](75_000)},
	}
	if err := w.Add(in...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadTable[DeviceState](r, TableState)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d rows, want 3", len(got))
	}
	// Sorted by GPU then time within the segment.
	if got[0].TimestampNs != 5 || got[1].TimestampNs != 10 || got[2].GPU != 1 {
		t.Fatalf("rows not ordered by (gpu, time): %+v", got)
	}
	if got[0].AveragePowerMw == nil || *got[0].AveragePowerMw != 75_000 || got[0].InstantPowerMw != nil {
		t.Errorf("row 0 nulls not kept: %+v", got[0])
	}
	if got[1].TemperatureC == nil || *got[1].TemperatureC != 41 || got[1].AveragePowerMw != nil {
		t.Errorf("row 1 nulls not kept: %+v", got[1])
	}
	if got[2].InstantPowerMw == nil || *got[2].InstantPowerMw != 300_000 {
		t.Errorf("row 2: %+v", got[2])
	}
}

func TestRowBoundForcesSegments(t *testing.T) {
	dir := newTestRun(t)
	w, err := NewTableWriter(dir, TableDriverPower, "test", CompareDriverPower)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxRows(100)
	var rows []DriverPowerSample
	for i := range 250 {
		rows = append(rows, DriverPowerSample{GPU: 0, TimestampNs: int64(i) * 20e6, DriverPowerMw: 70_000 + int64(i)})
	}
	if err := w.Add(rows...); err != nil {
		t.Fatal(err)
	}
	if w.Segments() != 2 || w.Buffered() != 50 {
		t.Fatalf("segments %d buffered %d, want 2 and 50", w.Segments(), w.Buffered())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var last int64 = -1
	err = ScanTable(r, TableDriverPower, 7, func(b []DriverPowerSample) error {
		if len(b) > 7 {
			t.Fatalf("batch of %d rows, want at most 7", len(b))
		}
		for _, x := range b {
			if x.TimestampNs <= last {
				t.Fatalf("out of order at %d", x.TimestampNs)
			}
			last = x.TimestampNs
			n++
		}
		return nil
	})
	if err != nil || n != 250 {
		t.Fatalf("scanned %d rows, err %v", n, err)
	}
}

func TestPartialSegmentIsIgnoredAndReported(t *testing.T) {
	dir := newTestRun(t)
	w, _ := NewTableWriter(dir, TableEnergy, "test", CompareEnergy)
	_ = w.Add(EnergyRead{GPU: 0, TimestampNs: 1, EnergyMj: 5})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// What a kill -9 during a write leaves behind.
	if err := os.WriteFile(filepath.Join(dir, TableEnergy, SegmentName(1)+".tmp"), []byte("PAR1 garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Partial) != 1 || len(r.Segments[TableEnergy]) != 1 {
		t.Fatalf("partial %v segments %v", r.Partial, r.Segments[TableEnergy])
	}
	rows, err := ReadTable[EnergyRead](r, TableEnergy)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v err %v", rows, err)
	}
}

func TestNewerMajorVersionIsRefused(t *testing.T) {
	for _, tc := range []struct {
		v, want string
	}{
		{"3.0", "newer than this llem reads"},
		{"", "no schema_version"},
		{"x.1", "not of the form"},
		{"0.9", "not a released"},
	} {
		err := CheckVersion(tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckVersion(%q) = %v, want error containing %q", tc.v, err, tc.want)
		}
	}
	for _, ok := range []string{"1.0", "1.7", "2.0", "2.9"} {
		if err := CheckVersion(ok); err != nil {
			t.Errorf("CheckVersion(%q) = %v", ok, err)
		}
	}
	dir := t.TempDir()
	if err := WriteMeta(dir, &Meta{SchemaVersion: "3.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "meta.json") || !strings.Contains(err.Error(), "3.1") {
		t.Fatalf("Open of a 3.1 run: %v", err)
	}
}

func TestNotARun(t *testing.T) {
	_, err := Open(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not an llem run") {
		t.Fatalf("got %v", err)
	}
}

func TestSummaryCountsCounterEnergyAcrossReset(t *testing.T) {
	dir := newTestRun(t)
	w, _ := NewTableWriter(dir, TableEnergy, "test", CompareEnergy)
	// 0 -> 1000 -> 3000 mJ, reset to 100, then 600: 3 J before, 0.5 J after.
	for i, mj := range []int64{0, 1000, 3000, 100, 600} {
		_ = w.Add(EnergyRead{GPU: 0, TimestampNs: int64(i) * 1e9, EnergyMj: mj})
	}
	_ = w.Flush()
	r, _ := Open(dir)
	s, err := Summarize(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.GPUs) != 1 || s.GPUs[0].CounterEnergyJ != 3.5 || s.GPUs[0].CounterResets != 1 {
		t.Fatalf("summary %+v", s.GPUs)
	}
}

func TestMetaErrorsGiveLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"missing comma", "{\n  \"schema_version\": \"1.1\"\n  \"run_id\": \"x\"\n}\n", "meta.json:3:3: not a valid meta.json: invalid character '\"' after object key:value pair"},
		{"wrong type", "{\n  \"schema_version\": \"1.1\",\n  \"complete\": \"yes\"\n}\n", "meta.json:3:19: not a valid meta.json: json: cannot unmarshal string into Go struct field Meta.complete of type bool"},
		{"cut short", "{\n  \"schema_version\": \"1.1\",\n  \"run_id\": \"x", "meta.json:3:14: not a valid meta.json: unexpected end of JSON input"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadMeta(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.name, err, tc.want)
		}
	}
}
