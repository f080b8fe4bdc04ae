package main_test

// End-to-end tests: they build the real llem binary and run it as a user
// would, on the simulated device, checking exit codes, stderr texts and the
// files written.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

var llemBin string

func TestMain(m *testing.M) {
	// Run inside a Slurm job step (a CI runner under Slurm), llem record
	// would record as one task of that job; these tests expect a plain run
	// unless they start their own Slurm jobs (slurm_test.go).
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SLURM") {
			os.Unsetenv(k)
		}
	}
	dir, err := os.MkdirTemp("", "llem-e2e-")
	if err != nil {
		panic(err)
	}
	llemBin = filepath.Join(dir, "llem")
	build := exec.Command("go", "build", "-o", llemBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building llem: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func llem(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(llemBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func info(t *testing.T, dir string) trace.Summary {
	t.Helper()
	r := llem(t, nil, "info", "--json", dir)
	if r.code != 0 {
		t.Fatalf("llem info %s: exit %d: %s", dir, r.code, r.stderr)
	}
	var s []trace.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || len(s) != 1 {
		t.Fatalf("llem info --json: %v\n%s", err, r.stdout)
	}
	return s[0]
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestSimRecordingWithEventsFromMarkAndPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	out := filepath.Join(t.TempDir(), "run")
	script := `set -e
"$LLEM" mark --kind phase_start measure
"$LLEM" mark checkpoint step=3 note=first
python3 "$ROOT/examples/sim_client.py"
"$LLEM" mark --kind phase_end measure
echo to-stdout`
	r := llem(t, []string{"LLEM=" + llemBin, "ROOT=" + repoRoot(t), "SIM_REQUESTS=8"},
		"record", "--device", "sim", "--seed", "3", "--out", out, "--idle-before", "1s", "--idle-after", "1s",
		"--rotate-interval", "1s", "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "to-stdout") || strings.Contains(r.stdout, "llem:") {
		t.Errorf("the child's stdout must pass through untouched: %q", r.stdout)
	}
	s := info(t, out)
	if !s.Complete || s.Status != trace.StatusComplete {
		t.Errorf("status %s complete %v", s.Status, s.Complete)
	}
	k := s.EventKinds
	// sim_client: warmup request + 8 measured requests; its phases plus ours.
	if k["request_start"] != 9 || k["request_end"] != 9 || k["first_token"] != 9 {
		t.Errorf("request events %v", k)
	}
	// Recorder: idle_before, idle_after; llem mark: measure; Python: warmup, measure.
	if k["phase_start"] != 5 || k["phase_end"] != 5 {
		t.Errorf("phase events %v", k)
	}
	if k["mark"] != 2 || k["cycle_start"] != 1 || k["cycle_end"] != 1 {
		t.Errorf("mark/cycle events %v", k)
	}
	if s.GPUs[0].DriverPowerHz < 45 || s.GPUs[0].DriverPowerHz > 55 || s.GPUs[0].MaxDriverGapMs > 25 {
		t.Errorf("driver power %.1f Hz, max gap %.0f ms", s.GPUs[0].DriverPowerHz, s.GPUs[0].MaxDriverGapMs)
	}
	if s.SimTruth == nil {
		t.Fatal("no sim_truth")
	}
	// The counter is read from the first to the last read; truth covers the
	// whole recording. They agree within a few percent on a short run.
	if d := (s.GPUs[0].CounterEnergyJ - s.SimTruth.EnergyJ) / s.SimTruth.EnergyJ; d > 0.02 || d < -0.25 {
		t.Errorf("counter %.1f J vs truth %.1f J", s.GPUs[0].CounterEnergyJ, s.SimTruth.EnergyJ)
	}

	run, err := trace.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := trace.ReadTable[trace.Event](run, trace.TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	var sawAttrs bool
	for _, e := range evs {
		if e.Kind == "mark" && e.Name == "checkpoint" {
			sawAttrs = e.Attrs == `{"note":"first","step":3}` && e.Source == "client" && e.ClientTimestampNs != nil
		}
	}
	if !sawAttrs {
		t.Errorf("checkpoint mark with attributes not found in events: %+v", evs)
	}
}

func TestExitCodeAndSignalPropagation(t *testing.T) {
	dir := t.TempDir()
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", filepath.Join(dir, "a"), "--", "sh", "-c", "exit 3")
	if r.code != 3 {
		t.Errorf("child exit 3: llem exit %d (%s)", r.code, r.stderr)
	}
	r = llem(t, nil, "record", "--device", "sim", "--quiet", "--out", filepath.Join(dir, "b"), "--", "sh", "-c", "kill -KILL $$")
	if r.code != 128+9 {
		t.Errorf("child killed by SIGKILL: llem exit %d, want 137", r.code)
	}
	var m trace.Meta
	b, _ := os.ReadFile(filepath.Join(dir, "b", "meta.json"))
	if err := json.Unmarshal(b, &m); err != nil || m.Command.ExitSignal != "SIGKILL" || *m.Command.ExitCode != 137 {
		t.Errorf("meta command %+v", m.Command)
	}
}

func TestCyclesStopAfterAFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	// The command fails on its second run (the marker file exists by then).
	marker := filepath.Join(t.TempDir(), "seen")
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", dir, "--cycles", "4",
		"--", "sh", "-c", "test ! -e "+marker+" && touch "+marker)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (%s)", r.code, r.stderr)
	}
	s := info(t, dir)
	if s.EventKinds["cycle_start"] != 2 {
		t.Errorf("cycles run: %v", s.EventKinds)
	}
	if !hasWarning(s.Warnings, "cycle_failed") {
		t.Errorf("no cycle_failed warning: %+v", s.Warnings)
	}
}

func hasWarning(ws []trace.Warning, code string) bool {
	for _, w := range ws {
		if w.Code == code {
			return true
		}
	}
	return false
}

// startRecord starts llem record in the background.
func startRecord(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(llemBin, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &errb
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func segments(dir, table string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, table, "part-*.parquet"))
	return m
}

func TestSIGTERMIsForwardedToTheCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, errb := startRecord(t, "record", "--device", "sim", "--quiet", "--out", dir, "--", "sleep", "30")
	waitFor(t, "the command to start", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "meta.json"))
		return bytes.Contains(b, []byte(`"status": "recording"`))
	})
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 128+15 {
		t.Fatalf("llem exit %v, want 143 (sleep killed by SIGTERM); stderr: %s", err, errb)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v to stop", time.Since(start))
	}
	if s := info(t, dir); !s.Complete {
		t.Errorf("the trace must be finished properly after forwarding SIGTERM")
	}
}

