package record_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// Events under abuse through the whole recorder (issue 17): 8 clients
// flooding, 10 MB lines, binary garbage, thousands of connections made and
// dropped, and a client still sending after the command exited. Memory
// stays bounded, good events sent after the flood among the abuse are
// kept (during it they may be dropped, and are counted), the bad
// lines are in bad_events with their reasons, and every line is counted.
func TestEventsUnderAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the event socket")
	}
	dir := filepath.Join(t.TempDir(), "run")
	sockFile := filepath.Join(t.TempDir(), "sock")
	// The command runs until the abuse has been sent (the file done
	// appears): under the race detector sending 22 MB of bad lines takes
	// longer than a fixed sleep, and lines sent after the command exited
	// are not all read.
	doneFile := filepath.Join(t.TempDir(), "done")
	resC, errC := recordAsync(record.Config{
		OutDir: dir, Backend: sim.New(sim.Options{Seed: 9}),
		Argv: []string{"sh", "-c", `echo "$LLEM_EVENTS" > ` + sockFile + `; sleep 1; while [ ! -e ` + doneFile +
			` ]; do sleep 0.05; done; sleep 0.3`},
		Stdout: io.Discard, Stderr: io.Discard, Log: io.Discard,
	})
	waitForFile(t, sockFile)
	time.Sleep(50 * time.Millisecond)
	b, _ := os.ReadFile(sockFile)
	sock := strings.TrimSpace(string(b))
	dial := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Error(err)
			return nil
		}
		return c
	}

	// What an earlier test left (with -count N, the last run's events
	// read back) is not this recording's heap.
	runtime.GC()
	var maxHeap atomic.Uint64
	stopHeap := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stopHeap:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxHeap.Load() {
				maxHeap.Store(ms.HeapInuse)
			}
		}
	}()

	var wg sync.WaitGroup
	floodUntil := time.Now().Add(time.Second)
	// The good events go 1 s after the flood: the kernel still holds up
	// to ~40,000 flood lines then (8 full socket buffers), which the
	// server reads and the sink takes in a few hundred ms on an idle
	// machine. 200 ms was not always enough on a busy one: a fresh-clone
	// CI run beside other work dropped all five.
	recovered := floodUntil.Add(time.Second)
	for i := range 8 { // flooders
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial()
			if c == nil {
				return
			}
			defer c.Close()
			line := []byte(fmt.Sprintf(`{"kind":"token","id":"f%d","count":1}`+"\n", i))
			batch := bytes.Repeat(line, 256)
			for time.Now().Before(floodUntil) {
				if _, err := c.Write(batch); err != nil {
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // 10 MB lines and binary garbage, each followed by a good event
		defer wg.Done()
		// After the flood, which may drop (and count) any event while
		// the writer's buffer is full: these must all be kept.
		time.Sleep(time.Until(recovered))
		c := dial()
		if c == nil {
			return
		}
		defer c.Close()
		huge := bytes.Repeat([]byte("x"), 10<<20)
		garbage := make([]byte, 1<<20)
		for i := range garbage {
			garbage[i] = byte(i*7919) | 0x80 // never a newline, never UTF-8
		}
		for i := range 2 {
			c.Write(huge)
			fmt.Fprintf(c, "\n{\"kind\":\"mark\",\"name\":\"after_huge_%d\"}\n", i)
			c.Write(garbage)
			fmt.Fprintf(c, "\n{\"kind\":\"mark\",\"name\":\"after_garbage_%d\"}\n", i)
		}
	}()
	wg.Add(1)
	go func() { // connect and drop, thousands of times
		defer wg.Done()
		for range 2000 {
			if c := dial(); c != nil {
				c.Close()
			}
		}
		time.Sleep(time.Until(recovered))
		if c := dial(); c != nil {
			fmt.Fprintf(c, "{\"kind\":\"mark\",\"name\":\"after_churn\"}\n")
			c.Close()
		}
	}()
	wg.Wait()
	if err := os.WriteFile(doneFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A client still sending after the command exited: the recording
	// ends anyway (the socket's close limit).
	late := dial()
	lateDone := make(chan struct{})
	go func() {
		defer close(lateDone)
		for {
			if _, err := fmt.Fprintf(late, "{\"kind\":\"mark\",\"name\":\"late\"}\n"); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	start := time.Now()
	res, err := <-resC, <-errC
	close(stopHeap)
	late.Close()
	<-lateDone
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("a client that never stops kept the recording %v", took)
	}
	if h := maxHeap.Load(); h > 400<<20 {
		t.Errorf("heap in use reached %d MB", h>>20)
	}
	ev := res.Meta.Events
	if ev.Received != ev.Accepted+ev.Dropped+ev.Bad || ev.Accepted == 0 {
		t.Errorf("events %+v: received must be accepted + dropped + bad", ev)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := trace.ReadTable[trace.Event](run, trace.TableEvents)
	names := map[string]bool{}
	for _, e := range evs {
		if e.Kind == "mark" {
			names[e.Name] = true
		}
	}
	for _, n := range []string{"after_huge_0", "after_huge_1", "after_garbage_0", "after_garbage_1", "after_churn"} {
		if !names[n] {
			t.Errorf("the good event %s, sent among the abuse, was lost (dropped %d)", n, ev.Dropped)
		}
	}
	bad, _ := trace.ReadTable[trace.BadEvent](run, trace.TableBadEvents)
	reasons := map[string]int{}
	for _, b := range bad {
		reasons[b.Reason]++
		if len(b.Raw) > trace.MaxBadEventRaw {
			t.Errorf("a bad line kept whole: %d bytes", len(b.Raw))
		}
	}
	if reasons["oversized"] < 4 { // 2 huge lines and 2 MB lines of garbage
		t.Errorf("bad reasons %v", reasons)
	}
	t.Logf("events %+v, bad reasons %v, heap max %d MB", ev, reasons, maxHeap.Load()>>20)
}
