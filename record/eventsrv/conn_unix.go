//go:build unix

package eventsrv

import (
	"context"
	"io"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/internal/wake"
)

// connReader reads one client connection with plain system calls on a
// descriptor of its own, at most every ReadEvery while the connection is
// busy (see the package doc).
//
// Why not net.Conn: Go registers every socket with its network poller
// (edge-triggered epoll), and every line a client writes then wakes the
// poller's thread, even while the reader is deliberately sleeping until
// its next tick: at 1,000 events/s that cost ~35 us of CPU an event. On a
// descriptor of its own nothing wakes until the reader asks: a read at a
// tick returns what arrived meanwhile, and a quiet connection waits in
// poll(2) and is read as soon as a line comes.
//
// Once the server is closing, a connection is cut after it has been
// silent for CloseGrace, or at CloseLimit, never while it is still
// delivering what the client sent before it exited.
type connReader struct {
	fd int
	s  *Server
	// emptied: the last read returned data and left the socket empty, so
	// the next read waits (pause).
	emptied bool
	// lastN bytes came in the last read, over lastGap since the read
	// before it: the connection's current rate.
	lastN    int
	lastGap  time.Duration
	lastRead time.Time
	// waker sleeps the pauses (made at the first one; closed with the
	// connection): on the shared ticks every busy reader's timerfd fires
	// in one epoll_wait, where Go timers cost several thread wake-ups each.
	waker wake.Waker
}

// readTarget is how many bytes a read of a busy connection should find,
// ~30 lines. It must stay well under what a client can leave unread before
// its writes block: the kernel charges each write ~1 KB of the sender's
// ~200 KB buffer whatever its size, and a sender with a timeout (the
// Python client) is woken only once the queue has drained to a quarter,
// so the Python client blocks with ~70 lines unread (~270 for plain
// blocking writes). Reading every ReadEvery regardless throttled a client
// sending over ~700 events/s, which must never happen.
const readTarget = 2 << 10

// pause is how long to wait before the next read of a connection that was
// just emptied: to the next multiple of ReadEvery, so every busy
// connection wakes on the same ticks and one wake-up serves them all; but
// no longer than the connection, at its current rate, takes to queue
// readTarget bytes. A read that found readTarget or more may have found a
// blocked client, whose rate is then unknown: the pause halves.
//
// A shorter pause also ends on a tick, of a finer grid (ReadEvery/8, the
// longest pause before it rounded down): readers of fast connections then
// wake together too. Each separate wake-up of the process costs far more
// than the reads it makes: the Go runtime's monitor thread polls every
// 20 us while the process is busy after a wake, ~13 context switches a
// wake on the development VM, and 8 connections at 1,250 events/s each
// woke it ~300 times a second at times of their own.
func (r *connReader) pause(now time.Time) time.Duration {
	every := r.s.opts.ReadEvery
	d := every - time.Duration(now.UnixNano())%every
	var want time.Duration
	switch {
	case r.lastN <= 0 || r.lastGap <= 0:
		want = 10 * time.Millisecond // no rate known yet
	case r.lastN >= readTarget:
		want = r.lastGap / 2
	default:
		want = time.Duration(float64(r.lastGap) * readTarget / float64(r.lastN))
	}
	if want < d {
		grid := max(every/8, time.Millisecond)
		at := time.Duration(now.UnixNano()) + want
		d = at - at%grid - time.Duration(now.UnixNano())
		if d <= 0 {
			d = want // under one grid step away: no tick in between
		}
	}
	return d
}

func (r *connReader) Read(p []byte) (int, error) {
	s := r.s
	if r.emptied && !s.closingFlag.Load() && s.opts.ReadEvery > 0 {
		if r.waker == nil {
			r.waker = wake.New(context.Background())
		}
		now := time.Now()
		r.waker.Wait(now.Add(r.pause(now)))
	}
	for {
		if s.closingFlag.Load() && time.Now().After(s.limit()) {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := rawRead(r.fd, p)
		switch {
		case n > 0:
			now := time.Now()
			if !r.lastRead.IsZero() {
				r.lastN, r.lastGap = n, now.Sub(r.lastRead)
			}
			r.lastRead = now
			r.emptied = n < len(p)
			return n, nil
		case n == 0 && err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, err
		}
		// Nothing to read: wait for data.
		if err := r.wait(); err != nil {
			return 0, err
		}
	}
}

// rawRead reads the non-blocking socket without telling the runtime: the
// read returns at once, and a system call through the runtime wakes its
// monitor thread (sysmon) when it sleeps, which then polls every 20 us for
// as long as the process is busy: on the shared ticks, for every reader.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// close releases the reader's waker.
func (r *connReader) close() {
	if r.waker != nil {
		r.waker.Close()
	}
}

// wait returns when the socket may be read, or with an error once the
// server is closing and the connection has been silent for CloseGrace.
func (r *connReader) wait() error {
	s := r.s
	for {
		if s.closingFlag.Load() {
			timeout := min(s.opts.CloseGrace, time.Until(s.limit()))
			if timeout <= 0 {
				return os.ErrDeadlineExceeded
			}
			fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(timeout.Milliseconds())+1)
			if err == unix.EINTR {
				continue
			}
			if n == 0 {
				return os.ErrDeadlineExceeded
			}
			return nil // readable, or an error the read will report
		}
		// Until Close, wait for data or for Close's wake-up.
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(s.wakeR), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return err
		}
		if fds[0].Revents != 0 {
			return nil
		}
	}
}

func (s *Server) limit() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLimit
}

// detach returns a descriptor of the connection's socket that Go's poller
// does not watch, and closes the connection's own.
func detach(conn *net.UnixConn) (int, error) {
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	// The copy shares the socket's non-blocking flag: reads return EAGAIN
	// rather than block, and wait blocks in poll instead.
	return fd, nil
}

func closeFD(fd int) { unix.Close(fd) }

func wakePipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil { // Pipe2 is Linux-only
		return -1, -1, err
	}
	for _, fd := range p {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			closePipe(p[0], p[1])
			return -1, -1, err
		}
	}
	return p[0], p[1], nil
}

// wakeReaders makes the pipe readable for good: every reader waiting in poll
// returns, and from then on waits with the closing timeouts.
func wakeReaders(w int) { unix.Write(w, []byte{1}) }

func closePipe(r, w int) {
	unix.Close(r)
	unix.Close(w)
}
