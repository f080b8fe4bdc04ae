package events

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// WriteTimeout bounds how long one Send may wait for the recorder. The
// recorder never stops reading, so hitting it means the recorder is gone or
// stuck; inference must not stall on it.
const WriteTimeout = time.Second

// ErrNotRecording is returned by SendOnce when LLEM_EVENTS is not set, that
// is when the program is not running under `llem record`.
var ErrNotRecording = errors.New(EnvVar + " is not set: not running under `llem record`")

// DefaultHold is how long a client holds token lines before writing them
// (Client.SetHold), and holdBytes how many bytes it holds at most. The
// recorder pays for every socket write, not every line (the kernel frees
// one buffer a write, and a write can wake it), so lines written together
// cost it far less each; every line keeps the ts of its call, and the
// recorder trusts a ts up to MaxHoldNs (0.5 s) before the read that
// delivers it. The Python client holds its lines the same way
// (llem_events.HOLD_S).
const (
	DefaultHold = 100 * time.Millisecond
	holdBytes   = 16 << 10
)

// Client sends events to the recorder. It is safe for concurrent use. A
// client that is not connected (LLEM_EVENTS unset, or a nil *Client) does
// nothing, so inference code runs unchanged without llem.
//
// Token events are held up to DefaultHold (or 16 KiB) and written
// together; any other event writes the held lines first, then itself, so
// events keep their order and request and phase marks go out at once.
// Every write starts with an empty line, the protocol's mark of a client
// that writes many lines at once (docs/events.md, "The protocol").
//
// After a write fails the client closes its connection and every later Send
// returns the first error at once: a line cut short by the failure would
// corrupt the next one, and a stuck recorder should cost at most one
// WriteTimeout.
type Client struct {
	mu   sync.Mutex
	conn net.Conn // nil: do nothing
	path string
	err  error // the write error that closed conn
	// hold is how long token lines may wait (SetHold); out is what the
	// next write sends, an empty line then the held lines (empty when
	// none is held); due writes them once they have waited hold, when no
	// call has by then.
	hold time.Duration
	out  []byte
	due  *time.Timer
}

// Dial connects to the socket named by LLEM_EVENTS. When the variable is
// unset it returns a client that does nothing and a nil error. When the
// connection fails it returns a client that does nothing together with the
// error, so the caller may log it and carry on with the same code path.
func Dial() (*Client, error) {
	path := os.Getenv(EnvVar)
	if path == "" {
		return &Client{}, nil
	}
	return DialPath(path)
}

// DialPath connects to the recorder's socket at path. On failure it
// returns a client that does nothing, with the error.
func DialPath(path string) (*Client, error) {
	conn, err := net.DialTimeout("unix", path, WriteTimeout)
	if err != nil {
		return &Client{path: path}, fmt.Errorf("llem events: connecting to %s: %w", path, err)
	}
	return &Client{conn: conn, path: path, hold: DefaultHold}, nil
}

// SetHold sets how long token lines may wait to be written with later
// ones: 0 writes every event at once. Lines already held are written now.
func (c *Client) SetHold(d time.Duration) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.hold = max(d, 0)
	c.mu.Unlock()
	return c.Flush()
}

// Flush writes the held token lines now.
func (c *Client) Flush() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeHeld()
}

// Connected reports whether the client is sending events somewhere.
func (c *Client) Connected() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Send writes one event, or holds it when it is a token event (Client).
// It stamps m.TimeNs with the current time when it is zero. It does
// nothing on a client that is not connected. A held event's write error
// is returned by the call that writes it (a later Send, Flush or Close),
// or, when the client wrote it after the hold, by the next call.
func (c *Client) Send(m Message) error {
	if c == nil {
		return nil
	}
	if m.TimeNs == 0 {
		m.TimeNs = time.Now().UnixNano()
	}
	line, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("llem events: %w", err)
	}
	line = append(line, '\n')

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.conn == nil {
		return nil
	}
	if len(c.out) == 0 {
		c.out = append(c.out, '\n')
	}
	c.out = append(c.out, line...)
	if m.Kind != KindToken || c.hold == 0 || len(c.out) >= holdBytes {
		return c.writeHeld()
	}
	if len(c.out) == 1+len(line) { // the first line held: write it in time
		if c.due == nil {
			c.due = time.AfterFunc(c.hold, c.writeDue)
		} else {
			c.due.Reset(c.hold)
		}
	}
	return nil
}

