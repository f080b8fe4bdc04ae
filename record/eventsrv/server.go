// Package eventsrv is the recorder's end of the LLEM_EVENTS socket: it
// accepts client connections, parses their lines with events.Parse and
// hands trace rows to the recorder on bounded channels.
//
// The server must never slow down or break the run it measures: it never
// blocks a reader on a slow consumer (events are dropped and counted
// instead), never holds more than a bounded amount of memory, and never
// panics on what a client sends.
package eventsrv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	// Buffer is the capacity of the Events channel. When it is full, new
	// events are dropped and counted rather than blocking the client.
	Buffer int
	// MaxBadKept bounds how many bad lines are delivered on BadEvents;
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
}

// Server receives client events on a Unix socket.
type Server struct {
	path string
	now  func() int64
	opts Options
	ln   *net.UnixListener

	events chan trace.Event
	bad    chan trace.BadEvent

	received, accepted, badCount, badKept, dropped atomic.Int64

	mu            sync.Mutex
	conns         map[net.Conn]struct{}
	closing       bool
	closeDeadline time.Time      // set by Close: when accepting stops and a silent connection is cut
	closeLimit    time.Time      // set by Close: when every connection is cut
	closingFlag   atomic.Bool    // closing, for readers that check it on every read
	readers       sync.WaitGroup // the accept loop and one per connection

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
		path:   path,
		now:    now,
		opts:   opts,
		ln:     ln,
		events: make(chan trace.Event, opts.Buffer),
		// Never more than MaxBadKept bad rows are sent, so a channel this
		// size can never fill and the send never blocks.
		bad:   make(chan trace.BadEvent, opts.MaxBadKept),
		conns: make(map[net.Conn]struct{}),
	}
	s.readers.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path is the socket's path, the value for LLEM_EVENTS.
func (s *Server) Path() string { return s.path }

// Events delivers accepted events in arrival order per connection. It is
// closed by Close once every reader has stopped.
func (s *Server) Events() <-chan trace.Event { return s.events }

// BadEvents delivers the first MaxBadKept rejected lines. It is closed by
// Close once every reader has stopped.
func (s *Server) BadEvents() <-chan trace.BadEvent { return s.bad }

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
// waits for every reader, closes both channels and removes the socket file.
// It always takes at least CloseGrace. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		// A client that exited has closed its end: its reader drains the
		// kernel buffer and stops at EOF. On a loaded machine that drain
		// can outlast the grace, so every read that returns data moves
		// the deadline on (closingReader); only a silent connection (a
		// lingering child) or one past CloseLimit is cut.
		now := time.Now()
		s.closeDeadline = now.Add(s.opts.CloseGrace)
		s.closeLimit = now.Add(s.opts.CloseLimit)
		s.closingFlag.Store(true)
		s.ln.SetDeadline(s.closeDeadline)
		for c := range s.conns {
			c.SetReadDeadline(s.closeDeadline)
		}
		s.mu.Unlock()

		s.readers.Wait()
		s.closeErr = s.ln.Close()
		close(s.events)
		close(s.bad)
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.readers.Done()
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
		s.mu.Lock()
		if s.closing {
			conn.SetReadDeadline(s.closeDeadline)
		}
		s.conns[conn] = struct{}{}
		s.readers.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.readers.Done()
			s.readLines(closingReader{conn, s})
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
			conn.Close()
		}()
	}
}

// closingReader reads a connection; once the server is closing, each read
// first sets the connection's deadline to CloseGrace from now (capped at
// CloseLimit), so a connection is cut only after a silence, never while it
// is still delivering what the client sent before it exited.
type closingReader struct {
	conn net.Conn
	s    *Server
}

func (r closingReader) Read(p []byte) (int, error) {
	if r.s.closingFlag.Load() {
		r.s.mu.Lock()
		limit := r.s.closeLimit
		r.s.mu.Unlock()
		r.conn.SetReadDeadline(minTime(time.Now().Add(r.s.opts.CloseGrace), limit))
	}
	return r.conn.Read(p)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// smallBuffer is the reader's buffer: most lines are under 200 bytes, so a
// connection costs 4 KiB, and only a longer line grows a per-connection
// buffer, up to MaxLineBytes.
const smallBuffer = 4096

// readLines handles one connection's byte stream until EOF or an error.
func (s *Server) readLines(r io.Reader) {
	br := bufio.NewReaderSize(r, smallBuffer)
	var long []byte // the current line when it outgrows br's buffer
	n := 0          // length of the current line so far
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// The line goes on. Keep it while it may still fit the limit;
			// past the limit keep only what bad_events stores.
			keep := s.opts.MaxLineBytes + 1
			if n+len(chunk) > s.opts.MaxLineBytes {
				keep = trace.MaxBadEventRaw
			}
			if len(long) < keep {
				long = append(long, chunk[:min(len(chunk), keep-len(long))]...)
			}
			n += len(chunk)
			continue
		}
		// chunk ends the line: it ends in '\n', or err is EOF or a read error.
		line := chunk
		if n > 0 {
			if n+len(chunk) <= s.opts.MaxLineBytes+1 {
				long = append(long, chunk...)
			}
			line = long
		}
		n += len(chunk)
		lineLen := n
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			lineLen--
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if lineLen > s.opts.MaxLineBytes {
			s.rejectLine(line, events.ReasonOversized)
		} else {
			s.handleLine(line)
		}
		long, n = long[:0], 0
		if err != nil {
			return // io.EOF, the Close deadline, or a broken connection
		}
	}
}

// handleLine parses one complete line (without its newline) and delivers it.
func (s *Server) handleLine(line []byte) {
	// Blank lines (a trailing "\r\n", an `echo` with nothing) are not events.
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	s.received.Add(1)
	arrival := s.now()
	m, err := events.Parse(line)
	if err != nil {
		reason := events.ReasonInvalidJSON
		var pe *events.ParseError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		s.keepBad(arrival, reason, line)
		return
	}
	ev, err := toEvent(arrival, &m, s.opts.Task)
	if err != nil {
		// An attribute that parsed but will not encode; unreachable with
		// encoding/json, handled so it can never be lost silently.
		s.keepBad(arrival, events.ReasonInvalidJSON, line)
		return
	}
	select {
	case s.events <- ev:
		s.accepted.Add(1)
	default:
		s.dropped.Add(1)
	}
}

// rejectLine counts a line that was never parsed.
func (s *Server) rejectLine(raw []byte, reason string) {
	s.received.Add(1)
	s.keepBad(s.now(), reason, raw)
}

func (s *Server) keepBad(arrival int64, reason string, raw []byte) {
	s.badCount.Add(1)
	// Reserve a slot first so concurrent readers never send more than
	// MaxBadKept rows, which is what keeps the send below from blocking.
	if s.badKept.Add(1) > int64(s.opts.MaxBadKept) {
		s.badKept.Add(-1)
		return
	}
	raw = bytes.Clone(raw[:min(len(raw), trace.MaxBadEventRaw)])
	s.bad <- trace.BadEvent{TimestampNs: arrival, Reason: reason, Raw: raw}
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
