package eventsrv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/events"
	"github.com/llem/llem/trace"
)

// socketPath returns a short socket path: t.TempDir() names can exceed the
// 108-byte limit of Unix socket addresses.
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "llemsrv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ev.sock")
}

// counterClock is a fake recorder clock: every reading is 1000 ns later.
func counterClock() func() int64 {
	var n atomic.Int64
	return func() int64 { return n.Add(1000) }
}

func start(t testing.TB, opts Options) *Server {
	if opts.CloseGrace == 0 {
		opts.CloseGrace = 100 * time.Millisecond // the default would make every test wait longer
	}
	s, err := Listen(socketPath(t), counterClock(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// send writes raw bytes on a fresh connection and closes it.
func send(t testing.TB, s *Server, data string) {
	t.Helper()
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

// drain closes the server and returns everything it queued.
func drain(t testing.TB, s *Server) ([]trace.Event, []trace.BadEvent) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return s.Take(nil, nil)
}

// consume takes events as the recorder does, whenever the server says its
// queue is half full and every few ms, until the server is done, passing
// each to fn.
func consume(s *Server, fn func(trace.Event)) {
	var evs []trace.Event
	for {
		done := false
		select {
		case <-s.Ready():
		case <-s.Done():
			done = true
		case <-time.After(5 * time.Millisecond):
		}
		evs, _ = s.Take(evs, nil)
		for _, e := range evs {
			fn(e)
		}
		if done {
			return
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGoodEvents(t *testing.T) {
	s := start(t, Options{})
	send(t, s, `{"kind":"request_start","id":"r1","ts":1700000000000000000}
{"kind":"token","id":"r1","count":3}

{"kind":"request_end","id":"r1","input_tokens":10,"output_tokens":3,"gpu":2}`+"\r\n"+
		`{"kind":"mark","name":"m","zeta":1,"alpha":"<a>","mid":{"b":2,"a":1}}`) // no final newline
	evs, bad := drain(t, s)
	if len(bad) != 0 {
		t.Fatalf("bad events: %+v", bad)
	}
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4", len(evs))
	}
	for i, e := range evs {
		if e.Source != "client" || e.TimestampNs <= 0 || i > 0 && e.TimestampNs < evs[i-1].TimestampNs {
			t.Errorf("event %d: source %q ts %d", i, e.Source, e.TimestampNs)
		}
	}
	e := evs[0]
	if e.Kind != "request_start" || e.RequestID != "r1" || e.GPU != trace.GPUAll ||
		e.ClientTimestampNs == nil || *e.ClientTimestampNs != 1700000000000000000 ||
		e.Count != nil || e.Attrs != "" {
		t.Errorf("request_start: %+v", e)
	}
	if e := evs[1]; e.ClientTimestampNs != nil || e.Count == nil || *e.Count != 3 {
		t.Errorf("token: %+v", e)
	}
	if e := evs[2]; e.GPU != 2 || *e.InputTokens != 10 || *e.OutputTokens != 3 {
		t.Errorf("request_end: %+v", e)
	}
	if e := evs[3]; e.Name != "m" || e.Attrs != `{"alpha":"<a>","mid":{"a":1,"b":2},"zeta":1}` {
		t.Errorf("mark: %+v", e)
	}
	st := s.Stats()
	want := trace.EventStats{Socket: s.Path(), Received: 4, Accepted: 4}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

// TestBadReasons sends one line per rejection reason through the server.
func TestBadReasons(t *testing.T) {
	s := start(t, Options{MaxLineBytes: 200})
	lines := []struct{ line, reason string }{
		{"{\"kind\":\"mark\",\"name\":\"\xff\"}", "invalid_utf8"},
		{`{"kind":`, "invalid_json"},
		{`[]`, "not_object"},
		{`{"name":"x"}`, "missing_field:kind"},
		{`{"kind":"nope"}`, "unknown_kind"},
		{`{"kind":"mark"}`, "missing_field:name"},
		{`{"kind":"request_end"}`, "missing_field:id"},
		{`{"kind":"token","id":"r","count":"1"}`, "bad_type:count"},
		{`{"kind":"token","id":"r","count":0}`, "bad_value:count"},
		{`{"kind":"mark","name":"x","pad":"` + strings.Repeat("a", 300) + `"}`, "oversized"},
		{strings.Repeat("b", 10000), "oversized"}, // longer than the reader's buffer too
	}
	var all strings.Builder
	for _, l := range lines {
		all.WriteString(l.line + "\n")
	}
	all.WriteString(`{"kind":"mark","name":"after"}` + "\n")
	send(t, s, all.String())
	evs, bad := drain(t, s)
	if len(evs) != 1 || evs[0].Name != "after" {
		t.Fatalf("good events %+v: the line after the oversized ones was lost", evs)
	}
	if len(bad) != len(lines) {
		t.Fatalf("got %d bad events, want %d", len(bad), len(lines))
	}
	for i, l := range lines {
		b := bad[i]
		if b.Reason != l.reason {
			t.Errorf("line %d: reason %q, want %q", i, b.Reason, l.reason)
		}
		wantRaw := []byte(l.line)[:min(len(l.line), trace.MaxBadEventRaw)]
		if !bytes.Equal(b.Raw, wantRaw) {
			t.Errorf("line %d: raw %q, want %q", i, b.Raw[:min(len(b.Raw), 60)], wantRaw[:min(len(wantRaw), 60)])
		}
		if b.TimestampNs == 0 {
			t.Errorf("line %d: no arrival stamp", i)
		}
	}
	st := s.Stats()
	if st.Received != int64(len(lines)+1) || st.Bad != int64(len(lines)) || st.BadKept != st.Bad || st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestLongLinesWithinLimit(t *testing.T) {
	s := start(t, Options{}) // 64 KiB
	pad := strings.Repeat("x", DefaultMaxLineBytes-100)
	good := `{"kind":"mark","name":"big","pad":"` + pad + `"}`
	exact := `{"kind":"mark","name":"exact","p":"` + strings.Repeat("y", DefaultMaxLineBytes-len(`{"kind":"mark","name":"exact","p":""}`)) + `"}`
	over := exact[:len(exact)-2] + `y"}`
	send(t, s, good+"\n"+exact+"\n"+over+"\n")
	evs, bad := drain(t, s)
	if len(exact) != DefaultMaxLineBytes || len(evs) != 2 || evs[0].Name != "big" || evs[1].Name != "exact" {
		t.Fatalf("got %d events, len(exact)=%d", len(evs), len(exact))
	}
	if len(bad) != 1 || bad[0].Reason != "oversized" || len(bad[0].Raw) != trace.MaxBadEventRaw {
		t.Fatalf("bad %+v", bad)
	}
}

func TestMaxBadKept(t *testing.T) {
	s := start(t, Options{MaxBadKept: 5})
	send(t, s, strings.Repeat("junk\n", 20))
	_, bad := drain(t, s)
	st := s.Stats()
	if len(bad) != 5 || st.Bad != 20 || st.BadKept != 5 || st.Received != 20 {
		t.Fatalf("kept %d, stats %+v", len(bad), st)
	}
}

func TestDropWhenConsumerIsSlow(t *testing.T) {
	s := start(t, Options{Buffer: 10})
	send(t, s, strings.Repeat(`{"kind":"token","id":"r"}`+"\n", 100)) // nobody reads Events yet
	evs, _ := drain(t, s)
	st := s.Stats()
	if len(evs) != 10 || st.Accepted != 10 || st.Dropped != 90 || st.Received != 100 {
		t.Fatalf("delivered %d, stats %+v", len(evs), st)
	}
}

func TestConcurrentClients(t *testing.T) {
	s := start(t, Options{})
	const clients, each = 8, 2000
	got := make(chan map[string][]int64)
	go func() {
		seen := map[string][]int64{}
		consume(s, func(e trace.Event) {
			seen[e.RequestID] = append(seen[e.RequestID], *e.Count)
		})
		got <- seen
	}()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := events.DialPath(s.Path())
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 1; i <= each; i++ {
				if err := cl.Tokens(fmt.Sprint("c", c), int64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	seen := <-got
	for c := 0; c < clients; c++ {
		counts := seen[fmt.Sprint("c", c)]
		if len(counts) != each {
			t.Fatalf("client %d: %d events, want %d", c, len(counts), each)
		}
		for i, n := range counts {
			if n != int64(i+1) { // one connection's events keep their order
				t.Fatalf("client %d: event %d has count %d", c, i, n)
			}
		}
	}
	if st := s.Stats(); st.Received != clients*each || st.Accepted != st.Received {
		t.Fatalf("stats %+v", st)
	}
}

func TestPathTooLong(t *testing.T) {
	path := "/tmp/" + strings.Repeat("d", 120) + "/ev.sock"
	_, err := Listen(path, nil, Options{})
	if !errors.Is(err, ErrPathTooLong) || !strings.Contains(err.Error(), "107") {
		t.Fatalf("err = %v, want ErrPathTooLong naming the limit", err)
	}
	// 107 bytes is the longest path that works.
	dir, err := os.MkdirTemp("", "llemsrv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path = filepath.Join(dir, strings.Repeat("s", MaxSocketPath-len(dir)-1))
	s, err := Listen(path, nil, Options{})
	if err != nil {
		t.Fatalf("a %d-byte path: %v", len(path), err)
	}
	s.Close()
}

func TestListenErrors(t *testing.T) {
	s := start(t, Options{})
	if _, err := Listen(s.Path(), nil, Options{}); err == nil {
		t.Error("a second server on the same path started")
	}
	if _, err := Listen("/nonexistent-dir/ev.sock", nil, Options{}); err == nil {
		t.Error("listening in a missing directory worked")
	}
}

func TestClose(t *testing.T) {
	s := start(t, Options{CloseGrace: 50 * time.Millisecond})
	// A connection left open and silent (a lingering child) must not hold
	// Close beyond the grace; what it sent before must still arrive.
	idle, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := idle.Write([]byte(`{"kind":"mark","name":"before_close"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed")
	}
	if evs, bad := s.Take(nil, nil); len(evs) != 1 || evs[0].Name != "before_close" || len(bad) != 0 {
		t.Fatalf("events sent before Close: %+v, bad %+v", evs, bad)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
	if _, err := net.Dial("unix", s.Path()); err == nil {
		t.Fatal("connected after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCloseReadsWhileDelivering: Close must not cut a connection that is
// still delivering lines (a backlog on a busy machine), only a silent one,
// and must stop one that never goes quiet at CloseLimit.
func TestCloseReadsWhileDelivering(t *testing.T) {
	// A generous grace: the sender below must not look silent because a
	// loaded CI machine under -race starved it for a while.
	const grace = 250 * time.Millisecond
	const limit = 1500 * time.Millisecond
	s := start(t, Options{CloseGrace: grace, CloseLimit: limit})
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A sender that writes a line every grace/6, long past the grace, and
	// then forever, until its writes fail because the server cut it.
	sent := make(chan int)
	go func() {
		n := 0
		for {
			_, err := conn.Write([]byte(`{"kind":"mark","name":"m"}` + "\n"))
			if err != nil {
				break
			}
			n++
			time.Sleep(20 * time.Millisecond)
		}
		sent <- n
	}()
	time.Sleep(2 * grace)
	var got int
	done := make(chan struct{})
	go func() {
		consume(s, func(trace.Event) { got++ })
		close(done)
	}()
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	<-done
	if took < limit/2 {
		t.Errorf("Close took %v: it cut a connection still delivering before CloseLimit %v", took, limit)
	}
	if took > limit+2*time.Second {
		t.Errorf("Close took %v, CloseLimit is %v", took, limit)
	}
	// Lines read before the cut arrived; at least those sent in the first
	// 2*grace+limit*0.9 (a lower bound on a slow machine is loose: 10).
	if got < 10 {
		t.Errorf("only %d events read from a connection delivering throughout Close", got)
	}
	st := s.Stats()
	if st.Received != st.Accepted+st.Dropped+st.Bad || int64(got) != st.Accepted {
		t.Errorf("stats %+v, consumed %d", st, got)
	}
	conn.Close()
	<-sent
}

// FuzzReadLines feeds arbitrary byte streams through the server's line
// handling: it must not panic, and every line must be counted once.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte(`{"kind":"mark","name":"x"}` + "\n" + `{"kind":"token","id":"r"}`))
	f.Add([]byte("junk\n\n\r\n" + strings.Repeat("z", 100) + "\n{\"kind\":\"mark\",\"name\":\"a\",\"b\":[1]}\n"))
	f.Add([]byte("\xff\xfe\n{}\n[]\nnull\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{MaxLineBytes: 64, Buffer: 4, MaxBadKept: 3}
		opts.setDefaults()
		s := &Server{now: counterClock(), opts: opts, ready: make(chan struct{}, 1)}
		s.readLines(newLineBuffer(s.now, 0), bytes.NewReader(data))
		st := s.Stats()
		if st.Received != st.Accepted+st.Dropped+st.Bad {
			t.Fatalf("stats don't add up: %+v", st)
		}
		evs, bad := s.Take(nil, nil)
		if st.BadKept > 3 || int(st.BadKept) != len(bad) || int(st.Accepted) != len(evs) {
			t.Fatalf("stats %+v, %d bad and %d events delivered", st, len(bad), len(evs))
		}
		// Every non-blank line is counted exactly once.
		lines := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 || len(l) > opts.MaxLineBytes {
				lines++
			}
		}
		if st.Received != int64(lines) {
			t.Fatalf("received %d, want %d lines", st.Received, lines)
		}
		for _, b := range bad {
			if len(b.Raw) > trace.MaxBadEventRaw {
				t.Fatalf("raw of %d bytes kept", len(b.Raw))
			}
		}
	})
}

// In a job every event of a task's socket carries the task's number; a
// plain recording leaves it null.
func TestTaskStampedOnEvents(t *testing.T) {
	task := int32(5)
	for _, tc := range []struct {
		task *int32
		want string
	}{{&task, "5"}, {nil, "null"}} {
		s := start(t, Options{Task: tc.task})
		send(t, s, `{"kind":"mark","name":"a"}`+"\n"+`{"kind":"request_start","id":"r1"}`+"\n")
		evs, _ := drain(t, s)
		if len(evs) != 2 {
			t.Fatalf("got %d events, want 2", len(evs))
		}
		for _, e := range evs {
			got := "null"
			if e.Task != nil {
				got = fmt.Sprint(*e.Task)
			}
			if got != tc.want {
				t.Errorf("event %s: task %s, want %s", e.Kind, got, tc.want)
			}
		}
	}
}

// chunks is a reader that returns one chunk per Read.
type chunks [][]byte

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if len((*c)[0]) == 0 {
		*c = (*c)[1:]
	}
	return n, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestStamps: an event is stamped with its client time moved onto the
// recorder's clock when that lies in the window in which its line arrived,
// with the nearer edge of the window otherwise, and with its read's time
// when it has no client time; and never before the line sent before it.
func TestStamps(t *testing.T) {
	// The recorder's clock reads 1000, 2000, ... at each read; the wall
	// clock is 5,000,000 ahead of it.
	var clock int64
	now := func() int64 { return clock }
	wall := func() int64 { return clock + 5_000_000 }
	src := chunks{
		[]byte(`{"kind":"mark","name":"a","ts":5000500}` + "\n"), // read at 1000, window (100, 1000]: 500
		[]byte(`{"kind":"mark","name":"b","ts":5001500}` + "\n"), // read at 2000, window (1000, 2000]: 1500
		[]byte(`{"kind":"mark","name":"c","ts":5009000}` + "\n"), // read at 3000: later than the read, so 3000
		[]byte(`{"kind":"mark","name":"d","ts":1}` + "\n"),       // read at 4000: before the window, so 3000, and after c: 3001
		[]byte(`{"kind":"mark","name":"e"}` + "\n"),              // no ts: its read, 5000
		[]byte(`{"kind":"mark","name":"f","x":1,"ts":5005500}`),  // through Parse: 5500 of (5000, 6000]
	}
	opts := Options{}
	opts.setDefaults()
	s := &Server{now: now, opts: opts, ready: make(chan struct{}, 1)}
	// Each read takes 1000 ns of the recorder's clock.
	timed := readerFunc(func(p []byte) (int, error) { clock += 1000; return src.Read(p) })
	lb := newLineBuffer(now, 100)
	lb.sr.wall = wall
	lb.sr.hold = 0 // TestStampsOfHeldLines widens the window
	s.readLines(lb, timed)
	batch, _ := s.Take(nil, nil)
	want := map[string]int64{"a": 500, "b": 1500, "c": 3000, "d": 3001, "e": 5000, "f": 5500}
	if len(batch) != len(want) {
		t.Fatalf("got %d events: %+v", len(batch), batch)
	}
	for _, e := range batch {
		if e.TimestampNs != want[e.Name] {
			t.Errorf("event %s stamped %d, want %d", e.Name, e.TimestampNs, want[e.Name])
		}
	}
}

// TestStampsOfHeldLines: a client may hold lines before writing them
// (the Python client writes 100 ms of token lines at once), so a ts up to
// the hold before the read window is kept, and one older than that is
// moved to the hold's edge, but never to before the connection was
// accepted.
func TestStampsOfHeldLines(t *testing.T) {
	var clock int64
	now := func() int64 { return clock }
	wall := func() int64 { return clock + 5_000_000 }
	src := chunks{
		// Read at 1000, window (100, 1000], held up to 2000 before it:
		[]byte(`{"kind":"token","id":"r","ts":4990000}` + "\n" + // -10000: held too long, so -1900 (accepted at -3000)
			`{"kind":"token","id":"r","ts":4999500}` + "\n" + // -500: kept
			`{"kind":"token","id":"r","ts":5000500}` + "\n"), // 500: in the window
		// Read at 10000, window (1000, 10000]:
		[]byte(`{"kind":"token","id":"r","ts":5000800}` + "\n" + // 800: kept, though not after the last read
			`{"kind":"token","id":"r","ts":5009000}` + "\n"), // 9000: in the window
	}
	opts := Options{}
	opts.setDefaults()
	s := &Server{now: now, opts: opts, ready: make(chan struct{}, 1)}
	steps := []int64{1000, 9000}
	timed := readerFunc(func(p []byte) (int, error) {
		if len(steps) > 0 {
			clock += steps[0]
			steps = steps[1:]
		}
		return src.Read(p)
	})
	lb := newLineBuffer(now, -3000)
	lb.sr.wall = wall
	lb.sr.lo = 100
	lb.sr.hold = 2000
	s.readLines(lb, timed)
	batch, _ := s.Take(nil, nil)
	var got []int64
	for _, e := range batch {
		got = append(got, e.TimestampNs)
	}
	want := []int64{-1900, -500, 500, 800, 9000}
	if !slices.Equal(got, want) {
		t.Fatalf("stamps %v, want %v", got, want)
	}

	// Accepted at 100, the first read's window begins there too.
	clock = 0
	src = chunks{[]byte(`{"kind":"token","id":"r","ts":4999000}` + "\n")} // -1000: before the connection, so 100
	steps = []int64{1000}
	lb = newLineBuffer(now, 100)
	lb.sr.wall = wall
	lb.sr.hold = 2000
	s.readLines(lb, timed)
	if batch, _ = s.Take(nil, nil); len(batch) != 1 || batch[0].TimestampNs != 100 {
		t.Fatalf("a line from before the connection: %+v", batch)
	}
}

// servedConn is a server with opts (defaults filled in) and one
// connection of it as serve keeps it, over a socket pair closed when the
// test ends; client is the client's end.
func servedConn(t *testing.T, opts Options) (s *Server, c *conn, client int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	opts.setDefaults()
	s = &Server{now: counterClock(), opts: opts, ready: make(chan struct{}, 1)}
	return s, &conn{fd: fds[0], lines: newLineBuffer(s.now, 0), readable: true}, fds[1]
}

// TestMarkedWritesReadOnTicks: writes that start with an empty line (the
// Python client's) are counted; a client that holds its lines and writes
// them together is then read on the shared ticks, not at every write.
func TestMarkedWritesReadOnTicks(t *testing.T) {
	s, c, client := servedConn(t, Options{})
	opts := s.opts
	line := `{"kind":"token","id":"h","count":1}` + "\n"
	write := "\n" + strings.Repeat(line, 100) // ~3.6 KB: over readTarget
	for i := range 2 {
		if _, err := unix.Write(client, []byte(write+write)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			c.lastRead = time.Now().Add(-100 * time.Millisecond) // two writes in 100 ms
		}
		c.readable = true
		if !s.service(c, time.Now(), false, time.Time{}) {
			t.Fatal("connection closed")
		}
		c.next = time.Time{}
	}
	if c.lastMarks != 2 {
		t.Errorf("counted %d writes in the last read, want 2", c.lastMarks)
	}
	if c.lines.marks != 0 {
		t.Errorf("marks not taken by the read: %d left", c.lines.marks)
	}
	// ~9 KB charged in 100 ms: 350 ms to reach chargeTarget, so the next
	// tick; unmarked, 7 KB over readTarget would halve the pause (50 ms).
	if d := c.pause(opts.ReadEvery, time.Unix(0, 0)); d != opts.ReadEvery {
		t.Errorf("pause %v, want the next tick (%v)", d, opts.ReadEvery)
	}
	batch, _ := s.Take(nil, nil)
	if len(batch) != 400 {
		t.Errorf("%d events, want 400 (the empty lines are not events)", len(batch))
	}
	if st := s.Stats(); st.Received != 400 || st.Bad != 0 {
		t.Errorf("stats %+v", st)
	}
	// Only an empty line is a mark: not "\r\n", not " \n", not the
	// newline that ends a line split across reads; the empty line after
	// it is.
	lb := newLineBuffer(s.now, 0)
	for _, chunk := range []string{"\r\n", `{"kind":"mark","name":"a"`, "\n\n", " \n"} {
		n := copy(lb.space(), chunk)
		s.filled(lb, n, n+1)
	}
	if lb.marks != 1 {
		t.Errorf("%d marks, want 1", lb.marks)
	}
}

// TestPause: a busy connection is read again before it can have queued
// more than readTarget bytes at its current rate (a client whose writes
// block would otherwise be throttled), and never later than the next tick;
// a pause shorter than that ends on the finer grid (ReadEvery/8) where it
// can, so that fast connections wake together.
func TestPause(t *testing.T) {
	opts := Options{}
	opts.setDefaults()      // ReadEvery 200 ms: a grid of 25 ms
	tick := time.Unix(0, 0) // on a tick: the next one is a whole ReadEvery away
	cases := []struct {
		lastN   int
		lastGap time.Duration
		want    time.Duration
	}{
		{0, 0, 10 * time.Millisecond},                                     // first read: no rate known
		{readTarget / 10, 100 * time.Millisecond, 200 * time.Millisecond}, // slow: to the next tick
		{readTarget / 2, 20 * time.Millisecond, 25 * time.Millisecond},    // 40 ms to queue readTarget: the grid point before
		{readTarget, 20 * time.Millisecond, 10 * time.Millisecond},        // may have blocked: halve (under a grid step)
		{10 * readTarget, 4 * time.Millisecond, 2 * time.Millisecond},
	}
	for _, c := range cases {
		r := &conn{lastN: c.lastN, lastGap: c.lastGap}
		if got := r.pause(opts.ReadEvery, tick); got != c.want {
			t.Errorf("after %d bytes in %v: pause %v, want %v", c.lastN, c.lastGap, got, c.want)
		}
	}
	// A client that marks its writes (an empty line each) is paced by
	// what its writes charge its send buffer, not by readTarget bytes.
	marked := []struct {
		lastN, marks int
		lastGap      time.Duration
		want         time.Duration
	}{
		{12 << 10, 1, 100 * time.Millisecond, 200 * time.Millisecond},                 // a held write of 12 KiB: to the next tick
		{20 << 10, 2, 100 * time.Millisecond, 125 * time.Millisecond},                 // 22 KiB charged in 100 ms: 145 ms, on the grid
		{readTarget, 30, 20 * time.Millisecond, 10 * time.Millisecond},                // 30 one-line writes: 32 KiB charged, may have blocked
		{chargeTarget - writeCharge, 1, 50 * time.Millisecond, 25 * time.Millisecond}, // just under the target: 50 ms, on the grid
	}
	for _, c := range marked {
		r := &conn{lastN: c.lastN, lastGap: c.lastGap, lastMarks: c.marks}
		if got := r.pause(opts.ReadEvery, tick); got != c.want {
			t.Errorf("after %d bytes in %d marked writes in %v: pause %v, want %v", c.lastN, c.marks, c.lastGap, got, c.want)
		}
	}
	r := &conn{}
	if got := r.pause(opts.ReadEvery, tick.Add(30*time.Millisecond)); got != 10*time.Millisecond {
		t.Errorf("first pause %v", got)
	}
	r = &conn{lastN: 1, lastGap: time.Second}
	if got := r.pause(opts.ReadEvery, tick.Add(30*time.Millisecond)); got != 170*time.Millisecond {
		t.Errorf("slow connection: pause %v, want the 170 ms to the next tick", got)
	}
	// Connections of different rates, read at different moments, wake on
	// the grid, never later than their rate allows.
	grid := opts.ReadEvery / 8
	for _, at := range []time.Duration{3 * time.Millisecond, 7 * time.Millisecond, 61 * time.Millisecond} {
		for _, gap := range []time.Duration{30 * time.Millisecond, 45 * time.Millisecond, 80 * time.Millisecond} {
			r := &conn{lastN: readTarget / 2, lastGap: gap} // may wait 2 x gap
			now := tick.Add(at)
			d := r.pause(opts.ReadEvery, now)
			if d > 2*gap || (now.UnixNano()+int64(d))%int64(grid) != 0 {
				t.Errorf("read at %v, %d bytes in %v: pause %v ends off the %v grid or too late", at, readTarget/2, gap, d, grid)
			}
		}
	}
}

// Two lines sent 1 ns apart and read by two reads whose clock offsets
// differ by a few microseconds (a reader preempted between its clock
// reads) keep their order and spacing; a step of the wall clock is
// followed.
func TestStampsKeepOrderUnderClockJitter(t *testing.T) {
	var clock, wallAhead int64 = 0, 5_000_000_000
	now := func() int64 { return clock }
	wall := func() int64 { return clock + wallAhead }
	const sent = 5_000_000_000 + 10_000_000 // the token's client stamp: recorder time 10 ms
	src := chunks{
		[]byte(fmt.Sprintf(`{"kind":"token","id":"r","count":1,"ts":%d}`+"\n", sent)),
		[]byte(fmt.Sprintf(`{"kind":"request_end","id":"r","ts":%d}`+"\n", sent+1)),
		// Sent at recorder time 30 ms, on the wall clock as it is after the step.
		[]byte(fmt.Sprintf(`{"kind":"mark","name":"after_step","ts":%d}`+"\n", 5_000_000_000+3_000+1_000_000_000+30_000_000)),
	}
	reads := 0
	timed := readerFunc(func(p []byte) (int, error) {
		reads++
		switch reads {
		case 1:
			clock = 10_000_000
		case 2:
			clock, wallAhead = 10_000_200, wallAhead+3_000 // the wall read 3 us late: jitter
		case 3:
			clock, wallAhead = 40_000_000, wallAhead+1_000_000_000 // the wall clock stepped 1 s
		}
		return src.Read(p)
	})
	opts := Options{}
	opts.setDefaults()
	s := &Server{now: now, opts: opts, ready: make(chan struct{}, 1)}
	lb := newLineBuffer(now, 0)
	lb.sr.wall = wall
	s.readLines(lb, timed)
	batch, _ := s.Take(nil, nil)
	if len(batch) != 3 {
		t.Fatalf("got %d events", len(batch))
	}
	tok, end, step := batch[0].TimestampNs, batch[1].TimestampNs, batch[2].TimestampNs
	if tok != 10_000_000 || end != tok+1 {
		t.Errorf("token %d, end %d: want 10000000 and 1 ns later", tok, end)
	}
	if step != 30_000_000 {
		t.Errorf("after the wall clock's step: stamped %d, want 30000000", step)
	}
}

// One goroutine serves every connection: the server's goroutines do not
// grow with its clients (each reader of its own woke the scheduler at
// every tick), and a line on any of many quiet connections is still read.
func TestOneReaderForAllConnections(t *testing.T) {
	s := start(t, Options{})
	base := runtime.NumGoroutine()
	const clients = 64
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		if _, err := fmt.Fprintf(c, `{"kind":"mark","name":"m%d"}`+"\n", i); err != nil {
			t.Fatal(err)
		}
	}
	// Every connection has been accepted and read once its line is in.
	var got []trace.Event
	waitFor(t, func() bool {
		evs, _ := s.Take(nil, nil)
		got = append(got, evs...)
		return len(got) == clients
	})
	if n := runtime.NumGoroutine(); n > base+2 {
		t.Errorf("%d goroutines with %d connections open, %d before them", n, clients, base)
	}
}

// A connection that floods does not keep the others waiting: serve
// turns to them after maxReadsPerTurn full buffers, leaving the flooding
// one due again at once.
func TestFloodYieldsTurn(t *testing.T) {
	s, c, client := servedConn(t, Options{Buffer: 1 << 20})
	// As much as the kernel lets one peer queue (twice wmem_max).
	unix.SetsockoptInt(client, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	line := []byte(`{"kind":"token","id":"f","count":1}` + "\n")
	chunk := bytes.Repeat(line, 1000)
	queued := 0
	for {
		n, err := unix.Write(client, chunk)
		if err != nil {
			break
		}
		queued += n
	}
	if queued <= maxReadsPerTurn*readBuffer {
		t.Skipf("the kernel queues only %d bytes on a socket: a turn reads them all", queued)
	}
	before := time.Now()
	if !s.service(c, before, false, time.Time{}) {
		t.Fatal("connection closed")
	}
	left, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	if read := queued - left; read > maxReadsPerTurn*readBuffer || left == 0 {
		t.Fatalf("one turn read %d of %d bytes queued, at most %d", read, queued, maxReadsPerTurn*readBuffer)
	}
	if c.next.IsZero() || c.next.After(time.Now()) || c.next.Before(before) {
		t.Fatalf("after its turn the flooding connection is next read at %v, want at once (%v)", c.next, before)
	}
}

// readLines reads r to its end through lb, as serve reads a
// connection but from any reader.
func (s *Server) readLines(lb *lineBuffer, r io.Reader) {
	for {
		p := lb.space()
		n, err := r.Read(p)
		if n > 0 {
			s.filled(lb, n, len(p))
		}
		if err != nil {
			s.ended(lb)
			return
		}
	}
}