// writeDue writes the lines held since the timer was set, unless a call
// has written them since.
func (c *Client) writeDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeHeld() // an error is kept in c.err for the next call
}

// writeHeld writes c.out, if anything is held (c.mu held).
func (c *Client) writeHeld() error {
	if c.err != nil {
		return c.err
	}
	if len(c.out) == 0 || c.conn == nil {
		return nil
	}
	if c.due != nil {
		c.due.Stop()
	}
	err := c.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if err == nil {
		_, err = c.conn.Write(c.out)
	}
	c.out = c.out[:0]
	if err != nil {
		c.err = fmt.Errorf("llem events: sending to %s (events are no longer sent): %w", c.path, err)
		c.conn.Close()
		c.conn = nil
		return c.err
	}
	return nil
}

// Close writes the held token lines and closes the connection. Later
// sends do nothing.
func (c *Client) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.writeHeld()
	if c.conn != nil {
		err = errors.Join(err, c.conn.Close())
		c.conn = nil
	}
	return err
}

// RequestStart marks the arrival of request id.
func (c *Client) RequestStart(id string) error {
	return c.Send(Message{Kind: KindRequestStart, ID: id})
}

// FirstToken marks that request id's first output token is ready.
func (c *Client) FirstToken(id string) error {
	return c.Send(Message{Kind: KindFirstToken, ID: id})
}

// Tokens marks that n more output tokens of request id are ready.
func (c *Client) Tokens(id string, n int64) error {
	return c.Send(Message{Kind: KindToken, ID: id, Count: Int(n)})
}

// RequestEnd marks the end of request id with its token counts. Synchronise
// the device first (e.g. cudaDeviceSynchronize) so the mark means the GPU
// work is done.
func (c *Client) RequestEnd(id string, inputTokens, outputTokens int64) error {
	return c.Send(Message{Kind: KindRequestEnd, ID: id,
		InputTokens: Int(inputTokens), OutputTokens: Int(outputTokens)})
}

// PhaseStart marks the start of a named phase (warmup, measure, ...).
func (c *Client) PhaseStart(name string) error {
	return c.Send(Message{Kind: KindPhaseStart, Name: name})
}

// PhaseEnd marks the end of a named phase.
func (c *Client) PhaseEnd(name string) error {
	return c.Send(Message{Kind: KindPhaseEnd, Name: name})
}

// Phase marks the start of a named phase and returns the function that
// marks its end, for `defer c.Phase("measure")()`. Errors are dropped:
// use PhaseStart and PhaseEnd to see them.
func (c *Client) Phase(name string) func() {
	_ = c.PhaseStart(name)
	return func() { _ = c.PhaseEnd(name) }
}

// Mark records a named instant with optional attributes. Attribute keys
// must not be protocol fields (kind, ts, id, name, count, input_tokens,
// output_tokens, gpu): build a Message and Send it to set those.
func (c *Client) Mark(name string, attrs map[string]any) error {
	return c.Send(Message{Kind: KindMark, Name: name, Attrs: attrs})
}

// SendOnce connects to LLEM_EVENTS, sends m and closes the connection: what
// `llem mark` does. It returns ErrNotRecording when LLEM_EVENTS is unset so
// that a script learns its marks go nowhere.
func SendOnce(m Message) error {
	path := os.Getenv(EnvVar)
	if path == "" {
		return ErrNotRecording
	}
	c, err := DialPath(path)
	if err != nil {
		return err
	}
	if err := c.Send(m); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}
