package trace

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readPower(t *testing.T, dir string) ([]DriverPowerSample, *Run) {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadTable[DriverPowerSample](r, TableDriverPower)
	if err != nil {
		t.Fatalf("a damaged run must be read, not refused: %v", err)
	}
	return rows, r
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func onlyDamage(t *testing.T, r *Run, code, file string) Damage {
	t.Helper()
	ds := r.Damage()
	if len(ds) != 1 || ds[0].Code != code || ds[0].File != file {
		t.Fatalf("damage %+v, want one %s of %s", ds, code, file)
	}
	return ds[0]
}

func TestFlippedByteLosesOneSegmentNotTheRun(t *testing.T) {
	dir := threeSegments(t)
	flipByte(t, segPath(dir, TableDriverPower, 1), -20) // in the footer, which no page CRC covers
	rows, r := readPower(t, dir)
	if len(rows) != 20 || rows[9].TimestampNs != 0.9e9 || rows[10].TimestampNs != 2e9 {
		t.Fatalf("read %d rows; want segments 0 and 2 (20 rows)", len(rows))
	}
	d := onlyDamage(t, r, DamageChecksum, filepath.Join(TableDriverPower, SegmentName(1)))
	if !d.Lost || d.Rows != 10 || d.StartNs != 1e9 || d.EndNs != 1.9e9 || d.SpanFrom != "manifest" {
		t.Errorf("damage %+v: want 10 rows lost over 1e9..1.9e9 from the manifest", d)
	}
	if !strings.Contains(d.String(), "10 of its 10 rows lost") || !strings.Contains(d.String(), "(0.9 s, from the manifest)") {
		t.Errorf("message %q", d)
	}
	gaps := r.Gaps()
	if len(gaps) != 1 || gaps[0].Table != TableDriverPower || gaps[0].StartNs != 1e9 || gaps[0].EndNs != 1.9e9 {
		t.Errorf("gaps %+v", gaps)
	}
}

func TestTruncatedSegmentIsAGap(t *testing.T) {
	dir := threeSegments(t)
	p := segPath(dir, TableDriverPower, 2)
	if err := os.Truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	rows, r := readPower(t, dir)
	if len(rows) != 20 {
		t.Fatalf("%d rows, want 20", len(rows))
	}
	d := onlyDamage(t, r, DamageChecksum, filepath.Join(TableDriverPower, SegmentName(2)))
	if !strings.Contains(d.Reason, "100 bytes") {
		t.Errorf("reason %q does not give the size", d.Reason)
	}
}

// A run written before format 1.1 has no manifest: a truncated segment is
// found by its structure, and its span from the segments either side.
func TestTruncatedSegmentWithoutManifest(t *testing.T) {
	dir := threeSegments(t)
	if err := os.Remove(filepath.Join(dir, TableDriverPower, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segPath(dir, TableDriverPower, 1), 300); err != nil {
		t.Fatal(err)
	}
	rows, r := readPower(t, dir)
	if len(rows) != 20 {
		t.Fatalf("%d rows, want 20", len(rows))
	}
	d := onlyDamage(t, r, DamageUnreadable, filepath.Join(TableDriverPower, SegmentName(1)))
	if d.Rows != -1 || d.StartNs != 0.9e9 || d.EndNs != 2e9 || d.SpanFrom != "neighbours" {
		t.Errorf("damage %+v: want an unknown row count between 0.9e9 and 2e9, from the neighbours", d)
	}
}

func TestStrayAndForeignSegmentsAreLeftOut(t *testing.T) {
	dir := threeSegments(t)
	other := threeSegments(t) // the same rows...
	m, _ := ReadMeta(other)
	m.RunID = "other"
	WriteMeta(other, m)
	// ... under another run id, so the files differ.
	w, _ := NewTableWriter(other, TableEnergy, "other", CompareEnergy)
	w.Add(EnergyRead{GPU: 0, TimestampNs: 5, EnergyMj: 1})
	w.Flush()

	copyFile(t, segPath(dir, TableDriverPower, 1), filepath.Join(dir, TableDriverPower, "part-000001 (copy).parquet"))
	// A segment of another run, under a name of this run's manifest's...
	copyFile(t, segPath(other, TableEnergy, 0), segPath(dir, TableDriverPower, 3))
	// ... and one in a table with no manifest at all.
	if err := os.MkdirAll(filepath.Join(dir, TableEnergy), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, segPath(other, TableEnergy, 0), segPath(dir, TableEnergy, 0))

	rows, r := readPower(t, dir)
	if len(rows) != 30 {
		t.Errorf("%d rows, want this run's 30", len(rows))
	}
	energy, err := ReadTable[EnergyRead](r, TableEnergy)
	if err != nil || len(energy) != 0 {
		t.Errorf("energy: %d rows of another run read, err %v", len(energy), err)
	}
	codes := map[string]string{}
	for _, d := range r.Damage() {
		codes[d.File] = d.Code
		if d.Lost {
			t.Errorf("%s: nothing of this run is lost: %s", d.File, d)
		}
	}
	want := map[string]string{
		filepath.Join(TableDriverPower, "part-000001 (copy).parquet"): DamageStray,
		filepath.Join(TableDriverPower, SegmentName(3)):               DamageStray, // not in the manifest
		filepath.Join(TableEnergy, SegmentName(0)):                    DamageForeign,
	}
	for f, c := range want {
		if codes[f] != c {
			t.Errorf("%s: code %q, want %q (all: %v)", f, codes[f], c, codes)
		}
	}
}

func TestMissingSegmentIsReported(t *testing.T) {
	dir := threeSegments(t)
	if err := os.Remove(segPath(dir, TableDriverPower, 0)); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := onlyDamage(t, r, DamageMissing, filepath.Join(TableDriverPower, SegmentName(0)))
	if !d.Lost || d.Rows != 10 || d.StartNs != 0 || d.EndNs != 0.9e9 || !d.HasSpan() {
		t.Errorf("damage %+v", d)
	}
}

// A recorder killed between the manifest line and the rename leaves the
// line and a .tmp: what a kill costs, not damage.
func TestKillBetweenManifestAndRename(t *testing.T) {
	dir := threeSegments(t)
	p := segPath(dir, TableDriverPower, 2)
	if err := os.Rename(p, p+".tmp"); err != nil {
		t.Fatal(err)
	}
	rows, r := readPower(t, dir)
	if len(rows) != 20 || len(r.Damage()) != 0 || len(r.Partial) != 1 {
		t.Errorf("%d rows, damage %v, partial %v", len(rows), r.Damage(), r.Partial)
	}
}

// A kill in the middle of appending a manifest line leaves half a line
// with no newline: not damage.
func TestTornManifestLineIsIgnored(t *testing.T) {
	dir := threeSegments(t)
	f, _ := os.OpenFile(filepath.Join(dir, TableDriverPower, ManifestFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"segment":"part-000003.parquet","rows":1`)
	f.Close()
	rows, r := readPower(t, dir)
	if len(rows) != 30 || len(r.Damage()) != 0 || !r.Manifests[TableDriverPower].Torn {
		t.Errorf("%d rows, damage %v", len(rows), r.Damage())
	}
}

// A damaged manifest line condemns no segment: the segment it described
// is read, checked without the checksum, and both are reported.
func TestDamagedManifestLine(t *testing.T) {
	dir := threeSegments(t)
	mp := filepath.Join(dir, TableDriverPower, ManifestFile)
	b, _ := os.ReadFile(mp)
	lines := strings.SplitAfter(string(b), "\n")
	lines[1] = strings.Replace(lines[1], `"rows":10`, `"rows":11`, 1)
	os.WriteFile(mp, []byte(strings.Join(lines, "")), 0o644)
	rows, r := readPower(t, dir)
	if len(rows) != 30 {
		t.Errorf("%d rows, want 30", len(rows))
	}
	var codes []string
	for _, d := range r.Damage() {
		codes = append(codes, d.Code)
		if d.Lost {
			t.Errorf("nothing is lost: %s", d)
		}
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []string{DamageManifest, DamageUnverified}) {
		t.Errorf("codes %v", codes)
	}
}

func TestSegmentWithoutVersionIsReportedNotRead(t *testing.T) {
	dir := newTestRun(t)
	if err := os.MkdirAll(filepath.Join(dir, TableEnergy), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, TableEnergy, SegmentName(0))
	if err := os.WriteFile(path, []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadTable[EnergyRead](r, TableEnergy)
	if err != nil || len(rows) != 0 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	d := onlyDamage(t, r, DamageUnreadable, filepath.Join(TableEnergy, SegmentName(0)))
	if !strings.Contains(d.String(), "not a readable Parquet file") {
		t.Errorf("damage %q", d)
	}
}

// ScanColumns skips and reports as ScanTable does; an error of the
// caller's function is still returned.
func TestScanColumnsReadsAroundDamage(t *testing.T) {
	dir := threeSegments(t)
	flipByte(t, segPath(dir, TableDriverPower, 0), 40)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = ScanColumns(r, TableDriverPower, []string{ColTimestampNs}, 4, func(c *Columns) error {
		n += c.Len()
		return nil
	})
	if err != nil || n != 20 || len(r.Damage()) != 1 {
		t.Errorf("%d rows, err %v, damage %v", n, err, r.Damage())
	}
	stop := os.ErrClosed
	err = ScanColumns(r, TableDriverPower, []string{ColTimestampNs}, 4, func(*Columns) error { return stop })
	if err != stop {
		t.Errorf("the callback's error became %v", err)
	}
}

// The shipped runs (format 1.0, no manifests) read with no damage, every
// segment checked by its structure, CRCs and statistics.
func TestShippedRunsReadWithoutDamage(t *testing.T) {
	runs, _ := filepath.Glob(filepath.Join("..", "testdata", "runs", "h100-*"))
	if len(runs) == 0 {
		t.Fatal("no shipped runs")
	}
	for _, dir := range runs {
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Summarize(r); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadTable[Event](r, TableEvents); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadTable[DeviceState](r, TableState); err != nil {
			t.Fatal(err)
		}
		for _, d := range r.Damage() {
			t.Errorf("%s: %s", dir, d)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A segment of format 1.0 lacks the columns 1.1 added (events.task): it is
// read, with nulls there, not taken for damage.
func TestOlderMinorLacksNewColumns(t *testing.T) {
	if !olderThanColumn("1.0", TableEvents, ColTask) || olderThanColumn("1.1", TableEvents, ColTask) ||
		olderThanColumn("1.0", TableEvents, ColKind) {
		t.Error("columnSince: events.task is new in 1.1, kind is not")
	}
}
