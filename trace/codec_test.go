package trace

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/brotli"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// The windowed codec writes the same segments as parquet-go's own zstd
// codec at the same level, so traces are byte for byte what they were.
func TestSegmentCodecBytes(t *testing.T) {
	rows := interleaved(200_000, rand.New(rand.NewPCG(5, 6))) // a full segment, pages at their largest
	for i := range rows {
		rows[i].Kind, rows[i].Source, rows[i].RequestID = "token", "client", "c1-r"+string(rune('a'+i%26))
	}
	write := func(dir string) []byte {
		w, err := NewTableWriter(dir, TableEvents, "codec", CompareEvent)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(rows...); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, TableEvents, SegmentName(0)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got := write(t.TempDir())
	saved := segmentCodec
	defer func() { segmentCodec = saved }()
	segmentCodec = &zstd.Codec{Level: zstd.SpeedDefault}
	want := write(t.TempDir())
	if !bytes.Equal(got, want) {
		t.Fatalf("segments differ: %d bytes against %d with parquet-go's codec", len(got), len(want))
	}
}

// The power column is brotli and the others zstd; a segment reads back as
// written, and the kept brotli writer, reset between pages, writes the
// bytes a fresh writer of the same quality and window writes (the second
// segment is encoded after the first, so it would show state left over).
func TestPowerCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var rows []DriverPowerSample
	for i := range 6000 {
		rows = append(rows, DriverPowerSample{GPU: int32(i % 2), TimestampNs: 1_700_000_000_000_000_000 + int64(i/2)*20_000_000 + rng.Int64N(500)*1000,
			DriverPowerMw: 300_000 + rng.Int64N(400_000)})
	}
	write := func(dir string) [][]byte {
		w, err := NewTableWriter(dir, TableDriverPower, "test", CompareDriverPower)
		if err != nil {
			t.Fatal(err)
		}
		var segs [][]byte
		for _, half := range [][]DriverPowerSample{rows[:3000], rows[3000:]} {
			if err := w.Add(half...); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, TableDriverPower, SegmentName(len(segs))))
			if err != nil {
				t.Fatal(err)
			}
			segs = append(segs, b)
		}
		return segs
	}
	dir := newTestRun(t)
	got := write(dir)
	for i, b := range got {
		f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range f.Metadata().RowGroups[0].Columns {
			want := format.Zstd
			if c.MetaData.PathInSchema[0] == "driver_power_mw" {
				want = format.Brotli
			}
			if c.MetaData.Codec != want {
				t.Errorf("segment %d, column %v: %s, want %s %d", i, c.MetaData.PathInSchema, c.MetaData.Codec, want, len(b))
			}
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadTable[DriverPowerSample](r, TableDriverPower)
	sorted := slices.SortedFunc(slices.Values(rows), CompareDriverPower)
	slices.SortFunc(back, CompareDriverPower)
	if err != nil || !slices.Equal(back, sorted) {
		t.Fatalf("read back %d rows (%v), wrote %d", len(back), err, len(rows))
	}

	saved := powerCodec
	defer func() { powerCodec = saved }()
	powerCodec = &brotli.Codec{Quality: powerQuality, LGWin: powerWindow}
	want := write(t.TempDir())
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("segment %d: %d bytes against %d with parquet-go's codec", i, len(got[i]), len(want[i]))
		}
	}
}

