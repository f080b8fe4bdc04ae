package slurm

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

// Waits (variables so that tests can shorten them).
var (
	// How long a sampler waits, once its own command has ended, for a
	// task of its node that has not reached it at all (its llem failed to
	// start, or it runs something else). Tasks that have reached it are
	// waited for as long as their commands run.
	connectGrace = 30 * time.Second
	// After a signal (scancel, Ctrl-C on srun), the other tasks get the
	// same signal from Slurm; the sampler waits this much longer for
	// their exits.
	afterSignalWait = 10 * time.Second
	// How long a sampler on another node waits for the reference node's
	// clock-reference file.
	referenceWait = 30 * time.Second
)

// Options are what the sampler and relays need besides the task.
type Options struct {
	LlemVersion string
	Log         io.Writer // notices and warnings
}

// Node is the sampler's side of its node: it implements record.NodeTasks
// for the recorder (the other tasks' events and exits) and writes the
// sampler's part of the job manifest.
type Node struct {
	task   *Task
	jobDir string
	runDir string
	dir    string // the node's rendezvous folder
	opts   Options
	ln     *net.UnixListener
	part   trace.JobTask
	gpus   GPUChoice

	// Clocks.
	clock       *trace.ClockSync
	ref         *clockReference // on the reference node
	offsetCtx   context.Context
	stopOffsets context.CancelFunc
	offsetsWG   sync.WaitGroup

	mu       sync.Mutex
	relays   map[int]*relayState
	conns    map[net.Conn]bool
	stopped  bool
	emit     func([]trace.Event)
	emitBad  func([]trace.BadEvent)
	refDoc   *clockReferenceDoc
	changed  chan struct{} // a relay's state changed (capacity 1)
	attached chan struct{} // closed by Relay
	quit     chan struct{} // closed when relaying stops
	handlers sync.WaitGroup
}

var _ record.NodeTasks = (*Node)(nil)

// relayState is what the sampler knows of one other task of its node.
type relayState struct {
	hello wireHello
	open  int // connections open now
	end   *wireEnd
	lost  bool // a connection closed before End
}

// StartNode opens the node's rendezvous for the other tasks, reads the
// node's clock state, starts the clock-offset measurement and writes the
// sampler's manifest part. Call Finish when the recording is over, also
// when it failed.
func StartNode(t *Task, jobDir string, opts Options) (*Node, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	n := &Node{task: t, jobDir: jobDir, runDir: filepath.Join(jobDir, t.Node), opts: opts,
		relays: map[int]*relayState{}, conns: map[net.Conn]bool{},
		changed: make(chan struct{}, 1), attached: make(chan struct{}), quit: make(chan struct{})}
	n.part = newPart(t, trace.RoleSampler, opts.LlemVersion)
	n.part.Sampler = &trace.NodeSampling{RunDir: t.Node, GPUs: []trace.JobGPU{}}
	if err := writeFirstPart(jobDir, &n.part); err != nil {
		return nil, err
	}
	fail := func(err error) (*Node, error) {
		n.Finish(nil, err)
		return nil, err
	}
	var err error
	if n.dir, err = rendezvousDir(t); err != nil {
		return fail(err)
	}
	// Leftovers of a killed sampler of this very step and node: the
	// socket file would refuse the bind, the marker would stop relays.
	os.Remove(filepath.Join(n.dir, failedMarker))
	os.Remove(filepath.Join(n.dir, nodeSocket))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(n.dir, nodeSocket), Net: "unix"})
	if err != nil {
		return fail(fmt.Errorf("task rendezvous: %w", err))
	}
	n.ln = ln
	n.handlers.Add(1)
	go n.accept()

	n.clock = clockAtStart()
	n.offsetCtx, n.stopOffsets = context.WithCancel(context.Background())
	if t.NodeIndex == 0 {
		if n.ref, err = serveClockReference(jobDir, t); err != nil {
			n.clock.OffsetNote = err.Error()
		} else {
			n.clock.ReferenceNode = t.Node
			n.clock.OffsetNote = "this node is the reference"
		}
	} else {
		n.offsetsWG.Add(1)
		go n.measureAt("start", referenceWait)
	}
	return n, nil
}

// RunDir is the node's run directory, where the recorder writes.
func (n *Node) RunDir() string { return n.runDir }

// SetGPUs records which GPUs the node's recording samples and why.
func (n *Node) SetGPUs(c GPUChoice) { n.gpus = c }

