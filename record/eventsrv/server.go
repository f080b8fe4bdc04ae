// Package eventsrv is the recorder's end of the LLEM_EVENTS socket: it
// accepts client connections, parses their lines (events.ScanSimple, else
// events.Parse) and queues trace rows for the recorder, which takes them in
// batches (Take).
//
// The server must never slow down or break the run it measures: it never
// blocks a reader on a slow consumer (events are dropped and counted
// instead), never holds more than a bounded amount of memory, and never
// panics on what a client sends.
//
// It must also cost the machine as little as possible at serving rates
// (tens of thousands of token events a second). Waking a reader for every
// line cost ~50 us of CPU per event, almost all of it in the scheduler and
// the system calls rather than in parsing. So a busy connection is read in
// batches: after a read that emptied the socket, it is read again at the
// next multiple of ReadEvery (all connections on the same ticks), or
// sooner for a fast connection, which must be read before its client's
// writes block (conn.pause; on a finer grid of ticks, so that fast
// connections are due together too); each read then takes whatever
// arrived meanwhile. A quiet connection is read as soon as a line comes.
// One goroutine serves every connection (serve), so a tick is one wake-up
// of the process however many clients there are. The cost per event then
// falls with the rate instead of being one wake-up each.
//
// Batching must not blur when an event happened: see stamper.
package eventsrv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/events"
	"github.com/llem/llem/trace"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxLineBytes = 64 << 10
	DefaultBuffer       = 65536
	DefaultMaxBadKept   = 10000
	DefaultCloseGrace   = 250 * time.Millisecond
	DefaultCloseLimit   = 5 * time.Second
	// DefaultReadEvery: 200 ms (100 ms before 2026-12-05) halves the
	// wake-ups at low rates; stamps do not depend on it (stampedReader).
	DefaultReadEvery = 200 * time.Millisecond
)

// MaxSocketPath is the longest socket path the kernel accepts: sun_path is
// 108 bytes on Linux, including the terminating NUL.
const MaxSocketPath = 107

// ErrPathTooLong is wrapped by Listen's error when the path does not fit a
// Unix socket address; the caller can then use a shorter directory.
var ErrPathTooLong = errors.New("socket path too long")

// Options tune the server. Zero values take the defaults.
type Options struct {
	// MaxLineBytes bounds one line, newline excluded. A longer line is
	// discarded up to its newline and counted bad ("oversized").
	MaxLineBytes int
	// Buffer bounds the events queued for Take. When it is full, new
	// events are dropped and counted rather than blocking the client.
	Buffer int
	// MaxBadKept bounds how many bad lines are kept for Take;
	// all of them are counted.
	MaxBadKept int
	// CloseGrace is how long Close keeps accepting new connections, and
	// how long a connection may stay silent before Close cuts it, so that
	// events already sent are not lost; Close always takes at least this
	// long.
	CloseGrace time.Duration
	// CloseLimit bounds how long Close keeps reading a connection that is
	// still delivering lines (a backlog in the kernel buffer on a busy
	// machine, or a client that never stops sending).
	CloseLimit time.Duration
	// Task, when set, is stored with every accepted event: the job task
	// (Slurm's SLURM_PROCID) whose command owns the socket.
	Task *int32
	// ReadEvery is the longest pause between two reads of a busy
	// connection (see the package doc; a fast one is read more often);
	// negative reads at once.
	ReadEvery time.Duration
	// OnPhase, if not nil, is called when a phase_start or phase_end
	// event is accepted, from the connection's reader: it must not block.
	// The recorder reads the energy counter then, so that the windows the
	// client marks begin and end on a counter read.
	OnPhase func()
}

func (o *Options) setDefaults() {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.MaxBadKept <= 0 {
		o.MaxBadKept = DefaultMaxBadKept
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = DefaultCloseGrace
	}
	if o.CloseLimit < o.CloseGrace {
		o.CloseLimit = max(DefaultCloseLimit, o.CloseGrace)
	}
	if o.ReadEvery == 0 {
		o.ReadEvery = DefaultReadEvery
	}
}

