package trace

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// threeSegments writes a run with three driver_power segments of ten rows
// each, one second apart: segment k holds t = k s .. k s + 0.9 s.
func threeSegments(t *testing.T) string { return powerSegments(t, 3, 10) }

// powerSegments is a run whose driver_power table holds n segments of
// rows samples each, one second apart (segment k's power 100 W + k mW).
func powerSegments(t *testing.T, n, rows int) string {
	t.Helper()
	dir := newTestRun(t)
	w, err := NewTableWriter(dir, TableDriverPower, "test", CompareDriverPower)
	if err != nil {
		t.Fatal(err)
	}
	for k := range n {
		for i := range rows {
			ts := int64(k)*1e9 + int64(i)*1e9/int64(rows)
			if err := w.Add(DriverPowerSample{GPU: 0, TimestampNs: ts, DriverPowerMw: 100_000 + int64(k)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func segPath(dir, table string, n int) string { return filepath.Join(dir, table, SegmentName(n)) }

func TestManifestHoldsChecksumRowsAndSpan(t *testing.T) {
	dir := threeSegments(t)
	m, err := readManifest(filepath.Join(dir, TableDriverPower))
	if err != nil || m == nil {
		t.Fatalf("manifest %v, %v", m, err)
	}
	if len(m.Entries) != 3 || len(m.Damaged) != 0 || m.Torn {
		t.Fatalf("manifest %+v", m)
	}
	b, _ := os.ReadFile(segPath(dir, TableDriverPower, 1))
	sum := sha256.Sum256(b)
	e := m.Entries[SegmentName(1)]
	if e.SHA256 != hex.EncodeToString(sum[:]) || e.Bytes != int64(len(b)) || e.Rows != 10 || e.FirstNs != 1e9 || e.LastNs != 1.9e9 {
		t.Errorf("entry %+v, want the file's SHA-256 %x, %d bytes, 10 rows, 1e9..1.9e9", e, sum, len(b))
	}
}

// A damaged line is told from a good one by its CRC-32C.
func TestManifestLineChecksum(t *testing.T) {
	line, err := manifestLine(ManifestEntry{Segment: SegmentName(7), Rows: 3, Bytes: 99, SHA256: strings.Repeat("ab", 32), FirstNs: 5, LastNs: 9})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSuffix(string(line), "\n")
	if e, why := parseManifestLine([]byte(text)); why != "" || e.Rows != 3 || e.LastNs != 9 {
		t.Fatalf("%q: %+v, %s", text, e, why)
	}
	bad := strings.Replace(text, `"rows":3`, `"rows":8`, 1)
	if _, why := parseManifestLine([]byte(bad)); !strings.Contains(why, "crc32c mismatch") {
		t.Errorf("a changed line: %q", why)
	}
}
