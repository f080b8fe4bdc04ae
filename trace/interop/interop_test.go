package interop

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llem/llem/trace"
)

func ptr[T any](v T) *T { return &v }

// readArrow reads one segment with arrow-go and returns its table and key-value metadata.
func readArrow(t *testing.T, path string) (arrow.Table, map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatalf("arrow-go cannot open %s: %v", path, err)
	}
	defer pr.Close()
	kv := map[string]string{}
	for _, e := range pr.MetaData().KeyValueMetadata() {
		if e.Value != nil {
			kv[e.Key] = *e.Value
		}
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow-go cannot read %s: %v", path, err)
	}
	return tbl, kv
}

func column[T any](t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q in %v", name, tbl.Schema())
	}
	chunks := tbl.Column(idx[0]).Data().Chunks()
	if len(chunks) != 1 {
		t.Fatalf("column %q: %d chunks", name, len(chunks))
	}
	return chunks[0]
}

func TestArrowReadsEveryTable(t *testing.T) {
	dir := t.TempDir()
	if err := trace.WriteMeta(dir, &trace.Meta{SchemaVersion: trace.SchemaVersion, RunID: "interop"}); err != nil {
		t.Fatal(err)
	}
	dp, _ := trace.NewTableWriter(dir, trace.TableDriverPower, "interop", trace.CompareDriverPower)
	dp.SetGrow(trace.DriverPowerSegmentSpan) // as the recorder writes it: rewritten at each flush, then closed
	st, _ := trace.NewTableWriter(dir, trace.TableState, "interop", trace.CompareState)
	ev, _ := trace.NewTableWriter(dir, trace.TableEvents, "interop", trace.CompareEvent)
	bad, _ := trace.NewTableWriter[trace.BadEvent](dir, trace.TableBadEvents, "interop", nil)
	for i := range 1000 {
		_ = dp.Add(trace.DriverPowerSample{GPU: int32(i % 2), TimestampNs: 1_700_000_000_000_000_000 + int64(i)*20_000_000, DriverPowerMw: 70_000 + int64(i)})
		if i%250 == 249 {
			if err := dp.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = st.Add(trace.DeviceState{GPU: 0, TimestampNs: 5, InstantPowerMw: ptr[int64](612_000), ClockEventReasons: ptr[int64](0)},
		trace.DeviceState{GPU: 0, TimestampNs: 6, TemperatureC: ptr[int32](58)})
	// Format 2.3: the stamps delta-encoded and uncompressed, the optional
	// integers delta-encoded, request ids a dictionary.
	_ = ev.Add(trace.Event{TimestampNs: 7, GPU: trace.GPUAll, Kind: "request_end", RequestID: "r1",
		InputTokens: ptr[int64](10), OutputTokens: ptr[int64](128), Source: "client", Attrs: `{"batch":8}`},
		trace.Event{TimestampNs: 1_780_000_000_123_456_789, GPU: trace.GPUAll, Kind: "token", RequestID: "r2",
			ClientTimestampNs: ptr[int64](1_780_000_000_123_400_001), Count: ptr[int64](3), Source: "client"})
	_ = bad.Add(trace.BadEvent{TimestampNs: 8, Reason: "invalid_utf8", Raw: []byte{0xff, 0xfe, '\n'}})
	for _, err := range []error{dp.Close(), st.Flush(), ev.Flush(), bad.Flush()} {
		if err != nil {
			t.Fatal(err)
		}
	}

	tbl, kv := readArrow(t, filepath.Join(dir, trace.TableDriverPower, trace.SegmentName(0)))
	if kv[trace.KeySchemaVersion] != trace.SchemaVersion || kv[trace.KeyTable] != trace.TableDriverPower {
		t.Errorf("key-value metadata %v", kv)
	}
	if tbl.NumRows() != 1000 {
		t.Fatalf("driver_power rows %d", tbl.NumRows())
	}
	// Format 2: the driver's stamps in us, power as NVML's uint32.
	ts := column[int64](t, tbl, "timestamp_us").(*array.Int64)
	mw := column[uint32](t, tbl, "driver_power_mw").(*array.Uint32)
	gpu := column[int32](t, tbl, "gpu").(*array.Int32)
	// Sorted by GPU then time: GPU 0 holds the even rows.
	if gpu.Value(0) != 0 || gpu.Value(999) != 1 || ts.Value(0) != 1_700_000_000_000_000 || ts.Value(1)-ts.Value(0) != 40_000 || mw.Value(1) != 70_002 {
		t.Errorf("driver_power values differ: gpu %d..%d ts step %d mw %d", gpu.Value(0), gpu.Value(999), ts.Value(1)-ts.Value(0), mw.Value(1))
	}

	tbl, _ = readArrow(t, filepath.Join(dir, trace.TableState, trace.SegmentName(0)))
	inst := column[int64](t, tbl, "instant_power_mw").(*array.Int64)
	temp := column[int32](t, tbl, "temperature_c").(*array.Int32)
	reasons := column[int64](t, tbl, "clock_event_reasons").(*array.Int64)
	if inst.Value(0) != 612_000 || !inst.IsNull(1) || !temp.IsNull(0) || temp.Value(1) != 58 {
		t.Errorf("state nulls not seen by arrow-go")
	}
	if reasons.IsNull(0) || reasons.Value(0) != 0 || !reasons.IsNull(1) {
		t.Errorf("a zero reason bitmask must stay zero, not null")
	}

	tbl, _ = readArrow(t, filepath.Join(dir, trace.TableEvents, trace.SegmentName(0)))
	kind := column[string](t, tbl, "kind")
	out := column[int64](t, tbl, "output_tokens").(*array.Int64)
	if kind.ValueStr(0) != "request_end" || out.Value(0) != 128 {
		t.Errorf("events: kind %s out %d", kind.ValueStr(0), out.Value(0))
	}
	id := column[string](t, tbl, "request_id")
	client := column[int64](t, tbl, "client_timestamp_ns").(*array.Int64)
	count := column[int64](t, tbl, "count").(*array.Int64)
	if id.ValueStr(1) != "r2" || !client.IsNull(0) || client.Value(1) != 1_780_000_000_123_400_001 || count.Value(1) != 3 {
		t.Errorf("events: request %s, client stamps %v, count %v", id.ValueStr(1), client, count)
	}
	_, rows := query(t, dir, `SELECT request_id, client_timestamp_ns, count, timestamp_ns FROM read_parquet('events/part-000000.parquet') ORDER BY timestamp_ns`)
	if len(rows) != 2 || rows[1][0] != "r2" || rows[1][1] != int64(1_780_000_000_123_400_001) || rows[1][2] != int64(3) ||
		rows[1][3] != int64(1_780_000_000_123_456_789) || rows[0][1] != nil {
		t.Errorf("events read by DuckDB: %v", rows)
	}

	tbl, _ = readArrow(t, filepath.Join(dir, trace.TableBadEvents, trace.SegmentName(0)))
	raw := column[[]byte](t, tbl, "raw").(*array.Binary)
	if string(raw.Value(0)) != "\xff\xfe\n" {
		t.Errorf("bad_events raw %q", raw.Value(0))
	}
}