// Server receives client events on a Unix socket.
type Server struct {
	path string
	now  func() int64
	opts Options
	ln   *net.UnixListener

	// Accepted events and kept bad lines wait here for Take. The queue
	// never holds more than Buffer events; bad lines are bounded by
	// MaxBadKept over the whole run.
	qmu      sync.Mutex
	queue    []trace.Event
	badQueue []trace.BadEvent
	ready    chan struct{} // signalled when the queue is half full
	done     chan struct{} // closed once every reader has stopped

	received, accepted, badCount, badKept, dropped atomic.Int64

	mu            sync.Mutex
	pending       []accepted // connections accepted and not yet taken by serve
	accepting     bool       // the accept loop runs
	wakeFD        int        // an eventfd: writing it wakes serve (a new connection, Close)
	closing       bool
	closeDeadline time.Time      // set by Close: when accepting stops and a silent connection is cut
	closeLimit    time.Time      // set by Close: when every connection is cut
	readers       sync.WaitGroup // the accept loop and serve

	closeOnce sync.Once
	closeErr  error
}

// Listen creates the socket at path, readable and writable by the
// recording user only (mode 0600), and starts accepting connections. now
// stamps each line's arrival (nanoseconds since the Unix epoch on the
// recorder's clock); nil means time.Now. The path must not exist.
func Listen(path string, now func() int64, opts Options) (*Server, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("event socket %s: %w (%d bytes; Unix sockets allow at most %d)",
			path, ErrPathTooLong, len(path), MaxSocketPath)
	}
	if now == nil {
		now = func() int64 { return time.Now().UnixNano() }
	}
	opts.setDefaults()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("event socket: %w", err)
	}
	// bind(2) creates the socket with the process umask; tighten it at once
	// so other users cannot write events into the run. (Changing the umask
	// instead would race with files other goroutines create.) Connections
	// made in the instant before the chmod are caught by the peer check.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("event socket: %w", err)
	}
	s := &Server{
		path:  path,
		now:   now,
		opts:  opts,
		ln:    ln,
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
		// The accept loop is started below.
		accepting: true,
	}
	if s.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("event socket: %w", err)
	}
	p, err := newPoller(s.wakeFD)
	if err != nil {
		unix.Close(s.wakeFD)
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("event socket: %w", err)
	}
	s.readers.Add(2)
	go s.acceptLoop()
	go s.serve(p)
	return s, nil
}

// Path is the socket's path, the value for LLEM_EVENTS.
func (s *Server) Path() string { return s.path }

// Take returns the events queued since the last Take, in arrival order
// per connection, and the rejected lines among the first MaxBadKept. The
// server goes on queueing into spare and spareBad (emptied first), so a
// caller that hands back the slices of the previous Take allocates
// nothing. Once Done is closed, a Take returns everything that is left.
func (s *Server) Take(spare []trace.Event, spareBad []trace.BadEvent) ([]trace.Event, []trace.BadEvent) {
	clear(spare) // drop references so the collector can free them
	clear(spareBad)
	s.qmu.Lock()
	evs, bad := s.queue, s.badQueue
	s.queue, s.badQueue = spare[:0], spareBad[:0]
	s.qmu.Unlock()
	return evs, bad
}

// Ready is signalled when the queue is half full: take it soon, or new
// events will be dropped.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Done is closed by Close once every reader has stopped: nothing more will
// be queued.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stats counts lines so far. Received = Accepted + Dropped + Bad once the
// server is closed (while it runs a line may be between counters).
func (s *Server) Stats() trace.EventStats {
	return trace.EventStats{
		Socket:   s.path,
		Received: s.received.Load(),
		Accepted: s.accepted.Load(),
		Bad:      s.badCount.Load(),
		BadKept:  s.badKept.Load(),
		Dropped:  s.dropped.Load(),
	}
}