// Every segment's column chunks name their columns (path_in_schema), the
// later segments of a table as well as its first: parquet-go's
// Writer.Reset once left them empty after a writer's first file, which
// Spark and Athena refuse.
func TestSegmentsNameTheirColumns(t *testing.T) {
	dir := newTestRun(t)
	dp, err := NewTableWriter(dir, TableDriverPower, "test", CompareDriverPower)
	if err != nil {
		t.Fatal(err)
	}
	dp.SetGrow(DriverPowerSegmentSpan)
	ev, err := NewTableWriter(dir, TableEvents, "test", CompareEvent)
	if err != nil {
		t.Fatal(err)
	}
	en, err := NewTableWriter(dir, TableEnergy, "test", CompareEnergy)
	if err != nil {
		t.Fatal(err)
	}
	for s := range 3 {
		for i := range 100 {
			ts := int64(s*100+i) * 1_000_000_000
			if err := errors.Join(
				dp.Add(DriverPowerSample{GPU: 0, TimestampNs: ts, DriverPowerMw: 70_000 + int64(i)}),
				ev.Add(Event{TimestampNs: ts, GPU: GPUAll, Kind: "token", RequestID: "r", Source: "client"}),
				en.Add(EnergyRead{TimestampNs: ts, EnergyMj: int64(s*100 + i)})); err != nil {
				t.Fatal(err)
			}
		}
		if err := errors.Join(dp.Flush(), ev.Flush(), en.Flush()); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(dp.Close(), ev.Close(), en.Close()); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{TableDriverPower, TableEvents, TableEnergy} {
		segs, _ := filepath.Glob(filepath.Join(dir, table, "part-*.parquet"))
		if len(segs) < 3 && table != TableDriverPower || len(segs) < 2 {
			t.Fatalf("%s: %d segments", table, len(segs))
		}
		for _, seg := range segs {
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			leaves := f.Schema().Columns()
			for _, rg := range f.Metadata().RowGroups {
				for i, c := range rg.Columns {
					if !slices.Equal(c.MetaData.PathInSchema, leaves[i]) {
						t.Errorf("%s/%s, column %d: path_in_schema %q, the schema's column is %q", table, filepath.Base(seg), i, c.MetaData.PathInSchema, leaves[i])
					}
				}
			}
		}
	}
}

// Format 2.3's events columns: every integer column delta-encoded, the
// optional ones too (parquet-go alone writes those plain), the two stamps
// stored uncompressed, request ids as a dictionary; and rows with and
// without the optional values read back as written.
func TestEventColumnEncodings(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	rows := tokenEvents(5000, rng)
	for i := range rows {
		switch i % 7 {
		case 0: // a request's end, with its counts and no client stamp
			rows[i].Kind, rows[i].ClientTimestampNs, rows[i].Count = "request_end", nil, nil
			rows[i].InputTokens, rows[i].OutputTokens = ptr(int64(100+i)), ptr(int64(i%300))
		case 3: // a phase of the recorder's, of one cycle
			rows[i].Kind, rows[i].Name, rows[i].Source, rows[i].RequestID = "phase_start", "measure", "recorder", ""
			rows[i].ClientTimestampNs, rows[i].Count, rows[i].Cycle = nil, nil, ptr(int32(i%5))
		}
	}
	dir, _, f := oneEventSegment(t, rows)
	leaves := map[string]parquet.Kind{}
	for _, path := range f.Schema().Columns() {
		leaf, _ := f.Schema().Lookup(path...)
		leaves[path[0]] = leaf.Node.Type().Kind()
	}
	for _, c := range f.Metadata().RowGroups[0].Columns {
		name := c.MetaData.PathInSchema[0]
		wantCodec := format.Zstd
		if name == "timestamp_ns" || name == "client_timestamp_ns" {
			wantCodec = format.Uncompressed
		}
		if c.MetaData.Codec != wantCodec {
			t.Errorf("%s: %s, want %s", name, c.MetaData.Codec, wantCodec)
		}
		var want format.Encoding = -1
		switch {
		case leaves[name] == parquet.Int32 || leaves[name] == parquet.Int64:
			want = format.DeltaBinaryPacked
		case name == "request_id":
			want = format.RLEDictionary
		}
		if want >= 0 && !slices.Contains(c.MetaData.Encoding, want) {
			t.Errorf("%s: encodings %v, want %s", name, c.MetaData.Encoding, want)
		}
	}
	back, damaged := readBack[Event](t, dir, TableEvents)
	want := slices.Clone(rows)
	slices.SortStableFunc(want, CompareEvent)
	if damaged || !reflect.DeepEqual(back, want) { // optional fields by value
		t.Fatalf("read back %d rows unlike the %d written (damage reported: %v)", len(back), len(want), damaged)
	}
}

// A segment of events whose request ids are many and long (a client may
// send ids up to a line's 64 KiB) keeps every page, its dictionary page
// too, far below the 16 MiB a reader accepts (maxPageBytes): a segment
// whose strings are over maxDictBytes has no dictionary. Its rows read
// back as written.
func TestLongRequestIDsBoundTheDictionary(t *testing.T) {
	var rows []Event
	id := strings.Repeat("x", 48<<10)
	for i := range 400 {
		rows = append(rows, Event{TimestampNs: int64(i), GPU: GPUAll, Kind: "request_start",
			RequestID: fmt.Sprintf("%06d%s", i, id), Source: "client"})
	}
	dir, b, f := oneEventSegment(t, rows)
	if err := checkPages(b, f.Metadata()); err != nil {
		t.Fatalf("a reader refuses the segment: %v", err)
	}
	for _, c := range f.Metadata().RowGroups[0].Columns {
		if slices.Contains(c.MetaData.Encoding, format.RLEDictionary) {
			t.Errorf("%s: encodings %v, want no dictionary", c.MetaData.PathInSchema[0], c.MetaData.Encoding)
		}
	}
	back, damaged := readBack[Event](t, dir, TableEvents)
	if damaged || !reflect.DeepEqual(back, rows) {
		t.Fatalf("read back %d rows (damage reported: %v), wrote %d", len(back), damaged, len(rows))
	}
}

// stringBytes counts every dictionary-encoded string column of the tables
// that have them, so that a column made a dictionary later is bounded too.
func TestStringBytesCoversEveryDictionary(t *testing.T) {
	check := func(row any, got func() int) {
		v := reflect.ValueOf(row).Elem()
		for i := range v.NumField() {
			if v.Field(i).Kind() == reflect.String {
				v.Field(i).SetString("abc")
			}
		}
		dicts := 0
		for _, f := range parquet.SchemaOf(v.Interface()).Fields() {
			if e := f.Encoding(); e != nil && e.Encoding() == format.RLEDictionary {
				dicts++
			}
		}
		if dicts == 0 || got() != 3*dicts {
			t.Errorf("%T: stringBytes %d, want 3 bytes for each of %d dictionary columns", row, got(), dicts)
		}
	}
	var e Event
	check(&e, func() int { return stringBytes([]Event{e}) })
	var b BadEvent
	check(&b, func() int { return stringBytes([]BadEvent{b}) })
}

// oneEventSegment writes rows as a run's one events segment and returns
// the run, the segment's bytes and the segment opened by parquet-go.
func oneEventSegment(t *testing.T, rows []Event) (dir string, b []byte, f *parquet.File) {
	t.Helper()
	dir = newTestRun(t)
	w, err := NewTableWriter(dir, TableEvents, "test", CompareEvent)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxRows(len(rows))
	if err := errors.Join(w.Add(rows...), w.Close()); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(dir, TableEvents, SegmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	f, err = parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return dir, b, f
}
