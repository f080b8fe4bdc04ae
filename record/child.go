package record

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/trace"
)

// DefaultStopGrace is how long a command has to exit after the recorder
// passed it a stop signal before its processes are killed (docker stop's 10 s).
const DefaultStopGrace = 10 * time.Second

// childResult is how one run of the command ended.
type childResult struct {
	ExitCode int    // the shell convention: 128+N for a child killed by signal N
	Signal   string // the signal's name when the child was killed by one
	// Stop is set when a stop signal reached the recorder while it ran.
	Stop *trace.CommandStop
	// Leftover is the number of processes of the command's group that
	// were still running when it exited (and were then stopped).
	Leftover int
}

// CommandError is a command that could not be started: not found (exit
// status 127, as a shell) or found but not executable (126).
type CommandError struct {
	Name     string
	ExitCode int
	Err      error
}

func (e *CommandError) Error() string {
	what := "not found"
	if e.ExitCode == 126 {
		what = "cannot be executed"
	}
	return fmt.Sprintf("command %q %s: %v", e.Name, what, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// commandError classifies a failed look-up or start of name.
func commandError(name string, err error) *CommandError {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code = 127
	}
	return &CommandError{Name: name, ExitCode: code, Err: err}
}

// CheckCommand finds argv0 as the recorder will run it, and says why not
// (a *CommandError) when it cannot be run.
func CheckCommand(argv0 string) error {
	if _, err := execLookPath(argv0); err != nil {
		return commandError(argv0, err)
	}
	return nil
}

// stopPolicy is how runChild stops a command.
type stopPolicy struct {
	grace time.Duration
	log   io.Writer
	now   func() int64
	cycle int
}

// runChild starts argv directly (no shell), with the given stdio and extra
// environment, and waits for it while passing on the stop signals (SIGINT,
// SIGTERM, SIGHUP) that arrive on sigs. started is called once the process
// exists.
//
// The command runs in a process group of its own, so that a stop signal
// reaches every process it started, grandchildren included, and nothing
// of it outlives the recording: processes of the group still running when
// the command exits are stopped too. The exception is a recorder in the
// terminal's foreground process group: the command then stays in that
// group, so that it may read the terminal, and a Ctrl-C reaches it (and
// its children) from the terminal itself rather than from the recorder;
// SIGTERM and SIGHUP go to the command and its descendants.
//
// After the first stop signal, the command has the grace period to exit;
// then, or at once on a second stop signal, its processes get SIGKILL, so
// a command that ignores signals cannot keep the recorder waiting.
func runChild(argv []string, env []string, stdin io.Reader, stdout, stderr io.Writer,
	sigs <-chan os.Signal, pol stopPolicy, started func()) (childResult, error) {
	if pol.grace <= 0 {
		pol.grace = DefaultStopGrace
	}
	if pol.log == nil {
		pol.log = io.Discard
	}
	if pol.now == nil {
		pol.now = func() int64 { return time.Now().UnixNano() }
	}
	fg := inForegroundGroup()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !fg}
	// Output through a pipe (stdio that is not a file) is copied until
	// every process holding the pipe has closed it: a grandchild left
	// running would hold Wait for ever.
	cmd.WaitDelay = pol.grace
	if err := cmd.Start(); err != nil {
		return childResult{}, commandError(argv[0], err)
	}
	started()
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var stop *trace.CommandStop
	var graceC <-chan time.Time
	kill := func(reason string) {
		if stop.Killed {
			return
		}
		stop.Killed, stop.KilledNs, stop.KillReason = true, pol.now(), reason
		signalCommand(pid, !fg, unix.SIGKILL)
	}
	for {
		select {
		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			name := unix.SignalName(s)
			if stop != nil {
				fmt.Fprintf(pol.log, "llem: warning: %s again: killing the command (SIGKILL to its processes)\n", name)
				kill("second_signal")
				continue
			}
			stop = &trace.CommandStop{Signal: name, AtNs: pol.now(), Cycle: pol.cycle, GraceMs: ms(pol.grace)}
			// A Ctrl-C the terminal has already sent to the whole
			// foreground group, command included, is not sent again: a
			// second SIGINT would interrupt the command's own clean-up.
			if !(s == unix.SIGINT && fg) {
				signalCommand(pid, !fg, s)
				stop.Forwarded = true
			}
			fmt.Fprintf(pol.log, "llem: %s: waiting up to %v for the command to exit (again to kill it now)\n", name, pol.grace)
			t := time.NewTimer(pol.grace)
			defer t.Stop()
			graceC = t.C
		case <-graceC:
			graceC = nil
			fmt.Fprintf(pol.log, "llem: warning: the command did not exit within %v of %s: killing it (SIGKILL to its processes)\n", pol.grace, stop.Signal)
			kill("grace_expired")
		case err := <-done:
			if errors.Is(err, exec.ErrWaitDelay) {
				err = nil // the command exited; a leftover process held its output
			}
			res, err := exitOf(cmd, err)
			res.Stop = stop
			if !fg {
				res.Leftover = stopLeftovers(pid, pol)
			}
			return res, err
		}
	}
}

