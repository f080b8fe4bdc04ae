package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

// recordUntilRunning starts llem record on the sim around argv and waits
// until the command runs.
func recordUntilRunning(t *testing.T, dir string, flags []string, argv ...string) (*exec.Cmd, func() string) {
	t.Helper()
	args := append([]string{"record", "--device", "sim", "--quiet", "--out", dir}, flags...)
	cmd, errb := startRecord(t, append(append(args, "--"), argv...)...)
	waitFor(t, "the command to start", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "meta.json"))
		return strings.Contains(string(b), `"status": "recording"`)
	})
	time.Sleep(500 * time.Millisecond) // the command is started just after meta.json is written
	return cmd, errb.String
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// A command that ignores SIGTERM (its whole group does) is killed after
// the grace period, and meta.json says so.
func TestCommandIgnoringSIGTERMIsKilledAfterGrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, stderr := recordUntilRunning(t, dir, []string{"--stop-grace", "1s"}, "sh", "-c", `trap "" TERM; sleep 60; true`)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	code := exitCode(cmd.Wait())
	if took := time.Since(start); took > 6*time.Second || took < time.Second {
		t.Errorf("llem took %v to stop a command ignoring SIGTERM with a 1 s grace", took)
	}
	if code != 128+9 {
		t.Errorf("exit %d, want 137 (SIGKILL); stderr: %s", code, stderr())
	}
	if !strings.Contains(stderr(), "did not exit within 1s of SIGTERM") {
		t.Errorf("llem must say it killed the command: %s", stderr())
	}
	m := readMeta(t, dir)
	st := m.Command.Stop
	if st == nil || st.Signal != "SIGTERM" || !st.Forwarded || !st.Killed || st.KillReason != "grace_expired" || st.KilledNs-st.AtNs < int64(time.Second) {
		t.Errorf("meta command.stop %+v", st)
	}
	if !m.Complete || m.Status != trace.StatusInterrupted || !hasWarning(m.Warnings, "command_killed") {
		t.Errorf("meta complete %v status %s warnings %+v", m.Complete, m.Status, m.Warnings)
	}
}

// A second stop signal kills at once, whatever the grace period.
func TestSecondSignalKillsAtOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, stderr := recordUntilRunning(t, dir, []string{"--stop-grace", "60s"}, "sh", "-c", `trap "" TERM INT; sleep 60; true`)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	code := exitCode(cmd.Wait())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	if code != 137 {
		t.Errorf("exit %d, want 137; stderr %s", code, stderr())
	}
	if st := readMeta(t, dir).Command.Stop; st == nil || st.KillReason != "second_signal" || st.Signal != "SIGTERM" {
		t.Errorf("meta command.stop %+v", st)
	}
}

// SIGHUP (a closed terminal) stops the command and the trace is finished.
func TestSIGHUPFinishesTheTrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, stderr := recordUntilRunning(t, dir, nil, "sleep", "60")
	cmd.Process.Signal(syscall.SIGHUP)
	if code := exitCode(cmd.Wait()); code != 128+1 {
		t.Errorf("exit %d, want 129 (sleep killed by SIGHUP); stderr %s", code, stderr())
	}
	m := readMeta(t, dir)
	if !m.Complete || m.Command.Stop == nil || m.Command.Stop.Signal != "SIGHUP" || m.Command.Stop.Killed {
		t.Errorf("complete %v stop %+v", m.Complete, m.Command.Stop)
	}
}

// The stop signal reaches grandchildren (the command's whole group), and
// processes the command leaves behind do not outlive the recording nor
// keep llem waiting on its output pipe.
func TestGrandchildrenAreStopped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, stderr := recordUntilRunning(t, dir, nil, "sh", "-c", `sleep 61 & sleep 62 & wait`)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(cmd.Wait()); code != 143 && code != 0 {
		t.Errorf("exit %d; stderr %s", code, stderr())
	}
	if p := findProcess("sleep 61", "sleep 62"); p != "" {
		t.Errorf("a grandchild outlived the recording: %s", p)
	}

	dir2 := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	// stdout is a pipe to this test: the leftover sleep holds it open.
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--stop-grace", "2s", "--out", dir2, "--", "sh", "-c", "sleep 63 & echo started; exit 0")
	if r.code != 0 || time.Since(start) > 8*time.Second {
		t.Errorf("exit %d after %v: %s", r.code, time.Since(start), r.stderr)
	}
	if p := findProcess("sleep 63"); p != "" {
		t.Errorf("a process left by the command outlived the recording: %s", p)
	}
	if m := readMeta(t, dir2); m.Command.Leftover != 1 || !strings.Contains(r.stderr, "left 1 process") {
		t.Errorf("leftover %d, stderr %s", m.Command.Leftover, r.stderr)
	}
}

// findProcess returns the command line of a living process running one
// of the given command lines.
func findProcess(lines ...string) string {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i+1:]), " Z") {
			continue
		}
		cl := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		for _, l := range lines {
			if cl == l {
				return e.Name() + ": " + cl
			}
		}
	}
	return ""
}

func TestCommandNotFoundAndNotExecutable(t *testing.T) {
	dir := t.TempDir()
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", filepath.Join(dir, "a"), "--", "no-such-command-llem")
	if r.code != 127 || !strings.Contains(r.stderr, `"no-such-command-llem" not found`) {
		t.Errorf("not found: exit %d %s", r.code, r.stderr)
	}
	script := filepath.Join(dir, "script.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o644)
	r = llem(t, nil, "record", "--device", "sim", "--quiet", "--out", filepath.Join(dir, "b"), "--", script)
	if r.code != 126 || !strings.Contains(r.stderr, "cannot be executed") {
		t.Errorf("not executable: exit %d %s", r.code, r.stderr)
	}
}

func TestNonFiniteFlagsAreRefused(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "Inf", "-Inf", "+Inf", "-1", "0"} {
		r := llem(t, nil, "record", "--device", "sim", "--quiet", "--replay-speed", v, "--out", filepath.Join(t.TempDir(), "r"), "--", "true")
		if r.code != 2 || !strings.Contains(r.stderr, "--replay-speed must be a number in (0, 1000]") {
			t.Errorf("--replay-speed %s: exit %d %s", v, r.code, r.stderr)
		}
	}
	for _, v := range []string{"-1s", "0s"} {
		r := llem(t, nil, "record", "--device", "sim", "--quiet", "--stop-grace", v, "--out", filepath.Join(t.TempDir(), "r"), "--", "true")
		if r.code != 2 || !strings.Contains(r.stderr, "--stop-grace must") {
			t.Errorf("--stop-grace %s: exit %d %s", v, r.code, r.stderr)
		}
	}
}
