package record_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// fakeNode plays the node's other tasks: it relays events from a goroutine
// while the command runs, and notes when each hook was called.
type fakeNode struct {
	mu       sync.Mutex
	calls    []string
	relaying sync.WaitGroup
	awaitAt  int64
	stop     chan struct{}
}

var _ record.NodeTasks = (*fakeNode)(nil)

func (n *fakeNode) note(s string) {
	n.mu.Lock()
	n.calls = append(n.calls, s)
	n.mu.Unlock()
}

func (n *fakeNode) Describe(m *trace.Meta) {
	n.note("describe")
	m.Job = &trace.JobInfo{Scheduler: "test", JobID: "1", Node: "n1"}
}

func (n *fakeNode) Relay(emit func([]trace.Event), emitBad func([]trace.BadEvent)) {
	n.note("relay")
	task := int32(1)
	n.relaying.Add(1)
	go func() {
		defer n.relaying.Done()
		for i := 0; ; i++ {
			select {
			case <-n.stop:
				emitBad([]trace.BadEvent{{TimestampNs: time.Now().UnixNano(), Reason: "invalid_json", Raw: []byte("{")}})
				return
			case <-time.After(20 * time.Millisecond):
				emit([]trace.Event{{TimestampNs: time.Now().UnixNano(), GPU: trace.GPUAll, Kind: "mark",
					Name: "from_task_1", Source: "client", Task: &task}})
			}
		}
	}()
}

func (n *fakeNode) Await(sigs <-chan os.Signal) bool {
	n.note("await")
	n.awaitAt = time.Now().UnixNano()
	time.Sleep(300 * time.Millisecond) // the other task ends 300 ms after this one
	return true
}

func (n *fakeNode) Close(m *trace.Meta) {
	n.note("close")
	close(n.stop)
	n.relaying.Wait()
	m.Events.Accepted += 1000 // the other tasks' counts are added here
}

func TestNodeTasksHooks(t *testing.T) {
	// The other task ends 300 ms after this task's command: the idle
	// phase after must start only then.
	n := &fakeNode{stop: make(chan struct{})}
	task := int32(0)
	dir := filepath.Join(t.TempDir(), "run")
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "0.3"}, Backend: sim.New(sim.Options{Seed: 1}),
		IdleAfter: 200 * time.Millisecond, RotateInterval: 200 * time.Millisecond,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{},
		Task: &task, Node: n,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"describe", "relay", "await", "close"}; len(n.calls) != 4 || n.calls[0] != want[0] ||
		n.calls[1] != want[1] || n.calls[2] != want[2] || n.calls[3] != want[3] {
		t.Fatalf("hooks called %v, want %v", n.calls, want)
	}
	if res.Meta.Job == nil || res.Meta.Job.Node != "n1" {
		t.Fatalf("Describe's job section is not in meta.json: %+v", res.Meta.Job)
	}
	if res.Meta.Events.Accepted < 1000 {
		t.Fatalf("Close's counts are not in meta.json: %+v", res.Meta.Events)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := trace.ReadTable[trace.Event](run, trace.TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	var relayed int
	var cycleEnd, idleAfter int64
	for _, e := range evs {
		switch {
		case e.Name == "from_task_1":
			relayed++
			if e.Task == nil || *e.Task != 1 {
				t.Fatalf("relayed event lost its task: %+v", e)
			}
		case e.Kind == "cycle_end":
			cycleEnd = e.TimestampNs
			if e.Task == nil || *e.Task != 0 {
				t.Errorf("cycle_end of task 0 has task %v", e.Task)
			}
		case e.Kind == "phase_start" && e.Name == "idle_after":
			idleAfter = e.TimestampNs
			if e.Task != nil {
				t.Errorf("the node's idle phase carries task %d", *e.Task)
			}
		}
	}
	if relayed < 5 {
		t.Fatalf("%d relayed events in the table; want one per 20 ms over ~0.6 s", relayed)
	}
	if cycleEnd == 0 || idleAfter == 0 {
		t.Fatal("no cycle_end or idle_after event")
	}
	if idleAfter < n.awaitAt || time.Duration(idleAfter-cycleEnd) < 300*time.Millisecond {
		t.Fatalf("idle_after began %v after the command ended: it must wait for the other task (~300 ms)",
			time.Duration(idleAfter-cycleEnd))
	}
	bad, err := trace.ReadTable[trace.BadEvent](run, trace.TableBadEvents)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 {
		t.Fatalf("%d relayed bad lines stored, want 1 (sent just before Close returned)", len(bad))
	}
}