// Close ends the server. For CloseGrace it still accepts connections
// already made (a client that wrote and exited may not have been accepted
// yet). Open connections may deliver what they sent: one is cut once it has
// been silent for CloseGrace, or at the latest after CloseLimit. Then Close
// waits for every reader, closes Done and removes the socket file.
// It always takes at least CloseGrace. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		// A client that exited has closed its end: its reader drains the
		// kernel buffer and stops at EOF. On a loaded machine that drain
		// can outlast the grace, so a connection is cut only once it has
		// been silent for CloseGrace (serve), or past CloseLimit.
		now := time.Now()
		s.closeDeadline = now.Add(s.opts.CloseGrace)
		s.closeLimit = now.Add(s.opts.CloseLimit)
		s.ln.SetDeadline(s.closeDeadline)
		s.mu.Unlock()
		s.wake() // serve starts counting the grace of quiet connections

		s.readers.Wait()
		s.closeErr = s.ln.Close()
		unix.Close(s.wakeFD) // after serve and the accept loop, the only writers
		close(s.done)
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// accepted is a connection handed from the accept loop to serve.
type accepted struct {
	fd int   // the connection's own descriptor (detach)
	at int64 // when it was accepted, on the recorder's clock
}

func (s *Server) acceptLoop() {
	defer func() {
		s.mu.Lock()
		s.accepting = false
		s.mu.Unlock()
		s.wake() // serve may stop once the connections it has are done
		s.readers.Done()
	}()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return // the Close deadline passed
			}
			// EMFILE and the like: back off rather than spin, and keep
			// serving the connections already open.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !peerAllowed(conn) {
			conn.Close()
			continue
		}
		// serve reads its own copy of the socket, outside Go's network
		// poller (serve says why).
		fd, err := detach(conn)
		if err != nil {
			continue
		}
		at := s.now()
		s.mu.Lock()
		s.pending = append(s.pending, accepted{fd, at})
		s.mu.Unlock()
		s.wake()
	}
}

// stamper notes when each read of a connection returned, on the
// recorder's clock, and so the window in which the bytes it returned
// arrived: after the last read that left the source empty (or the
// connection's acceptance), and before this read returned.
//
// An event is stamped with the client's own time stamp (ts, the wall clock
// when it was made) moved onto the recorder's clock, when that lies in the
// window of the read that completed its line, widened back by the time a
// client may hold a line before writing it (events.MaxHoldNs) but not to
// before the connection was accepted; otherwise with the nearer end of
// the window. A line without ts gets the time of its read. So
// reading in batches costs no precision for the clients that send ts (both
// shipped clients do): a phase_end still marks the instant the client
// sent it, not the tick at which it was read. A wrong client clock can
// move a stamp at most to the edge of its window.
//
// Lines on one connection arrive in the order they were sent, so their
// stamps never go back: each is at least 1 ns after the one before. (A
// client's request_end and its last token are sent 1 ns apart; had the
// two clock offsets of two reads differed by a few microseconds, which a
// preempted reader gives, the token would have been stamped after its
// request's end.)
type stamper struct {
	now  func() int64 // the recorder's clock
	wall func() int64 // the wall clock clients stamp with
	// lo and hi bound the arrival of the latest read's bytes (recorder
	// clock); toRecorder moves a wall-clock time onto the recorder clock.
	lo, hi     int64
	hold       int64 // how far before lo a ts is kept (events.MaxHoldNs)
	accepted   int64 // when the connection was accepted: no ts is kept before it
	toRecorder int64
	offsetSet  bool
	emptied    bool
	last       int64 // the latest stamp given
}

// offsetBracket is the widest pair of recorder-clock reads around a
// wall-clock read that sets toRecorder: a wider one was preempted, and its
// offset would be off by as much. offsetStep is the change in the offset
// that is taken as the wall clock having moved (a step or a slew adding
// up); smaller changes are the reads' own jitter and are ignored, so that
// stamps within a connection keep their exact spacing.
const (
	offsetBracket = 50_000  // ns
	offsetStep    = 100_000 // ns
)