func TestKill9LeavesReadableSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, _ := startRecord(t, "record", "--device", "sim", "--quiet", "--out", dir,
		"--rotate-interval", "500ms", "--", "sleep", "60")
	// driver_power has one segment a minute, rewritten every rotation; the
	// state table one a rotation.
	waitFor(t, "three device_state segments", func() bool { return len(segments(dir, trace.TableState)) >= 3 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// Every segment present is a whole Parquet file.
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Meta.Complete || run.Meta.Status != trace.StatusRecording {
		t.Errorf("meta.json of a killed recorder must say incomplete: %s %v", run.Meta.Status, run.Meta.Complete)
	}
	for _, table := range []string{trace.TableDriverPower, trace.TableState, trace.TableEnergy} {
		if len(run.Segments[table]) == 0 {
			t.Errorf("no %s segment survived", table)
		}
	}
	rows, err := trace.ReadTable[trace.DriverPowerSample](run, trace.TableDriverPower)
	if err != nil {
		t.Fatalf("reading segments after kill -9: %v", err)
	}
	if len(rows) < 50 {
		t.Errorf("only %d driver samples survived", len(rows))
	}
	r := llem(t, nil, "info", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "INCOMPLETE") {
		t.Errorf("llem info on a killed run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The orphaned command is not llem's to clean up, but it must not be
	// left to outlive the test.
	_ = exec.Command("pkill", "-f", "sleep 60").Run()
}

func TestBadEventsAreKeptAside(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	dir := filepath.Join(t.TempDir(), "run")
	sender := `
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["LLEM_EVENTS"])
s.sendall(b'not json\n{"kind":"nonsense"}\n\xff\xfe\n{"kind":"mark","name":"ok"}\n' + b'x' * 100000 + b'\n')
s.close()
`
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", dir, "--", "python3", "-c", sender)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ev := run.Meta.Events; ev.Bad != 4 || ev.Accepted != 1 || ev.BadKept != 4 {
		t.Errorf("event stats %+v, want 4 bad, 1 accepted", ev)
	}
	bad, err := trace.ReadTable[trace.BadEvent](run, trace.TableBadEvents)
	if err != nil || len(bad) != 4 {
		t.Fatalf("bad_events %d rows, err %v", len(bad), err)
	}
	reasons := map[string]bool{}
	for _, b := range bad {
		reasons[b.Reason] = true
		if len(b.Raw) > trace.MaxBadEventRaw {
			t.Errorf("raw line kept whole (%d bytes)", len(b.Raw))
		}
	}
	for _, want := range []string{"invalid_json", "unknown_kind", "invalid_utf8", "oversized"} {
		if !reasons[want] {
			t.Errorf("no bad event with reason %s (got %v)", want, reasons)
		}
	}
}

func TestMissingDriverFailsBeforeTheCommand(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA driver")
	}
	marker := filepath.Join(t.TempDir(), "ran")
	out := filepath.Join(t.TempDir(), "run")
	r := llem(t, []string{"LD_LIBRARY_PATH=/nonexistent"}, "record", "--out", out, "--", "touch", marker)
	if r.code == 0 {
		t.Fatal("llem record without a driver must fail")
	}
	if !strings.Contains(r.stderr, "libnvidia-ml.so.1") || !strings.Contains(r.stderr, "--device sim") {
		t.Errorf("the error must name the library and suggest --device sim: %s", r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although recording could not start")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a run directory was created although recording could not start")
	}
}

func TestReplayOfASimRun(t *testing.T) {
	base := t.TempDir()
	orig := filepath.Join(base, "orig")
	if r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", orig, "--", "sleep", "3"); r.code != 0 {
		t.Fatalf("record: %s", r.stderr)
	}
	rep := filepath.Join(base, "replayed")
	r := llem(t, nil, "record", "--device", "replay:"+orig, "--replay-speed", "4", "--quiet", "--out", rep, "--", "sleep", "1")
	if r.code != 0 {
		t.Fatalf("replay: %s", r.stderr)
	}
	a, b := info(t, orig), info(t, rep)
	if b.Device != "replay:"+orig {
		t.Errorf("device %q", b.Device)
	}
	// 1 s of replay at 4x covers ~4 s of the 3 s recording: nearly every sample.
	if b.GPUs[0].DriverPowerRows < a.GPUs[0].DriverPowerRows*2/3 {
		t.Errorf("replayed %d of %d driver samples", b.GPUs[0].DriverPowerRows, a.GPUs[0].DriverPowerRows)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"record", "--device", "sim"}, "no command given"},
		{[]string{"record", "--device", "sim", "--cycles", "0", "--", "true"}, "--cycles must be at least 1"},
		{[]string{"record", "--device", "sim", "--state-interval", "1ms", "--", "true"}, "--state-interval must be between 10ms"},
		{[]string{"record", "--device", "sim", "--gpus", "0,x", "--", "true"}, `--gpus: "x" is not a GPU index`},
		{[]string{"record", "--device", "sim", "--gpus", "3", "--", "true"}, "--gpus: GPU 3 is not visible"},
		{[]string{"record", "--device", "gpu", "--", "true"}, `--device "gpu": want nvml, sim or replay:RUN_DIR`},
		{[]string{"record", "--device", "sim", "--label", "oops", "--", "true"}, `--label "oops": want key=value`},
		{[]string{"record", "--device", "sim", "--", "no-such-command-xyz"}, `command "no-such-command-xyz"`},
		{[]string{"record", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"info"}, "info: no run given"},
		{[]string{"info", "/nonexistent"}, "/nonexistent: not an llem run"},
		{[]string{"mark", "x"}, "LLEM_EVENTS is not set"},
		{[]string{"mark", "--kind", "request_end"}, "mark:"},
	} {
		r := llem(t, []string{"LLEM_EVENTS="}, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, "llem: ") {
			t.Errorf("llem %s: exit %d, stderr %q; want an error containing %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "panic") {
			t.Errorf("llem %s panicked", strings.Join(tc.args, " "))
		}
	}
}

func TestOutDirIsNeverOverwritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", dir, "--", "true"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", dir, "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "exists and is not empty") {
		t.Errorf("second record into %s: exit %d %s", dir, r.code, r.stderr)
	}
}

func TestHelpTeaches(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"record", "--help"}, {"info", "--help"}, {"mark", "--help"}, {"load", "--help"}} {
		r := llem(t, nil, args...)
		// Every help names the command; each subcommand's help shows examples.
		wantExamples := args[0] != "--help"
		if r.code != 0 || !strings.Contains(r.stdout, "llem ") ||
			wantExamples && !strings.Contains(strings.ToLower(r.stdout), "example") {
			t.Errorf("llem %v: exit %d\n%s", args, r.code, r.stdout)
		}
	}
}

// llem help, version, man and the bash completion work as a user types
// them; the completion asks this very binary for its words.
func TestHelpVersionManCompletion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "COMMANDS:"},
		{[]string{"version"}, "llem version "},
		{[]string{"man"}, ".TH LLEM 1"},
		{[]string{"--help"}, "COMMANDS:"},
		{[]string{"help", "record"}, "llem record - run a command"},
		{[]string{"completion", "bash"}, "complete -o filenames -F _llem_complete llem"},
	} {
		r := llem(t, nil, c.args...)
		if r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Errorf("llem %v: exit %d, stdout lacks %q:\n%s%s", c.args, r.code, c.want, r.stdout, r.stderr)
		}
	}
	// After a command that takes files, the files of the directory (llem
	// offers no words there: no "help" subcommand).
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := `source <("$LLEM" completion bash)
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _llem_complete; echo "${COMPREPLY[*]}"; }
t llem ana; t llem analyze --js; t llem import nvidia; t llem info r`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LLEM="+llemBin, "PATH="+filepath.Dir(llemBin)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion: %v: %s", err, out)
	}
	if got, want := string(out), "analyze\n--json\nnvidia-smi\nrun-a\n"; got != want {
		t.Errorf("completions %q, want %q", got, want)
	}
}

// The zsh completion, sourced as ~/.zshrc does, with zsh's completion
// functions replaced by ones that print what they were given: commands
// come with their usage, flags and subcommands from llem, files where
// llem has nothing. CI installs zsh; elsewhere the test needs it.
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh not found (apt-get install zsh): the zsh completion is not run")
	}
	script := `compdef() { print "compdef $*"; }
_describe() { local n=$2; print -rl -- "${(@P)n}"; }
_files() { print "<files>"; }
source <("$LLEM" completion zsh)
t() { words=("$@"); CURRENT=${#words}; print "== $words"; _llem; }
t llem ana; t llem analyze --js; t llem import ""; t llem info ""`
	cmd := exec.Command(zsh, "-f", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "LLEM="+llemBin, "PATH="+filepath.Dir(llemBin)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zsh completion: %v: %s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"compdef _llem llem\n",
		"== llem ana\nrecord:run a command while recording its GPUs and events\n",
		"analyze:",
		"== llem analyze --js\n--json\n== llem import \nnvidia-smi:CSV from nvidia-smi",
		"\ndcgm:",
		"== llem info \n<files>\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("zsh completion output lacks %q:\n%s", want, got)
		}
	}
}
