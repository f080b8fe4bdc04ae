package eventsrv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/llem/llem/events"
	"github.com/llem/llem/trace"
)

// The event path's cost, without a GPU: clients in another process (this
// test binary, re-run as TestLoadClient) send token lines over the socket
// from 8 connections at a fixed total rate, either one write per event
// (each: the Python and Go clients with hold 0) or holding lines for up
// to 100 ms and writing them together (held: their default,
// llem_events.HOLD_S and events.DefaultHold); this process runs the server
// and writes what it takes to an events table as the recorder does. What the benchmark process used
// (getrusage: user + system) is the recorder's side of the path: reading,
// parsing, queueing, Parquet encoding and zstd.
//
//	go test -run '^$' -bench EventPath -benchtime 5s ./record/eventsrv
//
// It reports cpu-ns/event (the target is under 2,000) and
// events/s/core (events per second of CPU). The rate=max case sends as
// fast as 8 connections can, in 16 KiB writes: what the server cannot take
// it drops and counts (dropped), as the recorder does; at the fixed rates
// nothing may be dropped.
func BenchmarkEventPath(b *testing.B) {
	for _, rate := range []int{1000, 10_000, 50_000, 0} {
		name := "rate=max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		if rate == 0 {
			b.Run(name, func(b *testing.B) { benchEventPath(b, rate, 0) })
			continue
		}
		b.Run(name+"/each", func(b *testing.B) { benchEventPath(b, rate, 0) })
		b.Run(name+"/held", func(b *testing.B) { benchEventPath(b, rate, heldFor) })
	}
}

// heldFor is how long the held clients hold lines: llem_events.HOLD_S.
const heldFor = events.DefaultHold

func benchEventPath(b *testing.B, rate int, hold time.Duration) {
	opts := Options{}
	if os.Getenv("LLEM_BENCH_NOPACE") != "" {
		opts.ReadEvery = -1
	}
	s := start(b, opts)
	dir := b.TempDir()
	w, err := trace.NewTableWriter(dir, trace.TableEvents, "bench", trace.CompareEvent)
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxRows(50_000) // as the recorder's events table (record.eventSegmentRows)
	const clients = 8
	per := b.N / clients
	total := per * clients
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadClient$")
	cmd.Env = append(os.Environ(), "LLEM_LOAD_SOCKET="+s.Path(), "LLEM_LOAD_EACH="+strconv.Itoa(per),
		"LLEM_LOAD_RATE="+strconv.Itoa(rate/clients), "LLEM_LOAD_HOLD="+hold.String())
	cmd.Stderr = os.Stderr
	cpu0 := processCPU()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	b.ResetTimer()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The recorder's sink: take at every rotation or
	// when the server's queue is half full; write a segment per rotation.
	got := 0
	var evs []trace.Event
	tick := time.NewTicker(5 * time.Second) // the recorder's default rotation
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	take := func() {
		evs, _ = s.Take(evs, nil)
		got += len(evs)
		if err := w.Add(evs...); err != nil {
			b.Fatal(err)
		}
	}
	for running := true; running; {
		select {
		case <-s.Ready():
			take()
		case <-tick.C:
			take()
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		case err := <-exited:
			if err != nil {
				b.Fatalf("load client: %v", err)
			}
			running = false
		}
	}
	tick.Stop()
	if f := os.Getenv("LLEM_BENCH_HEAPPROFILE"); f != "" {
		// What the path holds live under load (the rows still queued
		// and written included): for RSS growth.
		runtime.GC()
		if out, err := os.Create(f); err == nil {
			pprof.WriteHeapProfile(out)
			out.Close()
		}
	}
	s.Close()
	take()
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	wall := time.Since(t0)
	st := s.Stats()
	if int64(got) != st.Accepted || st.Received != int64(total) || st.Bad != 0 || rate > 0 && st.Dropped != 0 {
		b.Fatalf("sent %d, wrote %d, stats %+v", total, got, st)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/event")
	b.ReportMetric(float64(total)/cpu.Seconds(), "events/s/core")
	b.ReportMetric(float64(total)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(st.Dropped), "dropped")
	// Context switches are what the path's cost follows at low rates:
	// each wake-up of the process costs far more than what it reads.
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.ReportMetric(float64(ru1.Nvcsw-ru0.Nvcsw+ru1.Nivcsw-ru0.Nivcsw)/wall.Seconds(), "ctxsw/s")
	b.ReportMetric(0, "ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLoadClient is BenchmarkEventPath's client process; it does nothing
// unless the benchmark runs it.
func TestLoadClient(t *testing.T) {
	path := os.Getenv("LLEM_LOAD_SOCKET")
	if path == "" {
		t.Skip("run by BenchmarkEventPath")
	}
	each, _ := strconv.Atoi(os.Getenv("LLEM_LOAD_EACH"))
	rate, _ := strconv.Atoi(os.Getenv("LLEM_LOAD_RATE")) // per connection; 0: as fast as possible
	hold, err := time.ParseDuration(os.Getenv("LLEM_LOAD_HOLD"))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for c := range 8 {
		go func() { errs <- loadClient(path, c, each, rate, hold) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// loadClient sends n token events on one connection: rate a second, paced
// every 2 ms, one write each or, with hold, one write when the oldest line
// has waited hold or 16 KiB are held, each starting with an empty line (as
// llem_events does); or, at rate 0, as fast as it can in 16 KiB writes.
func loadClient(path string, c, n, rate int, hold time.Duration) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer conn.Close()
	var out interface{ Write([]byte) (int, error) } = conn
	var bw *bufio.Writer
	if rate == 0 || hold > 0 {
		size := 16 << 10 // as fast as it can: written when full
		if hold > 0 {
			size = 32 << 10 // held: written at 16 KiB, before it fills
		}
		bw = bufio.NewWriterSize(conn, size)
		out = bw
	}
	var heldSince time.Time // of the oldest line not written
	line := make([]byte, 0, 128)
	start := time.Now()
	for i := 0; i < n; {
		due := n
		if rate > 0 {
			due = min(n, int(time.Since(start).Seconds()*float64(rate)))
		}
		for ; i < due; i++ {
			if hold > 0 && bw.Buffered() == 0 {
				heldSince = time.Now()
				bw.WriteByte('\n') // the write's mark
			}
			line = append(line[:0], `{"kind":"token","ts":`...)
			line = strconv.AppendInt(line, time.Now().UnixNano(), 10)
			line = append(line, `,"id":"c`...)
			line = strconv.AppendInt(line, int64(c), 10)
			line = append(line, "-r"...)
			line = strconv.AppendInt(line, int64(i%32), 10)
			line = append(line, `","count":1}`+"\n"...)
			if _, err := out.Write(line); err != nil {
				return err
			}
			if hold > 0 && bw.Buffered() >= 16<<10 {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		if hold > 0 && bw.Buffered() > 0 && time.Since(heldSince) >= hold {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if rate > 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if bw != nil {
		return bw.Flush()
	}
	return nil
}