// writeFirstPart writes a task's manifest part when it starts, refusing a
// job directory that already has a part for this task: another step's (or
// a requeued job's) would be overwritten.
func writeFirstPart(jobDir string, p *trace.JobTask) error {
	path := filepath.Join(jobDir, trace.ManifestDir, trace.TaskFile(p.Task))
	if _, err := os.Stat(path); err == nil {
		return &record.ConfigError{Field: "OutDir", Msg: fmt.Sprintf(
			"%s already holds a recording of task %d (%s); give every job step its own directory, e.g. traces/%%j.%%s",
			jobDir, p.Task, path)}
	}
	if err := trace.WriteJobTask(jobDir, p); err != nil {
		return &record.ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: %v", jobDir, err)}
	}
	return nil
}

func newPart(t *Task, role, version string) trace.JobTask {
	host, _ := os.Hostname()
	return trace.JobTask{ManifestVersion: trace.ManifestVersion, LlemVersion: version, Scheduler: "slurm",
		JobID: t.JobID, StepID: t.StepID, JobName: t.JobName, Tasks: t.Tasks, Nodes: t.Nodes,
		Task: t.Rank, LocalTask: t.LocalRank, Node: t.Node, NodeIndex: t.NodeIndex, TasksOnNode: t.TasksOnNode,
		Hostname: host, Role: role, Status: trace.TaskRunning}
}

// measureAt measures the clock offset to the reference node, waiting up to
// wait for its file, and adds it (or why it failed) to the node's clock.
func (n *Node) measureAt(at string, wait time.Duration) {
	defer n.offsetsWG.Done()
	n.mu.Lock()
	doc := n.refDoc
	n.mu.Unlock()
	var err error
	if doc == nil {
		doc, err = readClockReference(n.offsetCtx, n.jobDir, n.task, wait)
	}
	var off trace.ClockOffset
	if err == nil {
		off, err = measureOffset(n.offsetCtx, doc, at)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if doc != nil {
		n.refDoc = doc
		n.clock.ReferenceNode = doc.Node
	}
	if err != nil {
		note := fmt.Sprintf("%s: %v", at, err)
		if n.clock.OffsetNote != "" {
			note = n.clock.OffsetNote + "; " + note
		}
		n.clock.OffsetNote = note
		return
	}
	n.clock.Offsets = append(n.clock.Offsets, off)
}

func (n *Node) accept() {
	defer n.handlers.Done()
	for {
		c, err := n.ln.AcceptUnix()
		if err != nil {
			return // closed by stopRelaying
		}
		n.mu.Lock()
		if n.stopped {
			n.mu.Unlock()
			c.Close()
			continue
		}
		n.conns[c] = true
		n.handlers.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.handlers.Done()
			n.serve(c)
			n.mu.Lock()
			delete(n.conns, c)
			n.mu.Unlock()
			c.Close()
		}()
	}
}

// serve reads one relay's stream: Hello, then batches, then End. Every
// message is acknowledged once its rows are with the trace writer.
func (n *Node) serve(c net.Conn) {
	dec := json.NewDecoder(bufio.NewReader(c))
	var hello wireMsg
	if err := dec.Decode(&hello); err != nil || hello.Hello == nil {
		fmt.Fprintf(n.opts.Log, "llem: task rendezvous: a connection that did not introduce itself was closed (%v)\n", err)
		return
	}
	rank := hello.Hello.Rank
	n.mu.Lock()
	st := n.relays[rank]
	if st == nil {
		st = &relayState{}
		n.relays[rank] = st
	}
	st.hello, st.lost = *hello.Hello, false
	st.open++
	n.mu.Unlock()
	n.notify()
	ended := false
	defer func() {
		n.mu.Lock()
		st.open--
		if !ended && st.end == nil {
			st.lost = true
		}
		n.mu.Unlock()
		n.notify()
	}()
	if _, err := c.Write([]byte{ackByte}); err != nil {
		return
	}
	// Rows wait here until the recorder's trace writer is attached; the
	// relay keeps them meanwhile.
	select {
	case <-n.attached:
	case <-n.quit:
		return
	}
	for {
		var msg wireMsg
		if err := dec.Decode(&msg); err != nil {
			if !errors.Is(err, io.EOF) && !n.isStopped() {
				fmt.Fprintf(n.opts.Log, "llem: task %d's event relay broke: %v\n", rank, err)
			}
			return
		}
		if len(msg.Events) > 0 {
			n.emit(msg.Events)
		}
		if len(msg.Bad) > 0 {
			n.emitBad(msg.Bad)
		}
		// Acknowledge before reporting the end: once Await sees it, the
		// connection may be closed, and the relay must have its answer.
		_, werr := c.Write([]byte{ackByte})
		if msg.End != nil {
			end := *msg.End
			n.mu.Lock()
			st.end, ended = &end, true
			n.mu.Unlock()
			n.notify()
		}
		if werr != nil {
			return
		}
	}
}