func exitOf(cmd *exec.Cmd, err error) (childResult, error) {
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return childResult{}, err
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return childResult{ExitCode: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}, nil
	}
	return childResult{ExitCode: cmd.ProcessState.ExitCode()}, nil
}

// signalCommand sends sig to the command's process group (when it has its
// own) and to each of its descendants outside that group (which left it),
// each process once.
func signalCommand(pid int, ownGroup bool, sig syscall.Signal) {
	if ownGroup {
		_ = unix.Kill(-pid, sig)
	} else {
		_ = unix.Kill(pid, sig)
	}
	for _, p := range descendants(pid) {
		if !ownGroup || p.pgid != pid {
			_ = unix.Kill(p.pid, sig)
		}
	}
}

// stopLeftovers stops the processes of the command's group (pgid) that are
// still running after the command exited: SIGTERM, then SIGKILL after the
// grace period. It returns how many there were.
func stopLeftovers(pgid int, pol stopPolicy) int {
	n := len(groupMembers(pgid))
	if n == 0 {
		return 0
	}
	fmt.Fprintf(pol.log, "llem: warning: the command exited but left %d process(es) of its group running: stopping them (SIGTERM, SIGKILL after %v)\n", n, pol.grace)
	_ = unix.Kill(-pgid, unix.SIGTERM)
	deadline := time.Now().Add(pol.grace)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if len(groupMembers(pgid)) == 0 {
			return n
		}
	}
	_ = unix.Kill(-pgid, unix.SIGKILL)
	return n
}

// procStat is what /proc/PID/stat says about one process.
type procStat struct {
	pid, ppid, pgid int
	zombie          bool
}

// processes lists every process of the host (Linux /proc); nil elsewhere.
func processes() []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgid, _ := strconv.Atoi(f[2])
		out = append(out, procStat{pid: pid, ppid: ppid, pgid: pgid, zombie: f[0] == "Z" || f[0] == "X"})
	}
	return out
}

// descendants are the living processes below pid.
func descendants(pid int) []procStat {
	children := map[int][]procStat{}
	for _, p := range processes() {
		if !p.zombie {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	var out []procStat
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			queue = append(queue, c.pid)
			out = append(out, c)
		}
		queue = queue[1:]
	}
	return out
}

// groupMembers are the living processes of process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	for _, p := range processes() {
		if p.pgid == pgid && !p.zombie {
			out = append(out, p.pid)
		}
	}
	return out
}

// inForegroundGroup reports whether llem's process group owns the
// controlling terminal, i.e. whether Ctrl-C reaches the child directly.
func inForegroundGroup() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	return fg == unix.Getpgrp()
}

// StopSignals are the signals that stop a recording; a caller running
// commands with RunCommand passes them on its channel (signal.Notify).
var StopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// CommandExit is how one run of a command ended: ExitCode in the shell
// convention (128+N for signal N) and the signal's name when one killed it;
// Stop when the caller's stop signal reached it.
type CommandExit struct {
	ExitCode int
	Signal   string
	Stop     *trace.CommandStop
	Leftover int
}

// RunCommand runs argv as the recorder runs its command (directly, with
// the given stdio and environment, in a process group of its own; the stop
// signals from sigs passed on, SIGKILL grace after the first or at once on
// a second; notices to log) and calls started once the process exists. It
// is for tasks of a job that run their command without sampling (package
// record/slurm). A command that cannot be started is a *CommandError.
func RunCommand(argv, env []string, stdin io.Reader, stdout, stderr io.Writer,
	sigs <-chan os.Signal, grace time.Duration, log io.Writer, started func()) (CommandExit, error) {
	res, err := runChild(argv, env, stdin, stdout, stderr, sigs, stopPolicy{grace: grace, log: log}, started)
	return CommandExit{ExitCode: res.ExitCode, Signal: res.Signal, Stop: res.Stop, Leftover: res.Leftover}, err
}
