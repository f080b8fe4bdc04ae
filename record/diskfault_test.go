package record_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// syncLog is a log the test may read while the recorder writes it, with
// the time each line arrived.
type syncLog struct {
	mu    sync.Mutex
	b     bytes.Buffer
	times []time.Time
	lines []string
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.times = append(l.times, time.Now())
	l.lines = append(l.lines, string(p))
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// firstLine is when a line containing s was written (zero if none).
func (l *syncLog) firstLine(s string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, line := range l.lines {
		if strings.Contains(line, s) {
			return l.times[i]
		}
	}
	return time.Time{}
}

// recordAsync runs Record on the simulated device in the background.
func recordAsync(cfg record.Config) (<-chan *record.Result, <-chan error) {
	resC, errC := make(chan *record.Result, 1), make(chan error, 1)
	go func() {
		res, err := record.Record(context.Background(), cfg)
		resC <- res
		errC <- err
	}()
	return resC, errC
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStopsEarly checks a run whose disk failed: the command ran to its
// end with its exit code, meta.json says where the data stops and why,
// with a gap to the end, and every segment written is whole.
func checkStopsEarly(t *testing.T, dir string, res *record.Result, why string) {
	t.Helper()
	m := res.Meta
	if res.ExitCode != 0 || m.Command.ExitCode == nil || *m.Command.ExitCode != 0 {
		t.Errorf("the command's exit code must stand: %d", res.ExitCode)
	}
	if m.DataEndsNs <= m.Clock.WallStartNs || m.DataEndsNs >= m.Command.EndNs || !strings.Contains(m.DataEndsReason, why) {
		t.Errorf("data_ends_ns %d (start %d, command end %d), reason %q (want %q)", m.DataEndsNs, m.Clock.WallStartNs, m.Command.EndNs, m.DataEndsReason, why)
	}
	disk, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if disk.DataEndsNs != m.DataEndsNs || disk.Status != trace.StatusComplete || len(disk.Gaps) != 1 || disk.Gaps[0].Code != "data_ends" || disk.Gaps[0].StartNs != m.DataEndsNs {
		t.Errorf("meta.json on disk: data_ends_ns %d status %s gaps %+v", disk.DataEndsNs, disk.Status, disk.Gaps)
	}
	rep, err := trace.Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Damage {
		if d.Lost {
			t.Errorf("a written segment is damaged: %+v", d)
		}
	}
	if len(rep.Problems) > 0 {
		t.Errorf("problems: %+v", rep.Problems)
	}
	if _, err := os.Stat(filepath.Join(dir, ".llem-reserve")); !os.IsNotExist(err) {
		t.Errorf("the space reserve is left behind")
	}
}

// A write error (here ENOSPC from /dev/full standing in for the third
// device_state segment) is reported at once, naming the file; the command
// runs to its end; meta.json says where the data stops. The segment is
// written about 2 s in; the command runs 6 s, so a report that waited for
// the end would come at least 4 s late.
func TestWriteErrorStopsTheTraceNotTheCommand(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := filepath.Join(t.TempDir(), "run")
	log := &syncLog{}
	resC, errC := recordAsync(record.Config{
		OutDir: dir, Argv: []string{"sleep", "6"}, Backend: sim.New(sim.Options{Seed: 3}),
		RotateInterval: 300 * time.Millisecond,
		Stdout:         io.Discard, Stderr: io.Discard, Log: log,
	})
	seg := filepath.Join(dir, trace.TableState, trace.SegmentName(2)) + ".tmp"
	waitForFile(t, filepath.Join(dir, trace.TableState))
	if err := os.Symlink("/dev/full", seg); err != nil {
		t.Fatal(err)
	}
	res, err := <-resC, <-errC
	if err != nil {
		t.Fatal(err)
	}
	warned := log.firstLine("writing the trace failed")
	if warned.IsZero() || !strings.Contains(log.String(), seg) || !strings.Contains(log.String(), "no space left on device") {
		t.Fatalf("the failure must be reported, naming the file: %s", log)
	}
	if end := time.Unix(0, res.Meta.Command.EndNs); end.Sub(warned) < time.Second {
		t.Errorf("reported %v before the command ended: not at once\n%s", end.Sub(warned), log)
	}
	checkStopsEarly(t, dir, res, "no space left on device")
	if n := len(segmentsOf(dir, trace.TableState)); n != 2 {
		t.Errorf("%d device_state segments, want the 2 written before the failure", n)
	}
}

func segmentsOf(dir, table string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, table, "part-*.parquet"))
	return m
}

