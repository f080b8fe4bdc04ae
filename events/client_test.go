package events

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// socketPath returns a short socket path: t.TempDir() names can exceed the
// 108-byte limit of Unix socket addresses.
func socketPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "llemev")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// collector is a minimal recorder: it parses every line it receives.
type collector struct {
	ln    net.Listener
	mu    sync.Mutex
	msgs  []Message
	bad   []string
	done  sync.WaitGroup
	lines chan struct{}
	// writes counts the empty lines that start the client's writes.
	writes int
}

func listen(t *testing.T) (*collector, string) {
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{ln: ln, lines: make(chan struct{}, 1<<16)}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.done.Add(1)
			go func() {
				defer c.done.Done()
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					if len(sc.Bytes()) == 0 {
						c.mu.Lock()
						c.writes++ // every write starts with an empty line
						c.mu.Unlock()
						continue // as the recorder skips them
					}
					m, err := Parse(sc.Bytes())
					c.mu.Lock()
					if err != nil {
						c.bad = append(c.bad, sc.Text())
					} else {
						c.msgs = append(c.msgs, m)
					}
					c.mu.Unlock()
					c.lines <- struct{}{}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c, path
}

// wait waits for n lines and returns the messages.
func (c *collector) wait(t *testing.T, n int) []Message {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c.lines:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d lines, want %d", i, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 {
		t.Fatalf("bad lines: %q", c.bad)
	}
	return append([]Message(nil), c.msgs...)
}

func TestDialUnsetIsNoOp(t *testing.T) {
	t.Setenv(EnvVar, "")
	c, err := Dial()
	if err != nil {
		t.Fatal(err)
	}
	if c.Connected() {
		t.Fatal("connected without LLEM_EVENTS")
	}
	for _, err := range []error{c.RequestStart("r"), c.Tokens("r", 3), c.Mark("m", nil), c.Close(), c.Send(Message{})} {
		if err != nil {
			t.Errorf("no-op client returned %v", err)
		}
	}
	c.Phase("p")()

	var nilClient *Client
	if err := nilClient.RequestEnd("r", 1, 2); err != nil || nilClient.Connected() || nilClient.Close() != nil {
		t.Error("nil client is not a no-op")
	}
}

func TestDialFailureGivesNoOpClient(t *testing.T) {
	t.Setenv(EnvVar, filepath.Join(t.TempDir(), "absent"))
	c, err := Dial()
	if err == nil {
		t.Fatal("no error for a missing socket")
	}
	if c == nil || c.Connected() || c.RequestStart("r") != nil {
		t.Fatal("want a usable no-op client after a failed dial")
	}
}

func TestClientSendsEveryKind(t *testing.T) {
	col, path := listen(t)
	t.Setenv(EnvVar, path)
	c, err := Dial()
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixNano()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.RequestStart("r1"))
	must(c.FirstToken("r1"))
	must(c.Tokens("r1", 5))
	must(c.RequestEnd("r1", 10, 6))
	must(c.PhaseStart("warmup"))
	must(c.PhaseEnd("warmup"))
	end := c.Phase("measure")
	end()
	must(c.Mark("loaded", map[string]any{"model": "llama", "layers": 32}))
	must(c.Send(Message{Kind: KindMark, Name: "stamped", TimeNs: 42}))
	must(c.Close())

	got := col.wait(t, 10)
	after := time.Now().UnixNano()
	want := []Message{
		{Kind: KindRequestStart, ID: "r1"},
		{Kind: KindFirstToken, ID: "r1"},
		{Kind: KindToken, ID: "r1", Count: Int(5)},
		{Kind: KindRequestEnd, ID: "r1", InputTokens: Int(10), OutputTokens: Int(6)},
		{Kind: KindPhaseStart, Name: "warmup"},
		{Kind: KindPhaseEnd, Name: "warmup"},
		{Kind: KindPhaseStart, Name: "measure"},
		{Kind: KindPhaseEnd, Name: "measure"},
		{Kind: KindMark, Name: "loaded", Attrs: map[string]any{"model": "llama", "layers": "32"}},
		{Kind: KindMark, Name: "stamped", TimeNs: 42},
	}
	for i := range want {
		g := got[i]
		if i < len(want)-1 && (g.TimeNs < before || g.TimeNs > after) {
			t.Errorf("event %d: ts %d not stamped with the send time", i, g.TimeNs)
		}
		if i < len(want)-1 {
			g.TimeNs = 0
		}
		if g.Attrs != nil { // compare numbers by text
			for k, v := range g.Attrs {
				if n, ok := v.(interface{ String() string }); ok {
					g.Attrs[k] = n.String()
				}
			}
		}
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("event %d\n got %+v\nwant %+v", i, g, want[i])
		}
	}
}