// read notes a read that has just returned data; emptied: it left the
// source empty (it returned less than it asked for).
func (sr *stamper) read(emptied bool) {
	t := sr.now()
	w := sr.wall()
	if t2 := sr.now(); t2-t <= offsetBracket || !sr.offsetSet {
		off := t + (t2-t)/2 - w
		if !sr.offsetSet || off-sr.toRecorder > offsetStep || sr.toRecorder-off > offsetStep {
			sr.toRecorder, sr.offsetSet = off, true
		}
	}
	if sr.emptied {
		sr.lo = sr.hi
	}
	sr.hi = t
	sr.emptied = emptied
}

func wallNow() int64 { return time.Now().UnixNano() }

// stamp is the time stamp of an event whose line was completed by the
// latest read and which carried the client time clientNs (0: none).
func (sr *stamper) stamp(clientNs int64) int64 {
	ts := sr.hi
	if clientNs != 0 {
		ts = min(max(clientNs+sr.toRecorder, max(sr.lo-sr.hold, sr.accepted)), sr.hi)
	}
	if sr.last != 0 && ts <= sr.last {
		ts = sr.last + 1 // sent after the line before it
	}
	sr.last = ts
	return ts
}

// readBuffer is a connection's buffer: a busy connection delivers
// ReadEvery worth of lines at a time (100 ms of 6,000 events/s is ~45 KiB),
// and a line longer than the buffer grows a per-connection copy, up to
// MaxLineBytes.
const readBuffer = 64 << 10

// connState is what one connection's reader keeps between lines so that
// the rows it builds allocate almost nothing: request ids and names seen
// recently, and blocks of int64s for the optional fields.
type connState struct {
	strings map[string]string
	ints    []int64
}

// maxInterned bounds a connection's table of request ids and names.
const maxInterned = 4096

func (c *connState) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := c.strings[string(b)]; ok {
		return v
	}
	if len(c.strings) >= maxInterned {
		clear(c.strings) // request ids come and go: keep only recent ones
	}
	v := string(b)
	c.strings[v] = v
	return v
}

// int returns a pointer to a copy of v from a block shared by many rows:
// one allocation per 512 values instead of one each.
func (c *connState) int(v int64) *int64 {
	if len(c.ints) == cap(c.ints) {
		c.ints = make([]int64, 0, 512)
	}
	c.ints = append(c.ints, v)
	return &c.ints[len(c.ints)-1]
}

// lineBuffer cuts one connection's byte stream into lines as reads fill
// it, and hands each complete line to the server at once, stamped by the
// read that completed it. It is pushed, not pulled, so that one goroutine
// can serve every connection (see serve).
type lineBuffer struct {
	buf  []byte // readBuffer bytes; buf[r:w] is not yet cut into lines
	r, w int
	long []byte // the current line, once it has outgrown buf
	n    int    // the current line's length so far, while it is in long
	sr   stamper
	cs   connState
	// batch holds the events of the current read, queued together.
	batch []trace.Event
	// marks counts the empty lines cut since the reader last took them:
	// a client that starts every write with one (llem_events does) tells
	// the reader how many writes it made (see conn.pause).
	marks int
}

// newLineBuffer starts a connection accepted at acceptedNs (recorder
// clock): nothing it sends can have arrived before.
func newLineBuffer(now func() int64, acceptedNs int64) *lineBuffer {
	return &lineBuffer{
		buf: make([]byte, readBuffer),
		sr: stamper{now: now, wall: wallNow, lo: acceptedNs, hi: acceptedNs, hold: events.MaxHoldNs,
			accepted: acceptedNs},
		cs: connState{strings: make(map[string]string)},
	}
}

// space is where the next read goes.
func (lb *lineBuffer) space() []byte { return lb.buf[lb.w:] }

// filled takes the n > 0 bytes just read into space(), which was asked
// bytes long, and handles every line they complete.
func (s *Server) filled(lb *lineBuffer, n, asked int) {
	lb.sr.read(n < asked)
	lb.w += n
	s.cutLines(lb, false)
}

