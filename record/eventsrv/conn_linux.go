package eventsrv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/internal/wake"
)

// conn is one client connection as serve keeps it: its own descriptor
// of the socket, its lines, and when to read it next.
type conn struct {
	fd    int
	lines *lineBuffer
	// lastN bytes came in the last read, over lastGap since the read
	// before it: the connection's current rate.
	lastN    int
	lastGap  time.Duration
	lastRead time.Time
	// lastMarks is how many writes the client said the last read took
	// (lineBuffer.marks); 0: it does not say.
	lastMarks int
	// next is when to read again a connection whose last read emptied it
	// (a pause); zero: it is quiet, and is read when the poller says a
	// line came.
	next time.Time
	// readable: the poller said so; watched: the poller will say so.
	readable, watched bool
	// quietSince is when a read last found nothing, once the server is
	// closing: a connection silent for CloseGrace is cut.
	quietSince time.Time
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

// A client that starts every write with an empty line (llem_events)
// says how many writes a read took, and so what they charge its send
// buffer: their bytes and writeCharge each. Such a connection is read
// before the charge can reach chargeTarget, not readTarget bytes: a
// client that holds its token lines and writes them 100 ms at a time
// (12 KB a write at 10,000 events/s from 8 clients) is then read on
// the shared ReadEvery ticks with the others, one wake-up for all of
// them, where the bytes alone would have it read at every write.
// chargeTarget is well under the quarter of a default send buffer
// (53 KB) at which a sender that polls before writing (a socket with a
// timeout) waits; llem_events asks for a 1 MiB buffer and does not poll
// until its send fails.
const (
	writeCharge  = 1 << 10
	chargeTarget = 32 << 10
)

// pause is how long to wait before the next read of a connection that was
// just emptied: to the next multiple of every (ReadEvery), so every busy
// connection is due on the same ticks and one wake-up serves them all; but
// no longer than the connection, at its current rate, takes to queue
// readTarget bytes (a client that marks its writes: to charge
// chargeTarget). A read that found that much may have found a blocked
// client, whose rate is then unknown: the pause halves.
//
// A shorter pause also ends on a tick, of a finer grid (every/8, the
// longest pause before it rounded down): fast connections are then due
// together too. Each separate wake-up of the process costs far more than
// the reads it makes: the Go runtime's monitor thread polls every 20 us
// while the process is busy after a wake, ~13 context switches a wake on
// the development VM, and 8 connections at 1,250 events/s each woke it
// ~300 times a second at times of their own.
func (c *conn) pause(every time.Duration, now time.Time) time.Duration {
	d := every - time.Duration(now.UnixNano())%every
	var want time.Duration
	switch {
	case c.lastN <= 0 || c.lastGap <= 0:
		want = 10 * time.Millisecond // no rate known yet
	case c.lastMarks > 0:
		charge := c.lastN + c.lastMarks*writeCharge
		if charge >= chargeTarget {
			want = c.lastGap / 2
		} else {
			want = time.Duration(float64(c.lastGap) * chargeTarget / float64(charge))
		}
	case c.lastN >= readTarget:
		want = c.lastGap / 2
	default:
		want = time.Duration(float64(c.lastGap) * readTarget / float64(c.lastN))
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

// maxReadsPerTurn bounds how many full buffers serve reads from one
// connection before it turns to the others: a flood on one connection
// must not keep the rest waiting until their clients block.
const maxReadsPerTurn = 4

// serve reads every connection, from one goroutine, with plain system
// calls on descriptors of its own, until the server is closed and every
// connection is done.
//
// Why one goroutine: at a tick at which eight readers of their own were
// due (each on a timer of its own, even if all fired in one epoll_wait),
// the Go scheduler woke further threads to run them, several context
// switches a tick; one goroutine reading every due connection in turn is
// one wake-up of one thread.
//
// Why not net.Conn: Go registers every socket with its network poller
// (edge-triggered epoll), and every line a client writes then wakes the
// poller's thread, even while the connection is deliberately left unread
// until its next tick: at 1,000 events/s that cost ~35 us of CPU an event.
// Here nothing wakes until serve asks (see poller).
//
// Once the server is closing, a connection is cut after it has been
// silent for CloseGrace, or at CloseLimit, never while it is still
// delivering what the client sent before it exited.
func (s *Server) serve(p *poller) {
	defer s.readers.Done()
	defer p.close()
	var (
		conns []*conn // in the order they were accepted
		byFD  = make(map[int32]*conn)
	)
	for {
		s.mu.Lock()
		for _, a := range s.pending {
			// Read at once: it may have written before it was taken.
			c := &conn{fd: a.fd, lines: newLineBuffer(s.now, a.at), readable: true}
			conns = append(conns, c)
			byFD[int32(a.fd)] = c
		}
		s.pending = s.pending[:0]
		closing, accepting, limit := s.closing, s.accepting, s.closeLimit
		s.mu.Unlock()

		now := time.Now()
		var deadline time.Time // the next time a connection is due; zero: none
		until := func(t time.Time) {
			if deadline.IsZero() || t.Before(deadline) {
				deadline = t
			}
		}
		open := conns[:0]
		for _, c := range conns {
			if !s.service(c, now, closing, limit) {
				s.ended(c.lines)
				p.forget(c.fd)
				unix.Close(c.fd)
				delete(byFD, int32(c.fd))
				continue
			}
			open = append(open, c)
			if !c.next.IsZero() {
				until(c.next)
				continue
			}
			// Quiet: the poller watches it.
			if !c.watched {
				if err := p.watch(c.fd); err != nil {
					c.next = now.Add(10 * time.Millisecond) // cannot happen on a valid descriptor; read on a timer
					until(c.next)
					continue
				}
				c.watched = true
			}
			if closing {
				until(c.quietSince.Add(s.opts.CloseGrace))
				until(limit)
			}
		}
		clear(conns[len(open):])
		conns = open
		if closing && !accepting && len(conns) == 0 {
			return
		}
		ready, err := p.wait(deadline)
		if err != nil {
			// Not expected: the descriptors are serve's own. Do not spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, fd := range ready {
			if c := byFD[fd]; c != nil {
				c.readable, c.watched = true, false
			}
		}
	}
}

// service reads c if it is due, and reports whether it is still open.
func (s *Server) service(c *conn, now time.Time, closing bool, limit time.Time) bool {
	if closing && !now.Before(limit) {
		return false
	}
	if !c.readable && (c.next.IsZero() || !closing && now.Before(c.next)) {
		// Not due. Once closing, a quiet connection counts its silence
		// from now if it had not started to.
		if closing && c.next.IsZero() {
			if c.quietSince.IsZero() {
				c.quietSince = now
			}
			return now.Sub(c.quietSince) < s.opts.CloseGrace
		}
		return true
	}
	c.readable = false
	for reads := 1; ; reads++ {
		p := c.lines.space()
		n, err := rawRead(c.fd, p)
		switch {
		case n > 0:
			t := time.Now()
			c.quietSince = time.Time{}
			s.filled(c.lines, n, len(p))
			marks := c.lines.marks
			c.lines.marks = 0
			if !c.lastRead.IsZero() {
				c.lastN, c.lastGap, c.lastMarks = n, t.Sub(c.lastRead), marks
			}
			c.lastRead = t
			if n < len(p) && !closing && s.opts.ReadEvery > 0 {
				// Emptied: leave it until its next tick.
				c.next = t.Add(c.pause(s.opts.ReadEvery, t))
				return true
			}
			if n == len(p) && reads >= maxReadsPerTurn {
				c.next = t // due again at once, after the others
				return true
			}
		case n == 0 && err == nil:
			return false // EOF
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			c.next = time.Time{} // quiet
			if closing && c.quietSince.IsZero() {
				c.quietSince = now
			}
			return true
		default:
			return false // a broken connection
		}
	}
}

// poller is what serve waits on: an epoll instance of its own holding the
// server's wake-up eventfd, a timerfd set to the next time a connection is due, and
// the quiet connections, one-shot: a connection left unread until its tick
// is not watched, so its lines wake nothing. serve waits for the epoll
// descriptor through Go's network poller, so the goroutine parks as on any
// socket. Waiting in poll(2) instead blocked a thread in a system call,
// and the runtime's monitor thread polled every 20 us for as long as it
// lasted: ~37 context switches a wake-up on the development VM (measured:
// 223 a second at 1,000 events/s, 6 wake-ups a second).
type poller struct {
	f             *os.File // the epoll descriptor, as Go's poller sees it
	rc            syscall.RawConn
	ep, tfd, wake int
	// What one wait sets and reads, and the function that collects the
	// events, made once: a closure made in wait would allocate at every
	// wake-up.
	spec    unix.ItimerSpec
	evs     [64]unix.EpollEvent
	ready   []int32
	errno   syscall.Errno
	collect func(fd uintptr) bool
}

// newPoller makes the poller of a server whose wake-ups are written to
// the eventfd wakeFD.
func newPoller(wakeFD int) (*poller, error) {
	if !wake.MonoOK() {
		return nil, errors.New("CLOCK_MONOTONIC cannot be read")
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &poller{ep: ep, wake: wakeFD, tfd: -1}
	fail := func(err error) (*poller, error) {
		if p.tfd >= 0 {
			unix.Close(p.tfd)
		}
		unix.Close(ep)
		return nil, err
	}
	if p.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		p.tfd = -1
		return fail(fmt.Errorf("timerfd: %w", err))
	}
	for _, fd := range []int{wakeFD, p.tfd} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fail(fmt.Errorf("epoll: %w", err))
		}
	}
	// Non-blocking, so that os.NewFile hands it to Go's poller.
	if err := unix.SetNonblock(ep, true); err != nil {
		return fail(fmt.Errorf("epoll: %w", err))
	}
	p.f = os.NewFile(uintptr(ep), "eventsrv-epoll")
	if p.rc, err = p.f.SyscallConn(); err != nil {
		unix.Close(p.tfd)
		p.f.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// Raw system calls: they return at once, and one through the
	// runtime's entersyscall wakes its monitor thread out of its sleep.
	p.collect = func(fd uintptr) bool {
		for {
			n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&p.evs[0])),
				uintptr(len(p.evs)), 0, 0, 0)
			switch {
			case e == unix.EINTR:
				continue
			case e != 0:
				p.errno = e
				return true
			case n == 0:
				return false // nothing yet: park in Go's poller
			}
			for _, ev := range p.evs[:n] {
				switch int(ev.Fd) {
				case p.wake, p.tfd:
					var b [8]byte
					rawRead(int(ev.Fd), b[:]) // the count of wake-ups or expiries: clear it
				default:
					p.ready = append(p.ready, ev.Fd)
				}
			}
			return true
		}
	}
	return p, nil
}