func TestClientConcurrent(t *testing.T) {
	col, path := listen(t)
	c, err := DialPath(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.Tokens("r", 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	// wait fails on any line that interleaved with another.
	if got := col.wait(t, goroutines*each); len(got) != goroutines*each {
		t.Fatalf("got %d events", len(got))
	}
}

// TestClientStuckRecorder checks that a recorder that stops reading costs
// one WriteTimeout, after which sends fail at once instead of blocking.
func TestClientStuckRecorder(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the write timeout")
	}
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept() // accept, then never read
		if err == nil {
			defer conn.Close()
			time.Sleep(10 * time.Second)
		}
	}()
	c, err := DialPath(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	big := map[string]any{"pad": string(make([]byte, 60000))}
	var sendErr error
	for i := 0; i < 10000 && sendErr == nil; i++ {
		sendErr = c.Mark("fill", big)
	}
	if sendErr == nil {
		t.Fatal("sends never failed against a recorder that does not read")
	}
	if d := time.Since(start); d > WriteTimeout+3*time.Second {
		t.Fatalf("failing took %v", d)
	}
	t0 := time.Now()
	if err := c.RequestStart("r"); err == nil || time.Since(t0) > 100*time.Millisecond {
		t.Fatalf("send after failure: %v after %v, want an immediate error", err, time.Since(t0))
	}
	if c.Connected() {
		t.Error("client still connected after a failed write")
	}
}

func TestSendOnce(t *testing.T) {
	t.Setenv(EnvVar, "")
	if err := SendOnce(Message{Kind: KindMark, Name: "x"}); !errors.Is(err, ErrNotRecording) {
		t.Fatalf("SendOnce without LLEM_EVENTS: %v, want ErrNotRecording", err)
	}
	col, path := listen(t)
	t.Setenv(EnvVar, path)
	if err := SendOnce(Message{Kind: KindMark, Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 1); got[0].Name != "x" || got[0].TimeNs == 0 {
		t.Fatalf("got %+v", got[0])
	}
}

// TestClientHoldsTokenLines checks that token lines wait for one write
// (each with the ts of its call) until another event, the byte bound, the
// hold, SetHold, Flush or Close writes them, and that every write starts
// with the protocol's empty line.
func TestClientHoldsTokenLines(t *testing.T) {
	col, path := listen(t)
	c, err := DialPath(path)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	writes := func() int {
		col.mu.Lock()
		defer col.mu.Unlock()
		return col.writes
	}
	must(c.SetHold(time.Hour))
	before := time.Now().UnixNano()
	for range 3 {
		must(c.Tokens("r1", 1))
	}
	sent := time.Now().UnixNano()
	time.Sleep(50 * time.Millisecond)
	if n := len(col.lines); n != 0 {
		t.Fatalf("%d held token lines were written before any other event", n)
	}
	must(c.RequestEnd("r1", 4, 3))
	got := col.wait(t, 4)
	for i, m := range got[:3] {
		if m.Kind != KindToken || m.TimeNs < before || m.TimeNs > sent {
			t.Errorf("line %d: %s at %d, want a token stamped when sent, in [%d, %d]", i, m.Kind, m.TimeNs, before, sent)
		}
	}
	if got[3].Kind != KindRequestEnd || writes() != 1 {
		t.Fatalf("last line %s after %d writes, want request_end in the tokens' one write", got[3].Kind, writes())
	}

	// The byte bound writes them without another call.
	id := strings.Repeat("x", 1000)
	n := 0
	for size := 0; size < holdBytes; size += len(id) + 40 {
		must(c.Tokens(id, 1))
		n++
	}
	col.wait(t, n)
	if writes() != 2 {
		t.Fatalf("%d writes, want 2 (the bound's)", writes())
	}

	// SetHold writes what is held; with 0 every token line goes at once.
	must(c.Tokens("r2", 1))
	must(c.SetHold(0))
	col.wait(t, 1)
	must(c.Tokens("r2", 1))
	col.wait(t, 1)
	if writes() != 4 {
		t.Fatalf("%d writes, want 4", writes())
	}

	// The hold writes them when no call does.
	must(c.SetHold(20 * time.Millisecond))
	must(c.Tokens("r3", 1))
	must(c.Tokens("r3", 1))
	col.wait(t, 2)
	if writes() != 5 {
		t.Fatalf("%d writes, want 5 (the hold's)", writes())
	}

	// Flush and Close write them.
	must(c.SetHold(time.Hour))
	must(c.Tokens("r4", 1))
	must(c.Flush())
	col.wait(t, 1)
	must(c.Tokens("r4", 1))
	must(c.Close())
	col.wait(t, 1)
	if writes() != 7 {
		t.Fatalf("%d writes, want 7", writes())
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.bad) > 0 {
		t.Fatalf("bad lines: %q", col.bad)
	}
}
