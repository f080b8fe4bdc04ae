package record

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// childResult is how one run of the command ended.
type childResult struct {
	ExitCode int    // the shell convention: 128+N for a child killed by signal N
	Signal   string // the signal's name when the child was killed by one
}

// runChild starts argv directly (no shell), with the given stdio and extra
// environment, and waits for it while forwarding SIGINT and SIGTERM from
// sigs. started is called with the start time once the process exists.
//
// SIGINT is not forwarded when llem runs in the terminal's foreground
// process group: the terminal has already sent Ctrl-C to the whole group,
// child included, and a second SIGINT would interrupt the child's own
// clean-up. SIGTERM, which no terminal sends, is always forwarded.
func runChild(argv []string, env []string, stdin io.Reader, stdout, stderr io.Writer,
	sigs <-chan os.Signal, started func()) (childResult, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		return childResult{}, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	started()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			if sig == os.Interrupt && inForegroundGroup() {
				continue
			}
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			return exitOf(cmd, err)
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

// CommandExit is how one run of a command ended: ExitCode in the shell
// convention (128+N for signal N) and the signal's name when one killed it.
type CommandExit struct {
	ExitCode int
	Signal   string
}

// RunCommand runs argv as the recorder runs its command (directly, with
// the given stdio and environment, SIGINT and SIGTERM from sigs forwarded)
// and calls started once the process exists. It is for tasks of a job that
// run their command without sampling (package record/slurm).
func RunCommand(argv, env []string, stdin io.Reader, stdout, stderr io.Writer,
	sigs <-chan os.Signal, started func()) (CommandExit, error) {
	res, err := runChild(argv, env, stdin, stdout, stderr, sigs, started)
	return CommandExit{ExitCode: res.ExitCode, Signal: res.Signal}, err
}