// watch reports the quiet connection fd once, when it is readable (or
// hung up); it must be watched again after that.
func (p *poller) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(fd)}
	err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_MOD, fd, &ev)
	if err == unix.ENOENT {
		err = unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev)
	}
	return err
}

// forget stops watching fd, before it is closed.
func (p *poller) forget(fd int) { unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil) }

// wait returns when deadline has passed (zero: no deadline), a watched
// connection is readable, or the server woke it; ready lists the
// connections that are readable, until the next wait.
func (p *poller) wait(deadline time.Time) (ready []int32, err error) {
	at := int64(0) // disarmed
	if !deadline.IsZero() {
		at = max(wake.MonoNs(deadline), 1)
	}
	if e := wake.SetTimerfd(p.tfd, &p.spec, at); e != 0 {
		return nil, e
	}
	p.ready, p.errno = p.ready[:0], 0
	if err := p.rc.Read(p.collect); err != nil {
		return nil, err
	}
	if p.errno != 0 {
		return nil, p.errno
	}
	return p.ready, nil
}

func (p *poller) close() {
	unix.Close(p.tfd)
	p.f.Close()
}

// rawRead reads the non-blocking socket without telling the runtime: the
// read returns at once, and a system call through the runtime wakes its
// monitor thread (sysmon) when it sleeps, which then polls every 20 us for
// as long as the process is busy.
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
	// rather than block, and serve waits in its poller instead.
	return fd, nil
}

// wake makes serve look at the server's state again (a new connection,
// Close): the eventfd's count goes up and the poller reports it.
func (s *Server) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(s.wakeFD, one[:])
}
