package trace

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkEventsSegment is the recorder's events table at serving rates:
// a segment of 1,000, 5,000 or 50,000 token events from 8 connections
// (5 s at 200, 1,000 or 10,000 events/s; 1 s at 50,000/s), interleaved as a batching reader hands them over,
// sorted and encoded to Parquet as the recorder's sink does. It reports
// the CPU of the table's side of an event (cpu-ns/event: sorting,
// encoding, zstd, the file) and its bytes on disk, the part of issue 11's
// 2 us an event that does not depend on the socket.
//
//	go test -run '^$' -bench EventsSegment ./trace
func BenchmarkEventsSegment(b *testing.B) {
	for _, n := range []int{1000, 5000, 50_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchEventsSegment(b, n) })
	}
}

func benchEventsSegment(b *testing.B, n int) {
	rows := tokenEvents(n, rand.New(rand.NewPCG(5, 6)))
	dir := b.TempDir()
	var bytes int64
	for i := 0; b.Loop(); i++ {
		run := filepath.Join(dir, fmt.Sprint(i))
		w, err := NewTableWriter(run, TableEvents, "bench", CompareEvent)
		if err != nil {
			b.Fatal(err)
		}
		w.SetMaxRows(len(rows))
		if err := w.Add(rows...); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		bytes = w.Bytes()
		b.StopTimer()
		os.RemoveAll(run)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/event")
	b.ReportMetric(float64(bytes)/float64(len(rows)), "bytes/event")
	b.ReportMetric(0, "ns/op")
}

// tokenEvents are n client token events as llem_events sends them, in the
// order a reader taking each connection's lines in batches queues them:
// runs of 1 to 60 lines a connection, stamps ~20 us apart a connection.
func tokenEvents(n int, r *rand.Rand) []Event {
	rows := make([]Event, 0, n)
	var next [8]int64
	for c := range next {
		next[c] = 1_780_000_000_000_000_000 + int64(c)*1000
	}
	for len(rows) < n {
		c := r.IntN(8)
		for range min(1+r.IntN(60), n-len(rows)) {
			next[c] += 10_000 + int64(r.IntN(30_000))
			client := next[c] - int64(r.IntN(50_000))
			rows = append(rows, Event{
				TimestampNs: next[c], GPU: -1, Kind: "token",
				RequestID:         fmt.Sprintf("c%d-r%d", c, r.IntN(32)),
				ClientTimestampNs: &client, Count: ptr(int64(1)), Source: "client",
			})
		}
	}
	return rows
}

// BenchmarkScanEvents is the analysis side of the events table: 200,000
// token events in 20 segments read back with ScanColumns, every column
// the loader reads (analyze/load.go's eventColumns), the six a token row
// needs looked at. ns/row is the scan's wall time a row (its decoding
// runs beside the callback where there is a second core).
//
//	go test -run '^$' -bench ScanEvents -cpu 1,2 ./trace
func BenchmarkScanEvents(b *testing.B) {
	rows := tokenEvents(200_000, rand.New(rand.NewPCG(5, 6)))
	dir := newTestRun(b)
	w, err := NewTableWriter(dir, TableEvents, "test", CompareEvent)
	if err != nil {
		b.Fatal(err)
	}
	for k := 0; k < len(rows); k += len(rows) / 20 {
		if err := w.Add(rows[k : k+len(rows)/20]...); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	cols := []string{ColTimestampNs, ColGPU, ColKind, ColName, ColRequestID, ColClientTimestampNs, ColCount,
		ColInputTokens, ColOutputTokens, ColCycle, ColSource, ColAttrs, ColTask}
	for b.Loop() {
		r, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = ScanColumns(r, TableEvents, cols, 16384, func(c *Columns) error {
			for i := range c.Len() {
				if string(c.Bytes(2, i)) != "token" {
					b.Fatalf("row %d: kind %q", n, c.Bytes(2, i))
				}
				c.Int(0, i)
				c.Int(5, i)
				c.Int(6, i)
				c.Bytes(4, i)
				c.Int(12, i)
				n++
			}
			return nil
		})
		if err != nil || n != len(rows) {
			b.Fatalf("%d rows, err %v, %d segments, damage %v", n, err, len(r.Segments[TableEvents]), r.Damage())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
	b.ReportMetric(0, "ns/op")
}
