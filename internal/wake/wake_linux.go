package wake

import (
	"context"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdWaker sleeps to a deadline on a timerfd read through Go's network
// poller, not on a Go timer, with raw system calls. On an idle machine a Go
// timer costs about five context switches a tick (perf):
// epoll_wait's timeout is whole milliseconds rounded down, so the poller
// wakes early and sleeps again for the rest; the timer readies the
// goroutine on a run queue, which wakes a second thread to look for work;
// and the runtime's monitor thread (sysmon) wakes at the timer's deadline
// too, as it does at any system call made through the runtime while it
// sleeps. A timerfd that becomes readable hands the goroutine straight to
// the thread waiting in epoll_wait, and setting and reading it with raw
// system calls (both return at once) leaves the monitor asleep.
type fdWaker struct {
	f    *os.File
	rc   syscall.RawConn
	stop func() bool
	// What one Wait sets and reads, and the two functions that do it,
	// made once: closures made in Wait would be four allocations a tick.
	spec   unix.ItimerSpec
	at     int64 // the deadline on CLOCK_MONOTONIC
	buf    [8]byte
	err    syscall.Errno
	arm    func(fd uintptr)
	expire func(fd uintptr) bool
}

// New returns a timerfd Waker, or a Go timer where timerfds are
// unavailable (seccomp filters, old kernels).
func New(ctx context.Context) Waker {
	if !MonoOK() {
		return NewTimer(ctx)
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return NewTimer(ctx)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return NewTimer(ctx)
	}
	w := &fdWaker{f: f, rc: rc}
	// Raw system calls: both return at once, and a system call through
	// the runtime's entersyscall would wake its monitor thread out of its
	// idle sleep at every tick.
	w.arm = func(fd uintptr) { w.err = SetTimerfd(int(fd), &w.spec, w.at) }
	w.expire = func(fd uintptr) bool {
		_, _, w.err = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&w.buf[0])), uintptr(len(w.buf)))
		return w.err != unix.EAGAIN // EAGAIN: not yet, wait in the poller
	}
	// Closing the file ends a read in progress: that is how ctx stops a wait.
	w.stop = context.AfterFunc(ctx, func() { w.f.Close() })
	return w
}

func (w *fdWaker) Wait(deadline time.Time) bool {
	w.at = max(MonoNs(deadline), 1) // a time in the past fires at once
	if err := w.rc.Control(w.arm); err != nil || w.err != 0 {
		return false
	}
	if err := w.rc.Read(w.expire); err != nil || w.err != 0 {
		return false
	}
	return true
}

func (w *fdWaker) Close() {
	w.stop()
	w.f.Close()
}

// SetTimerfd arms the CLOCK_MONOTONIC timerfd fd to fire at monoNs, an
// absolute time (MonoNs; one in the past fires at once), or disarms it for
// 0. It is a raw system call: it returns at once, and one through the
// runtime's entersyscall would wake its monitor thread out of its idle
// sleep. spec is the caller's, so that arming allocates nothing.
func SetTimerfd(fd int, spec *unix.ItimerSpec, monoNs int64) syscall.Errno {
	spec.Value = unix.NsecToTimespec(monoNs)
	_, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(fd), unix.TFD_TIMER_ABSTIME,
		uintptr(unsafe.Pointer(spec)), 0, 0, 0)
	return e
}
