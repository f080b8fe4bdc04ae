package eventsrv

import (
	"bufio"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

// TestFloodKeepsMemoryBounded sends a million small events through a real
// socket as fast as one client can while the consumer drains slowly: the
// server must drop rather than queue without bound, and account for every
// line.
func TestFloodKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("sends a million events")
	}
	total := int64(1_000_000)
	if raceEnabled {
		total = 200_000
	}
	const heapLimit = 200 << 20
	s := start(t, Options{})

	// A slow consumer, at most ~16k events/s: far slower than the server
	// parses, so the buffer fills and the server must drop.
	// Once the client is done it drains at full speed, to keep the test short.
	consumed := make(chan int64)
	var sendDone atomic.Bool
	go func() {
		var n int64
		var evs []trace.Event
		for {
			done := false
			select {
			case <-s.Done():
				done = true
			default:
			}
			evs, _ = s.Take(evs, nil)
			n += int64(len(evs))
			if done {
				break
			}
			if !sendDone.Load() {
				time.Sleep(time.Duration(len(evs)/16+1) * time.Millisecond)
			}
		}
		consumed <- n
	}()

	var maxHeap atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxHeap.Load() {
				maxHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(conn, 64<<10)
	line := make([]byte, 0, 128)
	start := time.Now()
	for i := int64(0); i < total; i++ {
		line = append(line[:0], `{"kind":"token","id":"r`...)
		line = strconv.AppendInt(line, i%512, 10)
		line = append(line, `","count":1,"ts":`...)
		line = strconv.AppendInt(line, 1700000000000000000+i, 10)
		line = append(line, "}\n"...)
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	sent := time.Since(start)
	sendDone.Store(true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n := <-consumed
	close(stopSampling)
	<-sampled

	st := s.Stats()
	t.Logf("sent %d events in %v; stats %+v; consumed %d; max heap in use %d MiB",
		total, sent, st, n, maxHeap.Load()>>20)
	if st.Received != total || st.Received != st.Accepted+st.Dropped+st.Bad || st.Bad != 0 {
		t.Fatalf("stats don't add up: %+v", st)
	}
	if st.Dropped == 0 {
		t.Errorf("nothing dropped: the consumer was not slow enough to test the bound")
	}
	if n != st.Accepted {
		t.Fatalf("consumer got %d events, server accepted %d", n, st.Accepted)
	}
	if h := maxHeap.Load(); h > heapLimit {
		t.Fatalf("heap in use reached %d MiB, limit %d MiB", h>>20, heapLimit>>20)
	}
}