// ended handles what is left once the stream ends (EOF, an error, or a
// cut at Close): the last line, if it did not end in a newline.
func (s *Server) ended(lb *lineBuffer) { s.cutLines(lb, true) }

// cutLines hands every complete line in the buffer to handleLine, then
// queues their events together, so the queue's lock is taken once per
// read rather than once per line. At the end of the stream what is left
// is the last line.
func (s *Server) cutLines(lb *lineBuffer, end bool) {
	for {
		rest := lb.buf[lb.r:lb.w]
		i := bytes.IndexByte(rest, '\n')
		if i >= 0 {
			if i == 0 && lb.n == 0 {
				lb.marks++
			}
			lb.r += i + 1
			s.endLine(lb, rest[:i+1])
			continue
		}
		switch {
		case end:
			if lb.n > 0 || len(rest) > 0 {
				s.endLine(lb, rest)
			}
			lb.r, lb.w = 0, 0
		case len(rest) == len(lb.buf):
			// A whole buffer without a newline: the line goes on.
			// Keep it while it may still fit the limit; past the limit
			// keep only what bad_events stores.
			keep := s.opts.MaxLineBytes + 1
			if lb.n+len(rest) > s.opts.MaxLineBytes {
				keep = trace.MaxBadEventRaw
			}
			if len(lb.long) < keep {
				lb.long = append(lb.long, rest[:min(len(rest), keep-len(lb.long))]...)
			}
			lb.n += len(rest)
			lb.r, lb.w = 0, 0
		default:
			// The start of a line: move it to the front for the next read.
			lb.w = copy(lb.buf, rest)
			lb.r = 0
		}
		break
	}
	if len(lb.batch) > 0 {
		s.enqueue(lb.batch)
		lb.batch = lb.batch[:0]
	}
}

// endLine handles chunk, which ends the current line: it ends in '\n', or
// the stream ended.
func (s *Server) endLine(lb *lineBuffer, chunk []byte) {
	line := chunk
	if lb.n > 0 {
		if lb.n+len(chunk) <= s.opts.MaxLineBytes+1 {
			lb.long = append(lb.long, chunk...)
		}
		line = lb.long
	}
	lb.n += len(chunk)
	lineLen := lb.n
	if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
		lineLen--
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	if lineLen > s.opts.MaxLineBytes {
		s.rejectLine(lb.sr.hi, line, events.ReasonOversized)
	} else {
		lb.batch = s.handleLine(lb.batch, &lb.sr, &lb.cs, line)
	}
	lb.long, lb.n = lb.long[:0], 0
}

// handleLine parses one complete line (without its newline) and appends
// its event to batch, or keeps it as a bad line.
func (s *Server) handleLine(batch []trace.Event, sr *stamper, cs *connState, line []byte) []trace.Event {
	// Blank lines (a trailing "\r\n", an `echo` with nothing) are not events.
	if len(bytes.TrimSpace(line)) == 0 {
		return batch
	}
	s.received.Add(1)
	var simple events.Simple
	if events.ScanSimple(line, &simple) {
		s.notePhase(simple.Kind)
		return append(batch, simpleEvent(sr, cs, &simple, s.opts.Task))
	}
	m, err := events.Parse(line)
	if err != nil {
		reason := events.ReasonInvalidJSON
		var pe *events.ParseError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		s.keepBad(sr.stamp(0), reason, line)
		return batch
	}
	ev, err := toEvent(sr.stamp(m.TimeNs), &m, s.opts.Task)
	if err != nil {
		// An attribute that parsed but will not encode; unreachable with
		// encoding/json, handled so it can never be lost silently.
		s.keepBad(sr.stamp(0), events.ReasonInvalidJSON, line)
		return batch
	}
	s.notePhase(m.Kind)
	return append(batch, ev)
}

func (s *Server) notePhase(kind string) {
	if s.opts.OnPhase != nil && (kind == events.KindPhaseStart || kind == events.KindPhaseEnd) {
		s.opts.OnPhase()
	}
}