// The run directory removed while recording: said at once, the command
// runs to its end with its exit code, and the recorder does not fail.
func TestRunDirectoryRemovedWhileRecording(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	log := &syncLog{}
	resC, errC := recordAsync(record.Config{
		OutDir: dir, Argv: []string{"sh", "-c", `sleep 1; rm -rf "$LLEM_RUN_DIR"; sleep 1.5; exit 4`}, Backend: sim.New(sim.Options{Seed: 3}),
		RotateInterval: 300 * time.Millisecond,
		Stdout:         io.Discard, Stderr: io.Discard, Log: log,
	})
	res, err := <-resC, <-errC
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 4 {
		t.Errorf("exit %d, want the command's 4", res.ExitCode)
	}
	warned := log.firstLine("writing the trace failed")
	if warned.IsZero() || !strings.Contains(log.String(), dir) {
		t.Fatalf("the failure must be reported, naming the path: %s", log)
	}
	if end := time.Unix(0, res.Meta.Command.EndNs); end.Sub(warned) < 500*time.Millisecond {
		t.Errorf("reported %v before the command ended: not at once\n%s", end.Sub(warned), log)
	}
	if res.Meta.DataEndsNs == 0 {
		t.Errorf("no data_ends_ns")
	}
}

// A write that never returns (a FIFO nobody reads stands in for a hung
// disk) is reported after StallAfter; the recording ends on time with the
// command's exit code, and meta.json says where the data stops.
func TestStalledDiskIsReportedAndGivenUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	log := &syncLog{}
	resC, errC := recordAsync(record.Config{
		OutDir: dir, Argv: []string{"sleep", "3"}, Backend: sim.New(sim.Options{Seed: 3}),
		RotateInterval: 300 * time.Millisecond, StallAfter: time.Second,
		Stdout: io.Discard, Stderr: io.Discard, Log: log,
	})
	fifo := filepath.Join(dir, trace.TableState, trace.SegmentName(2)) + ".tmp"
	waitForFile(t, filepath.Join(dir, trace.TableState))
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Unblock the stuck writer when the test ends.
	t.Cleanup(func() {
		f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			time.Sleep(100 * time.Millisecond)
			io.Copy(io.Discard, f)
			f.Close()
		}
	})
	start := time.Now()
	res, err := <-resC, <-errC
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the recording took %v with a 3 s command and a 1 s stall limit", took)
	}
	warned := log.firstLine("has not returned for 1s")
	if warned.IsZero() || !strings.Contains(log.String(), dir) {
		t.Fatalf("the stall must be reported, naming the path: %s", log)
	}
	if end := time.Unix(0, res.Meta.Command.EndNs); end.Sub(warned) < 500*time.Millisecond {
		t.Errorf("reported %v before the command ended: not at once\n%s", end.Sub(warned), log)
	}
	m, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.DataEndsNs == 0 || !strings.Contains(m.DataEndsReason, "stalled") || res.ExitCode != 0 {
		t.Errorf("data_ends_ns %d reason %q exit %d", m.DataEndsNs, m.DataEndsReason, res.ExitCode)
	}
}

// CI's real full disk: a 2 MB tmpfs that the command itself fills, as a
// job writing checkpoints beside the trace would. Needs root (mount).
func TestFullTmpfs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a 2 MB tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	dir := filepath.Join(mnt, "run")
	log := &syncLog{}
	resC, errC := recordAsync(record.Config{
		OutDir: dir, Backend: sim.New(sim.Options{Seed: 3}), RotateInterval: 300 * time.Millisecond,
		Argv:   []string{"sh", "-c", `sleep 1.2; head -c 3000000 /dev/zero > "$LLEM_RUN_DIR/../filler" 2>/dev/null; sleep 2`},
		Stdout: io.Discard, Stderr: io.Discard, Log: log,
	})
	res, err := <-resC, <-errC
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "writing the trace failed") || !strings.Contains(log.String(), dir) {
		t.Fatalf("the full disk must be reported, naming the path: %s", log)
	}
	t.Logf("stderr:\n%s", log)
	checkStopsEarly(t, dir, res, "no space left on device")
	if len(segmentsOf(dir, trace.TableState)) == 0 {
		t.Errorf("the segments written before the disk filled are lost")
	}
}