func (n *Node) notify() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

func (n *Node) isStopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped
}

// Describe implements record.NodeTasks.
func (n *Node) Describe(m *trace.Meta) {
	t := n.task
	m.Job = &trace.JobInfo{Scheduler: "slurm", JobID: t.JobID, StepID: t.StepID, JobName: t.JobName,
		Node: t.Node, NodeIndex: t.NodeIndex, Nodes: t.Nodes, Tasks: t.Tasks, SamplerTask: t.Rank,
		GPUSource: n.gpus.Source, GPUEnv: t.GPUEnv}
	m.ClockSync = n.clockCopy()
	if k := m.ClockSync.Start; k != nil && k.Error == "" && !k.Synced {
		w := trace.Warning{Code: "clock_unsynced", Message: fmt.Sprintf(
			"node %s's clock is not synchronised (adjtimex state %d, status 0x%x): its timestamps can drift from other nodes' during the run, beyond the offset measured at the start",
			t.Node, k.State, k.Status)}
		m.Warnings = append(m.Warnings, w)
		fmt.Fprintf(n.opts.Log, "llem: warning: %s\n", w.Message)
	}
}

func (n *Node) clockCopy() *trace.ClockSync {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := *n.clock
	c.Offsets = slices.Clone(c.Offsets)
	return &c
}

// Relay implements record.NodeTasks.
func (n *Node) Relay(emit func([]trace.Event), emitBad func([]trace.BadEvent)) {
	n.mu.Lock()
	n.emit, n.emitBad = emit, emitBad
	n.mu.Unlock()
	close(n.attached)
}

// Await implements record.NodeTasks: it returns once every other task of
// the node has reported its command's end (or its connection was lost),
// and every task expected on the node has reached the sampler, or has had
// connectGrace to do so.
func (n *Node) Await(sigs <-chan os.Signal) bool {
	expected := max(n.task.TasksOnNode-1, 0)
	graceEnd := time.Now().Add(connectGrace)
	var cutoff time.Time // set by a signal
	announced := false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer func() {
		// The end-of-run offset, while the reference is surely still up.
		if n.task.NodeIndex != 0 {
			n.offsetsWG.Add(1)
			go n.measureAt("end", 0)
		}
	}()
	for {
		n.mu.Lock()
		running, seen := 0, len(n.relays)
		for _, st := range n.relays {
			if st.end == nil && !st.lost {
				running++
			}
		}
		n.mu.Unlock()
		now := time.Now()
		if running == 0 && (seen >= expected || now.After(graceEnd)) {
			return true
		}
		if !cutoff.IsZero() && now.After(cutoff) {
			return false
		}
		if !announced && (running > 0 || seen < expected) {
			fmt.Fprintf(n.opts.Log, "llem: waiting for the other %d task(s) of node %s to end their commands\n",
				max(expected, seen), n.task.Node)
			announced = true
		}
		select {
		case <-n.changed:
		case <-tick.C:
		case <-sigs:
			if cutoff.IsZero() {
				cutoff = time.Now().Add(afterSignalWait)
				fmt.Fprintf(n.opts.Log, "llem: interrupted while waiting for the node's other tasks; waiting %v more for their exits\n", afterSignalWait)
			}
		}
	}
}

// stopRelaying closes the rendezvous and waits for every connection's
// reader, so no rows arrive afterwards. Safe to call twice.
func (n *Node) stopRelaying() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	close(n.quit)
	if n.ln != nil {
		n.ln.Close()
	}
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.handlers.Wait()
}