// enqueue queues a connection's events for Take, dropping (and counting)
// those that do not fit.
func (s *Server) enqueue(batch []trace.Event) {
	s.qmu.Lock()
	room := s.opts.Buffer - len(s.queue)
	n := min(max(room, 0), len(batch))
	if len(s.queue)+n > cap(s.queue) {
		// Made at once for what a Take usually finds (the queue is
		// taken when half full, or sooner): grown 1.25 times at a time
		// from nothing, a busy client's queue was copied ~5 times over
		// in each of the first two periods between Takes (the queue and
		// its spare), 19% of the event path's CPU at 10,000 events/s.
		// Pages not yet written cost no memory.
		q := make([]trace.Event, len(s.queue), max(s.opts.Buffer/2+s.opts.Buffer/8, min(s.opts.Buffer, 2*(len(s.queue)+n))))
		copy(q, s.queue)
		s.queue = q
	}
	s.queue = append(s.queue, batch[:n]...)
	half := len(s.queue) >= s.opts.Buffer/2
	s.qmu.Unlock()
	s.accepted.Add(int64(n))
	s.dropped.Add(int64(len(batch) - n))
	clear(batch)
	if half {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
}

// simpleEvent builds the row of a line events.ScanSimple read; task is
// the job task that owns the socket, or nil.
func simpleEvent(sr *stamper, cs *connState, m *events.Simple, task *int32) trace.Event {
	ev := trace.Event{
		TimestampNs: sr.stamp(m.TimeNs),
		GPU:         trace.GPUAll,
		Kind:        m.Kind,
		Name:        cs.str(m.Name),
		RequestID:   cs.str(m.ID),
		Source:      "client",
		Task:        task,
	}
	if m.TimeNs != 0 {
		ev.ClientTimestampNs = cs.int(m.TimeNs)
	}
	if m.Has&events.HasCount != 0 {
		ev.Count = cs.int(m.Count)
	}
	if m.Has&events.HasInputTokens != 0 {
		ev.InputTokens = cs.int(m.InputTokens)
	}
	if m.Has&events.HasOutputTokens != 0 {
		ev.OutputTokens = cs.int(m.OutputTokens)
	}
	if m.Has&events.HasGPU != 0 {
		ev.GPU = int32(m.GPU)
	}
	return ev
}

// rejectLine counts a line that was never parsed.
func (s *Server) rejectLine(arrival int64, raw []byte, reason string) {
	s.received.Add(1)
	s.keepBad(arrival, reason, raw)
}

func (s *Server) keepBad(arrival int64, reason string, raw []byte) {
	s.badCount.Add(1)
	// Reserve a slot first so concurrent readers never keep more than
	// MaxBadKept rows.
	if s.badKept.Add(1) > int64(s.opts.MaxBadKept) {
		s.badKept.Add(-1)
		return
	}
	raw = bytes.Clone(raw[:min(len(raw), trace.MaxBadEventRaw)])
	s.qmu.Lock()
	s.badQueue = append(s.badQueue, trace.BadEvent{TimestampNs: arrival, Reason: reason, Raw: raw})
	s.qmu.Unlock()
}

// toEvent turns a parsed message into an events-table row.
func toEvent(arrival int64, m *events.Message, task *int32) (trace.Event, error) {
	attrs, err := m.AttrsJSON()
	if err != nil {
		return trace.Event{}, err
	}
	ev := trace.Event{
		TimestampNs:  arrival,
		GPU:          trace.GPUAll,
		Kind:         m.Kind,
		Name:         m.Name,
		RequestID:    m.ID,
		Count:        m.Count,
		InputTokens:  m.InputTokens,
		OutputTokens: m.OutputTokens,
		Source:       "client",
		Attrs:        attrs,
		Task:         task,
	}
	if m.TimeNs != 0 {
		ts := m.TimeNs
		ev.ClientTimestampNs = &ts
	}
	if m.GPU != nil {
		ev.GPU = int32(*m.GPU)
	}
	return ev, nil
}
