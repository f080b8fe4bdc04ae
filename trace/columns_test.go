package trace

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// ScanColumns reads what ReadTable reads, nulls included, across many
// segments, pages and batch boundaries, and a column the file lacks reads
// as null. Kind's dictionary is small (its rows share its values), name's
// larger than maxSharedDict (copied row by row).
func TestScanColumnsMatchesReadTable(t *testing.T) {
	dir := newTestRun(t)
	w, err := NewTableWriter(dir, TableEvents, "test", CompareEvent)
	if err != nil {
		t.Fatal(err)
	}
	var in []Event
	for i := range 5000 {
		e := Event{TimestampNs: int64(i), GPU: -1, Kind: "token", RequestID: fmt.Sprintf("r%d", i%7), Source: "client"}
		if i%3 == 0 {
			e.Count = ptr[int64](int64(i))
		}
		if i%5 == 0 {
			e.Kind, e.Name, e.Cycle = "phase_start", fmt.Sprintf("measure-%04d-%032d", i, i), ptr[int32](int32(i%4))
		}
		in = append(in, e)
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
		if i%1700 == 0 {
			if err := w.Flush(); err != nil { // several segments
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 333, 8192} {
		k := 0
		err = ScanColumns(r, TableEvents, []string{"timestamp_ns", "kind", "count", "cycle", "request_id", "no_such_column", "gpu", "name"}, batch, func(c *Columns) error {
			if c.Len() > batch {
				t.Fatalf("batch of %d rows, asked for at most %d", c.Len(), batch)
			}
			for i := 0; i < c.Len(); i++ {
				e := in[k]
				k++
				ts, _ := c.Int(0, i)
				n, nok := c.Int(2, i)
				cy, cok := c.Int(3, i)
				_, xok := c.Int(5, i)
				if g, _ := c.Int(6, i); g != int64(e.GPU) {
					t.Fatalf("gpu %d, wrote %d", g, e.GPU)
				}
				if ts != e.TimestampNs || string(c.Bytes(1, i)) != e.Kind || string(c.Bytes(4, i)) != e.RequestID ||
					nok != (e.Count != nil) || (nok && n != *e.Count) || cok != (e.Cycle != nil) || (cok && int32(cy) != *e.Cycle) ||
					xok || c.Bytes(5, i) != nil || string(c.Bytes(7, i)) != e.Name {
					t.Fatalf("batch %d, row %d: read ts %d kind %q count %d/%v cycle %d/%v, wrote %+v", batch, k-1, ts, c.Bytes(1, i), n, nok, cy, cok, e)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if k != len(in) {
			t.Fatalf("batch %d: read %d rows, wrote %d", batch, k, len(in))
		}
	}
}

// The batches are decoded ahead of the caller's function; when it fails,
// the decoder stops within a few batches instead of reading the rest of
// the table, and every batch it had decoded is still handed over in order
// before that.
func TestScanColumnsStopsAheadWhenTheCallerFails(t *testing.T) {
	const segments = 40
	dir := powerSegments(t, segments, 5)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Segments[TableDriverPower]) != segments {
		t.Fatalf("%d segments, want %d", len(r.Segments[TableDriverPower]), segments)
	}
	var opened atomic.Int64
	r.OnRead = func(int64) { opened.Add(1) }
	var last int64 = -1
	n := 0
	err = ScanColumns(r, TableDriverPower, []string{ColTimestampNs}, 5, func(c *Columns) error {
		for i := range c.Len() {
			ts, _ := c.Int(0, i)
			if ts <= last {
				t.Errorf("stamp %d after %d", ts, last)
			}
			last = ts
		}
		if n++; n == 3 {
			return os.ErrClosed
		}
		return nil
	})
	if err != os.ErrClosed || n != 3 {
		t.Errorf("err %v after %d batches, want the caller's error after 3", err, n)
	}
	// 3 handed over, scanAhead waiting, one being decoded, one opened
	// before the stop was seen.
	if got := opened.Load(); got > 3+scanAhead+2 {
		t.Errorf("%d of %d segments read after the caller failed on the third", got, segments)
	}
	// Read whole, the table gives every row once, in order.
	r.OnRead, last, n = nil, -1, 0
	if err := ScanColumns(r, TableDriverPower, []string{ColTimestampNs}, 3, func(c *Columns) error {
		for i := range c.Len() {
			ts, _ := c.Int(0, i)
			if ts <= last {
				t.Errorf("stamp %d after %d", ts, last)
			}
			last = ts
			n++
		}
		return nil
	}); err != nil || n != segments*5 {
		t.Errorf("%d rows, err %v; want %d", n, err, segments*5)
	}
}