// Close implements record.NodeTasks.
func (n *Node) Close(m *trace.Meta) {
	n.stopRelaying()
	// Offsets: one still waiting for the reference file gives up now.
	n.stopOffsets()
	n.offsetsWG.Wait()
	n.mu.Lock()
	n.clock.End = readKernelClock()
	// A start measurement that waited long for the reference file may
	// have finished after the end one.
	slices.SortFunc(n.clock.Offsets, func(a, b trace.ClockOffset) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	n.mu.Unlock()
	m.ClockSync = n.clockCopy()

	if m.Job == nil {
		n.Describe(m)
	}
	own := m.Events
	self := trace.NodeTask{Task: n.task.Rank, LocalTask: n.task.LocalRank, Role: trace.RoleSampler, Reached: true,
		Events: &own}
	if c := m.Command; c != nil {
		self.ExitCode, self.ExitSignal, self.StartNs, self.EndNs = c.ExitCode, c.ExitSignal, c.StartNs, c.EndNs
	}
	tasks := []trace.NodeTask{self}
	n.mu.Lock()
	ranks := make([]int, 0, len(n.relays))
	for r := range n.relays {
		ranks = append(ranks, r)
	}
	slices.Sort(ranks)
	for _, r := range ranks {
		st := n.relays[r]
		nt := trace.NodeTask{Task: r, LocalTask: st.hello.LocalRank, Role: trace.RoleRelay, Reached: true}
		switch {
		case st.end != nil:
			ev := st.end.Events
			nt.Events = &ev
			nt.Error = st.end.Error
			c := st.end.Command
			nt.ExitCode, nt.ExitSignal, nt.StartNs, nt.EndNs = c.ExitCode, c.ExitSignal, c.StartNs, c.EndNs
			addEvents(&m.Events, ev)
		default:
			nt.Error = "its llem ended (or was cut off) without reporting its command's exit"
			m.Warnings = append(m.Warnings, trace.Warning{Code: "task_lost", Message: fmt.Sprintf(
				"task %d of node %s stopped talking to the sampler before its command ended; its exit code is not known here (see %s/%s)",
				r, n.task.Node, trace.ManifestDir, trace.TaskFile(r))})
		}
		tasks = append(tasks, nt)
	}
	n.mu.Unlock()
	for _, r := range n.task.NodeRanks {
		if r != n.task.Rank && !slices.Contains(ranks, r) {
			tasks = append(tasks, trace.NodeTask{Task: r, Role: trace.RoleRelay, Reached: false})
			m.Warnings = append(m.Warnings, trace.Warning{Code: "task_unreached", Message: fmt.Sprintf(
				"task %d of node %s never reached the sampler: its events and exit code are not in this run (see %s/%s)",
				r, n.task.Node, trace.ManifestDir, trace.TaskFile(r))})
		}
	}
	if missing := n.task.TasksOnNode - len(tasks); len(n.task.NodeRanks) == 0 && missing > 0 {
		m.Warnings = append(m.Warnings, trace.Warning{Code: "task_unreached", Message: fmt.Sprintf(
			"%d task(s) of node %s never reached the sampler: their events and exit codes are not in this run", missing, n.task.Node)})
	}
	m.Job.NodeTasks = tasks
	for _, w := range m.Warnings {
		if w.Code == "task_lost" || w.Code == "task_unreached" {
			fmt.Fprintf(n.opts.Log, "llem: warning: %s\n", w.Message)
		}
	}
}

func addEvents(sum *trace.EventStats, e trace.EventStats) {
	sum.Received += e.Received
	sum.Accepted += e.Accepted
	sum.Bad += e.Bad
	sum.BadKept += e.BadKept
	sum.Dropped += e.Dropped
}

// Finish ends the node's part of the job: it writes the sampler's manifest
// part from the recording's result (or its error), stops the clock
// reference and removes the rendezvous. After an error it leaves a marker
// there so that the node's other tasks stop waiting for a sampler that
// will not come, and keep their events in the job directory instead.
func (n *Node) Finish(res *record.Result, recErr error) error {
	n.stopRelaying()
	if n.stopOffsets != nil {
		n.stopOffsets()
	}
	n.offsetsWG.Wait()
	if n.ref != nil {
		n.ref.close()
	}
	p := &n.part
	p.Status = trace.TaskComplete
	if res != nil && res.Meta != nil {
		m := res.Meta
		p.Command = m.Command
		own := m.Events
		if m.Job != nil && len(m.Job.NodeTasks) > 0 && m.Job.NodeTasks[0].Events != nil {
			own = *m.Job.NodeTasks[0].Events
		}
		p.Events = &own
		p.Sampler.RunStatus = m.Status
		if m.Status == trace.StatusInterrupted {
			p.Status = trace.TaskInterrupted
		}
		for _, g := range m.GPUs {
			p.Sampler.GPUs = append(p.Sampler.GPUs, trace.JobGPU{Index: g.Index, UUID: g.UUID, PCIBusID: g.PCIBusID, Name: g.Name})
		}
		p.Sampler.Clock = m.ClockSync
	} else if n.clock != nil {
		p.Sampler.Clock = n.clockCopy()
	}
	p.Sampler.GPUSource, p.Sampler.GPUEnv = n.gpus.Source, n.task.GPUEnv
	if recErr != nil {
		p.Status, p.Error = trace.TaskFailed, recErr.Error()
		if n.dir != "" {
			os.WriteFile(filepath.Join(n.dir, failedMarker), []byte(recErr.Error()+"\n"), 0o600)
		}
	} else if n.dir != "" {
		os.Remove(filepath.Join(n.dir, nodeSocket))
		os.Remove(n.dir) // only if empty: a relay may still be leaving
	}
	if err := trace.WriteJobTask(n.jobDir, p); err != nil {
		return fmt.Errorf("job manifest: %w", err)
	}
	return nil
}
