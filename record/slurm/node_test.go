package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// The test binary doubles as a task's command: with LLEM_TEST_CLIENT=N it
// sends N marks and one bad line to $LLEM_EVENTS and exits with
// $LLEM_TEST_EXIT.
func TestMain(m *testing.M) {
	if n := os.Getenv("LLEM_TEST_CLIENT"); n != "" {
		os.Exit(testClient(n))
	}
	os.Exit(m.Run())
}

func testClient(n string) int {
	count, _ := strconv.Atoi(n)
	c, err := net.Dial("unix", os.Getenv("LLEM_EVENTS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "test client:", err)
		return 99
	}
	var b strings.Builder
	for i := range count {
		fmt.Fprintf(&b, `{"kind":"mark","name":"m%d"}`+"\n", i)
	}
	// Zero is a value, not an absence: it must survive the relay.
	b.WriteString(`{"kind":"request_end","id":"r0","input_tokens":0,"output_tokens":0}` + "\n")
	b.WriteString("{\n") // a bad line: it must arrive too, in bad_events
	if _, err := c.Write([]byte(b.String())); err != nil {
		fmt.Fprintln(os.Stderr, "test client:", err)
		return 98
	}
	c.Close()
	code, _ := strconv.Atoi(os.Getenv("LLEM_TEST_EXIT"))
	return code
}

// shortTemp points TMPDIR (where tasks meet) at a short private folder:
// t.TempDir() paths can exceed a Unix socket's 107 bytes.
func shortTemp(t *testing.T) {
	dir, err := os.MkdirTemp("", "lt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
}

// nodeTasks are the two tasks of node n1 of a one-node step.
func nodeTasks(job string) (sampler, relay *Task) {
	base := Task{JobID: job, StepID: "0", Node: "n1", Tasks: 2, Nodes: 1, TasksOnNode: 2, NodeRanks: []int{0, 1}}
	s, r := base, base
	r.Rank, r.LocalRank = 1, 1
	return &s, &r
}

func clientConfig() record.Config {
	return record.Config{Argv: []string{os.Args[0], "-test.run=^$"}, Cycles: 1,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{}}
}

func setClient(t *testing.T, marks, exit int) {
	t.Setenv("LLEM_TEST_CLIENT", strconv.Itoa(marks))
	t.Setenv("LLEM_TEST_EXIT", strconv.Itoa(exit))
}

type relayOutcome struct {
	code int
	err  error
}

func startRelay(t *testing.T, task *Task, jobDir string, cfg record.Config) <-chan relayOutcome {
	out := make(chan relayOutcome, 1)
	go func() {
		code, err := RunRelay(context.Background(), task, jobDir, cfg, Options{LlemVersion: "test", Log: cfg.Log})
		out <- relayOutcome{code, err}
	}()
	return out
}

func readRun(t *testing.T, dir string) (*trace.Run, []trace.Event, []trace.BadEvent) {
	t.Helper()
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := trace.ReadTable[trace.Event](run, trace.TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := trace.ReadTable[trace.BadEvent](run, trace.TableBadEvents)
	if err != nil {
		t.Fatal(err)
	}
	return run, evs, bad
}

// The relay task starts, and its command sends all its events and exits,
// before the sampler exists: nothing is lost, every event keeps its task
// number, and the sampler waits for the relay before its idle phase after.
func TestRelayBeforeSampler(t *testing.T) {
	shortTemp(t)
	setClient(t, 200, 4)
	jobDir := t.TempDir()
	st, rt := nodeTasks("101")
	relay := startRelay(t, rt, jobDir, clientConfig())

	time.Sleep(700 * time.Millisecond) // the relay's command has run and ended by now
	node, err := StartNode(st, jobDir, Options{LlemVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rank := int32(0)
	res, recErr := record.Record(context.Background(), record.Config{
		OutDir: node.RunDir(), Argv: []string{"true"}, Backend: sim.New(sim.Options{Seed: 1}),
		IdleAfter: 100 * time.Millisecond, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{},
		Task: &rank, Node: node,
	})
	if err := node.Finish(res, recErr); err != nil || recErr != nil {
		t.Fatal(err, recErr)
	}
	r := <-relay
	if r.err != nil || r.code != 4 {
		t.Fatalf("relay: exit %d, %v; want its command's 4", r.code, r.err)
	}

	_, evs, bad := readRun(t, node.RunDir())
	marks := 0
	var taskEnd *trace.Event
	for i, e := range evs {
		if e.Kind == "mark" {
			marks++
			if e.Task == nil || *e.Task != 1 {
				t.Fatalf("mark without task 1: %+v", e)
			}
		}
		if e.Kind == "task_end" {
			taskEnd = &evs[i]
		}
	}
	if marks != 200 || len(bad) != 1 {
		t.Fatalf("%d marks and %d bad lines in the node's run; want 200 and 1", marks, len(bad))
	}
	zeros := false
	for _, e := range evs {
		if e.Kind == "request_end" {
			zeros = e.InputTokens != nil && *e.InputTokens == 0 && e.OutputTokens != nil && *e.OutputTokens == 0
		}
	}
	if !zeros {
		t.Error("a relayed request_end lost its zero token counts")
	}
	if taskEnd == nil || taskEnd.Attrs != `{"exit_code":4}` || taskEnd.Task == nil || *taskEnd.Task != 1 {
		t.Fatalf("task_end: %+v", taskEnd)
	}
	m := res.Meta
	if m.Events.Accepted != 201 || m.Events.Bad != 1 {
		t.Errorf("node event counts %+v; want the relay's 201 accepted and 1 bad", m.Events)
	}
	nt := m.Job.NodeTasks
	if len(nt) != 2 || nt[1].Task != 1 || !nt[1].Reached || nt[1].ExitCode == nil || *nt[1].ExitCode != 4 {
		t.Fatalf("node tasks %+v", nt)
	}

	job, err := trace.ReadJob(jobDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Parts) != 2 || len(job.Missing) != 0 {
		t.Fatalf("job parts %d, missing %v", len(job.Parts), job.Missing)
	}
	rp := job.Parts[1]
	if rp.Role != trace.RoleRelay || rp.Status != trace.TaskComplete || rp.Relay == nil ||
		rp.Relay.Delivered != 204 || rp.Relay.Undelivered != 0 { // 200 marks, request_end, a bad line, task_start, task_end
		t.Fatalf("relay part %+v, relay %+v", rp, rp.Relay)
	}
	if f := job.Failed(); len(f) != 1 || f[0] != 1 {
		t.Fatalf("failed tasks %v, want [1]", f)
	}
	sp := job.Parts[0]
	if sp.Sampler == nil || sp.Sampler.RunDir != "n1" || len(sp.Sampler.GPUs) != 1 || sp.Sampler.GPUs[0].UUID == "" {
		t.Fatalf("sampler part %+v", sp.Sampler)
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), fmt.Sprintf("llem-%d", os.Getuid()), "101.0.n1")); !os.IsNotExist(err) {
		t.Errorf("the rendezvous folder is still there (%v)", err)
	}
}

// A sampler that fails to start leaves a marker: its node's other task
// stops waiting and keeps its events in the job directory.
func TestRelayKeepsEventsWhenSamplerFailed(t *testing.T) {
	shortTemp(t)
	setClient(t, 30, 0)
	jobDir := t.TempDir()
	st, rt := nodeTasks("102")
	node, err := StartNode(st, jobDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Finish(nil, fmt.Errorf("--device nvml: no driver")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := <-startRelay(t, rt, jobDir, clientConfig())
	if r.err != nil || r.code != 0 {
		t.Fatalf("relay: %d, %v", r.code, r.err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the relay waited %v for a sampler that had failed", time.Since(start))
	}
	checkUndelivered(t, jobDir, 1, 34)
	job, err := trace.ReadJob(jobDir)
	if err != nil {
		t.Fatal(err)
	}
	if p := job.Parts[0]; p.Status != trace.TaskFailed || !strings.Contains(p.Error, "no driver") {
		t.Fatalf("sampler part: %s %q", p.Status, p.Error)
	}
}

// A sampler that never comes (its llem was never started on this node):
// the relay waits samplerWait after its command, then keeps its events.
func TestRelayKeepsEventsWhenSamplerNeverCame(t *testing.T) {
	shortTemp(t)
	setClient(t, 5, 0)
	defer func(d time.Duration) { samplerWait = d }(samplerWait)
	samplerWait = 300 * time.Millisecond
	jobDir := t.TempDir()
	_, rt := nodeTasks("103")
	r := <-startRelay(t, rt, jobDir, clientConfig())
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkUndelivered(t, jobDir, 1, 9)
}

func checkUndelivered(t *testing.T, jobDir string, rank int, rows int64) {
	t.Helper()
	job, err := trace.ReadJob(jobDir)
	if err != nil {
		t.Fatal(err)
	}
	var p *trace.JobTask
	for i := range job.Parts {
		if job.Parts[i].Task == rank {
			p = &job.Parts[i]
		}
	}
	if p == nil || p.Relay == nil || p.Relay.Undelivered != rows || p.Relay.Delivered != 0 {
		t.Fatalf("relay part %+v", p)
	}
	// The kept tables read back whole: marks, request_end, the bad line, task_start/end.
	dir := filepath.Join(jobDir, p.Relay.UndeliveredDir)
	if err := trace.WriteMeta(dir, &trace.Meta{SchemaVersion: trace.SchemaVersion}); err != nil {
		t.Fatal(err)
	}
	_, evs, bad := readRun(t, dir)
	if int64(len(evs)+len(bad)) != rows || len(bad) != 1 {
		t.Fatalf("kept %d events and %d bad lines, want %d rows with 1 bad", len(evs), len(bad), rows)
	}
}

// A task of the node that never reaches the sampler is waited for
// connectGrace, then reported in meta.json.
func TestSamplerReportsUnreachedTask(t *testing.T) {
	shortTemp(t)
	defer func(d time.Duration) { connectGrace = d }(connectGrace)
	connectGrace = 200 * time.Millisecond
	jobDir := t.TempDir()
	st, _ := nodeTasks("104")
	var log bytes.Buffer
	node, err := StartNode(st, jobDir, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	res, recErr := record.Record(context.Background(), record.Config{
		OutDir: node.RunDir(), Argv: []string{"true"}, Backend: sim.New(sim.Options{Seed: 1}),
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{}, Node: node,
	})
	if err := node.Finish(res, recErr); err != nil || recErr != nil {
		t.Fatal(err, recErr)
	}
	nt := res.Meta.Job.NodeTasks
	if len(nt) != 2 || nt[1].Task != 1 || nt[1].Reached {
		t.Fatalf("node tasks %+v", nt)
	}
	found := false
	for _, w := range res.Meta.Warnings {
		found = found || w.Code == "task_unreached" && strings.Contains(w.Message, "task 1 of node n1")
	}
	if !found || !strings.Contains(log.String(), "task 1 of node n1 never reached the sampler") {
		t.Fatalf("no task_unreached warning: %+v\n%s", res.Meta.Warnings, log.String())
	}
}

// Several relays send at once while the sampler runs.
func TestManyRelays(t *testing.T) {
	shortTemp(t)
	setClient(t, 500, 0)
	jobDir := t.TempDir()
	const tasks = 4
	sampler := &Task{JobID: "105", StepID: "0", Node: "n1", Tasks: tasks, Nodes: 1, TasksOnNode: tasks}
	node, err := StartNode(sampler, jobDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for r := 1; r < tasks; r++ {
		rt := *sampler
		rt.Rank, rt.LocalRank = r, r
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o := <-startRelay(t, &rt, jobDir, clientConfig()); o.err != nil || o.code != 0 {
				t.Errorf("relay %d: %d, %v", rt.Rank, o.code, o.err)
			}
		}()
	}
	res, recErr := record.Record(context.Background(), record.Config{
		OutDir: node.RunDir(), Argv: []string{"true"}, Backend: sim.New(sim.Options{Seed: 1}),
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{}, Node: node,
	})
	if err := node.Finish(res, recErr); err != nil || recErr != nil {
		t.Fatal(err, recErr)
	}
	wg.Wait()
	_, evs, _ := readRun(t, node.RunDir())
	perTask := map[int32]int{}
	for _, e := range evs {
		if e.Kind == "mark" && e.Task != nil {
			perTask[*e.Task]++
		}
	}
	for _, nt := range res.Meta.Job.NodeTasks {
		if nt.ExitCode == nil || *nt.ExitCode != 0 {
			t.Errorf("task %d: exit code %v, want 0 (a zero is not an absence)", nt.Task, nt.ExitCode)
		}
	}
	for r := int32(1); r < tasks; r++ {
		if perTask[r] != 500 {
			t.Errorf("task %d: %d marks in the node's run, want 500", r, perTask[r])
		}
	}
}

// A second step written into the same job directory is refused before
// anything of the first is overwritten.
func TestSecondStepIntoSameDirectoryRefused(t *testing.T) {
	shortTemp(t)
	jobDir := t.TempDir()
	st, rt := nodeTasks("106")
	node, err := StartNode(st, jobDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Finish(nil, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(jobDir, trace.ManifestDir, trace.TaskFile(0)))
	st.StepID = "1"
	var ce *record.ConfigError
	if _, err := StartNode(st, jobDir, Options{}); !errors.As(err, &ce) || ce.Field != "OutDir" ||
		!strings.Contains(ce.Msg, jobDir+" already holds a recording of task 0") {
		t.Fatalf("sampler of step 1: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(jobDir, trace.ManifestDir, trace.TaskFile(0)))
	if !bytes.Equal(before, after) {
		t.Fatal("step 0's part was overwritten")
	}
	setClient(t, 1, 0)
	rt.StepID = "1"
	if err := trace.WriteJobTask(jobDir, &trace.JobTask{ManifestVersion: trace.ManifestVersion, Task: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := RunRelay(context.Background(), rt, jobDir, clientConfig(), Options{}); err == nil ||
		!strings.Contains(err.Error(), "already holds a recording of task 1") {
		t.Fatalf("relay of step 1: %v", err)
	}
}
