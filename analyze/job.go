package analyze

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/trace"
)

// A multi-node job (llem record under Slurm) is one experiment: LoadJob
// reads every node's run of a job directory into one Data whose GPUs are
// every node's and whose events are every task's, with each node's
// timestamps put on the reference node's clock by its measured offset.
// New then analyses it as it analyses any run, so that every number of a
// job is made by the same code as a run's; this file adds what only a job
// has: which events make its windows, its clocks, its tasks and the
// per-node breakdown (docs/multinode.md, "Analysis of a job").

// Where a node's alignment to the reference clock comes from (JobNode.Clock).
const (
	ClockReference = "reference" // the node is the reference: its clock is the job's
	ClockMeasured  = "measured"  // offsets measured to the reference, at the start and the end
	ClockMaxError  = "max_error" // no offset: both clocks' maximum errors, from the kernel (adjtimex)
	ClockUnknown   = "unknown"   // neither: the misalignment cannot be bounded
)

// codeSharedRequests is the warning that tasks sent requests of one id.
const codeSharedRequests = "shared_request_ids"

// Job is a multi-node job as loaded: its manifest, the nodes whose runs
// were found, and which events are its windows.
type Job struct {
	Dir      string
	Manifest *trace.Job
	// Nodes are the nodes whose runs are in the job directory, by index.
	Nodes []*JobNode
	// Missing are the nodes the manifest names that have no run here.
	Missing []string
	// Reference is the node every timestamp is put on the clock of: the
	// step's first node (SLURM_NODEID 0), which need not be among Nodes.
	Reference string
	// CycleNode is the node whose cycles and idle phases (its sampler's)
	// are the job's; PhaseTasks names, for each phase a client marked,
	// the task whose marks are the job's: the lowest-ranked that marked it.
	CycleNode  string
	PhaseTasks map[string]int
	// taskNode is each task's node, as the events and manifest say.
	taskNode     map[int]string
	windowEvents []trace.Event
}

// JobNode is one node's run in a job.
type JobNode struct {
	Name  string
	Index int    // the node's position in the step (SLURM_NODEID)
	Dir   string // its run directory
	Meta  *trace.Meta
	GPUs  []int // the job indexes of its GPUs (Data.GPUs)
	Clock NodeClock
	// StartNs and EndNs are its first and last sample, on the reference's clock.
	StartNs, EndNs int64
}

// NodeClock is how a node's timestamps were put on the reference node's
// clock, and how well.
type NodeClock struct {
	Source string
	// Offsets are the node's measured clock offsets to the reference
	// (this node's clock minus the reference's), in time order.
	Offsets []trace.ClockOffset
	// ErrorNs bounds how far a corrected timestamp of the node can be
	// from the reference's clock at the same instant; NaN: unknown.
	ErrorNs float64
	// Note says what the bound is made of, or why there is none.
	Note string
}

// nodeRun is one node's loaded run before the merge.
type nodeRun struct {
	node *JobNode
	d    *Data
}

// LoadJob loads a job directory (trace.IsJobDir) as one experiment: every
// node run the manifest or the directory holds, on the reference node's
// clock, merged into one Data. A run inside it that belongs to another
// job, or a node recorded twice, is an error naming the directory.
func LoadJob(dir string) (*Data, error) {
	return loadJob(dir, nil)
}

func loadJob(dir string, onRead func(int64)) (*Data, error) {
	man, err := trace.ReadJob(dir)
	if err != nil {
		return nil, err
	}
	dirs, err := jobRunDirs(dir, man)
	if err != nil {
		return nil, err
	}
	j := &Job{Dir: dir, Manifest: man, PhaseTasks: map[string]int{}, taskNode: map[int]string{}}
	for _, p := range man.Parts {
		j.taskNode[p.Task] = p.Node
	}
	var runs []nodeRun
	seen := map[string]string{}
	for _, rd := range dirs {
		d, err := loadRun(rd, onRead)
		if err != nil {
			return nil, err
		}
		m := d.Run.Meta
		if m.Job == nil || m.Job.JobID != man.JobID || m.Job.StepID != man.StepID {
			return nil, fmt.Errorf("%s: not a node of job %s.%s (its %s has %s): one job step per directory",
				rd, man.JobID, man.StepID, trace.MetaFile, jobName(m.Job))
		}
		if prev, dup := seen[m.Job.Node]; dup {
			return nil, fmt.Errorf("%s: node %s was recorded twice in one job step (also %s)", rd, m.Job.Node, prev)
		}
		seen[m.Job.Node] = rd
		runs = append(runs, nodeRun{node: &JobNode{Name: m.Job.Node, Index: m.Job.NodeIndex, Dir: rd, Meta: m}, d: d})
	}
	slices.SortStableFunc(runs, func(a, b nodeRun) int { return cmp.Compare(a.node.Index, b.node.Index) })
	for _, n := range man.ByNode {
		if _, ok := seen[n.Name]; !ok {
			j.Missing = append(j.Missing, n.Name)
		}
	}
	j.setClocks(runs)
	return j.merge(runs), nil
}

// jobName names the job a node's meta.json says it was part of.
func jobName(ji *trace.JobInfo) string {
	if ji == nil {
		return "no job section"
	}
	return fmt.Sprintf("job %s.%s", ji.JobID, ji.StepID)
}

// jobRunDirs are the job's node runs: those its samplers' manifest parts
// name, and any run directly inside the job directory (a node's run
// copied without its part).
func jobRunDirs(dir string, man *trace.Job) ([]string, error) {
	seen := map[string]bool{}
	var dirs []string
	add := func(p string) {
		if p = filepath.Clean(p); !seen[p] {
			seen[p] = true
			dirs = append(dirs, p)
		}
	}
	for _, n := range man.ByNode {
		if n.Sampler == nil || n.Sampler.Sampler == nil || n.Sampler.Sampler.RunDir == "" {
			continue
		}
		rel := n.Sampler.Sampler.RunDir
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s: task %d's run_dir %q is not inside the job directory",
				filepath.Join(dir, trace.ManifestDir, trace.TaskFile(n.Sampler.Task)), n.Sampler.Task, rel)
		}
		if _, err := os.Stat(filepath.Join(dir, rel, trace.MetaFile)); err == nil {
			add(filepath.Join(dir, rel))
		}
	}
	metas, _ := filepath.Glob(filepath.Join(dir, "*", trace.MetaFile))
	for _, p := range metas {
		add(filepath.Dir(p))
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s: a job directory with no node run in it (no */%s): every node's sampler failed, or the nodes' directories were not copied here",
			dir, trace.MetaFile)
	}
	return dirs, nil
}

// merge puts the nodes' runs into one Data: GPUs numbered through the job
// in node order, timestamps on the reference's clock, events and tokens of
// every task, and the meta.json the analysis reads (jobRun).
func (j *Job) merge(runs []nodeRun) *Data {
	d := &Data{Job: j, Origin: math.MaxInt64, End: math.MinInt64}
	var clientPhases []trace.Event
	var tokens []*serving.TokenLog
	// The nodes' request events one node after the other: the sorter
	// stable-sorts them by stamp.
	var requests serving.EventSorter
	var bases []int32
	for _, r := range runs {
		n, nd := r.node, r.d
		j.Nodes = append(j.Nodes, n)
		shiftTimes(nd, n.Clock)
		n.StartNs, n.EndNs = nd.Origin, nd.End
		for _, g := range nd.GPUs {
			g.Node, g.NodeGPU, g.Index = n.Name, g.Index, len(d.GPUs)
			n.GPUs = append(n.GPUs, g.Index)
			d.GPUs = append(d.GPUs, g)
		}
		bases = append(bases, int32(len(d.IDs)))
		d.IDs = append(d.IDs, nd.IDs...)
		tokens = append(tokens, nd.Tokens)
		nd.Tokens = nil
		for _, e := range nd.Events {
			if e.Task != nil {
				j.taskNode[int(*e.Task)] = n.Name
			}
			if e.Source == "client" && (e.Kind == "phase_start" || e.Kind == "phase_end") && e.Task != nil {
				clientPhases = append(clientPhases, e)
			}
		}
		rc := nd.RequestEvents.All()
		for e, ok := rc.Next(); ok; e, ok = rc.Next() {
			if e.Has&serving.HasTask != 0 {
				j.taskNode[int(e.Task)] = n.Name
			}
			e.Req += bases[len(bases)-1] // into the job's id table
			requests.Add(e)
		}
		nd.RequestEvents = nil
		d.Events = append(d.Events, nd.Events...)
		for id, tasks := range nd.requestTasks {
			for _, t := range tasks {
				if d.requestTasks == nil {
					d.requestTasks = map[string][]int32{}
				}
				if !slices.Contains(d.requestTasks[id], t) {
					d.requestTasks[id] = append(d.requestTasks[id], t)
				}
			}
		}
		for _, w := range nd.Notes {
			if w.Code != codeSharedRequests {
				w.Message = n.Name + ": " + w.Message
				d.Notes = append(d.Notes, w)
			}
		}
		d.Bad += nd.Bad
		d.Origin, d.End = min(d.Origin, nd.Origin), max(d.End, nd.End)
	}
	j.chooseWindowEvents(runs, clientPhases)
	slices.SortStableFunc(d.Events, func(a, b trace.Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	d.RequestEvents = requests.Log()
	d.Tokens = serving.MergeLogs(tokens, func(node int, req int32) int32 { return req + bases[node] })
	d.noteSharedRequests()
	d.Run = j.jobRun(runs, d)
	return d
}

// chooseWindowEvents picks the events the job's windows are made of. A
// node's recorder marks its own cycles and idle phases, and every task may
// mark phases: windows made of all of them would repeat (a measure phase
// per task) or cross. So the cycles and idle phases are the reference
// node's (else the first node's), and each phase a client marked is the
// lowest-ranked task's that marked it: rank 0's, unless the user marks a
// phase elsewhere.
func (j *Job) chooseWindowEvents(runs []nodeRun, clientPhases []trace.Event) {
	cycleRun := runs[0]
	for _, r := range runs {
		if r.node.Name == j.Reference {
			cycleRun = r
		}
	}
	j.CycleNode = cycleRun.node.Name
	for _, e := range cycleRun.d.Events {
		if e.Source == "recorder" && (e.Kind == "phase_start" || e.Kind == "phase_end" ||
			e.Kind == "cycle_start" || e.Kind == "cycle_end") {
			j.windowEvents = append(j.windowEvents, e)
		}
	}
	first, last := runs[0].d.Origin, runs[0].d.End
	for _, r := range runs {
		first, last = max(first, r.d.Origin), min(last, r.d.End)
	}
	clipIdle(j.windowEvents, first, last)
	for _, e := range clientPhases {
		if t, ok := j.PhaseTasks[e.Name]; !ok || int(*e.Task) < t {
			j.PhaseTasks[e.Name] = int(*e.Task)
		}
	}
	for _, e := range clientPhases {
		if int(*e.Task) == j.PhaseTasks[e.Name] {
			j.windowEvents = append(j.windowEvents, e)
		}
	}
	slices.SortStableFunc(j.windowEvents, func(a, b trace.Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
}

// clipIdle cuts the recorder's idle phases at the ends of the recording
// (time-ordered events) to [first, last], the span every node recorded,
// where that leaves them some length. Each node's sampler starts and ends
// its own idle phases, as far apart as srun started the nodes' tasks
// (milliseconds): the cycle node's would reach past the others' samples.
func clipIdle(evs []trace.Event, first, last int64) {
	for i := range evs {
		e := &evs[i]
		switch {
		case e.Kind == "phase_start" && e.Name == phaseIdleBefore:
			for _, f := range evs[i+1:] {
				if f.Kind == "phase_end" && f.Name == phaseIdleBefore {
					if first < f.TimestampNs {
						e.TimestampNs = max(e.TimestampNs, first)
					}
					break
				}
			}
		case e.Kind == "phase_end" && e.Name == phaseIdleAfter:
			for k := i - 1; k >= 0; k-- {
				if evs[k].Kind == "phase_start" && evs[k].Name == phaseIdleAfter {
					if last > evs[k].TimestampNs {
						e.TimestampNs = min(e.TimestampNs, last)
					}
					break
				}
			}
		}
	}
}

// windowEvents are the events windows are made of: every event of a run;
// of a job, those chooseWindowEvents picked.
func (d *Data) windowEvents() []trace.Event {
	if d.Job != nil {
		return d.Job.windowEvents
	}
	return d.Events
}

// jobRun is the run the analysis reads meta.json from (runHeader, the
// windows' fallback cycles, the report): the cycle node's, with every
// node's status, warnings (named by node), GPUs (numbered through the
// job), event counts and left-over segments.
func (j *Job) jobRun(runs []nodeRun, d *Data) *trace.Run {
	var cycle *trace.Meta
	for _, r := range runs {
		if r.node.Name == j.CycleNode {
			cycle = r.d.Run.Meta
		}
	}
	m := *cycle
	man := j.Manifest
	m.RunID = fmt.Sprintf("%s-%s.%s", man.Scheduler, man.JobID, man.StepID)
	m.Job, m.ClockSync, m.SimTruth, m.Gaps = nil, nil, nil, nil
	m.Complete, m.Status = true, trace.StatusComplete
	m.GPUs, m.Warnings, m.Events = nil, nil, trace.EventStats{}
	run := &trace.Run{Dir: j.Dir, Meta: &m}
	for _, r := range runs {
		nm := r.d.Run.Meta
		if !nm.Complete && m.Complete {
			m.Complete, m.Status = false, nm.Status
		}
		for _, w := range nm.Warnings {
			w.Message = r.node.Name + ": " + w.Message
			if w.GPU != nil {
				w.GPU = jobGPU(d, r.node.Name, *w.GPU)
			}
			m.Warnings = append(m.Warnings, w)
		}
		m.Events.Received += nm.Events.Received
		m.Events.Accepted += nm.Events.Accepted
		m.Events.Bad += nm.Events.Bad
		m.Events.BadKept += nm.Events.BadKept
		m.Events.Dropped += nm.Events.Dropped
		run.Partial = append(run.Partial, r.d.Run.Partial...)
		m.Gaps = append(m.Gaps, jobGaps(d, r.node, nm.Gaps)...)
	}
	for _, g := range d.GPUs {
		if g.Info != nil {
			info := *g.Info
			info.Index = g.Index
			m.GPUs = append(m.GPUs, info)
		}
	}
	for k := range m.GPUs {
		d.GPUs[m.GPUs[k].Index].Info = &m.GPUs[k]
	}
	if cycle.Command != nil {
		cmd := *cycle.Command
		cmd.Cycles = slices.Clone(cmd.Cycles)
		toRef := j.node(j.CycleNode).Clock.toReference
		for k := range cmd.Cycles {
			cmd.Cycles[k].StartNs, cmd.Cycles[k].EndNs = toRef(cmd.Cycles[k].StartNs), toRef(cmd.Cycles[k].EndNs)
		}
		m.Command = &cmd
	}
	return run
}

// jobGaps are a node's recorded gaps on the job's clock and GPUs; a gap
// of every GPU of the node becomes one per GPU (not the other nodes').
func jobGaps(d *Data, n *JobNode, gaps []trace.Gap) []trace.Gap {
	var out []trace.Gap
	for _, gp := range gaps {
		gp.StartNs, gp.EndNs = n.Clock.toReference(gp.StartNs), n.Clock.toReference(gp.EndNs)
		if gp.GPU != nil {
			if gp.GPU = jobGPU(d, n.Name, *gp.GPU); gp.GPU != nil {
				out = append(out, gp)
			}
			continue
		}
		for _, gi := range n.GPUs {
			g := gp
			g.GPU = &gi
			out = append(out, g)
		}
	}
	return out
}

// jobGPU is the job index of a node's GPU by its driver index; nil when
// the node has no such GPU.
func jobGPU(d *Data, node string, index int) *int {
	for _, g := range d.GPUs {
		if g.Node == node && g.NodeGPU == index {
			i := g.Index
			return &i
		}
	}
	return nil
}

// node is the loaded node of that name (nil: none).
func (j *Job) node(name string) *JobNode {
	for _, n := range j.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// shiftTimes puts every timestamp of a node's data on the reference's
// clock. The correction changes by parts per million of the time between
// two stamps (a clock's drift), so every order holds.
func shiftTimes(d *Data, c NodeClock) {
	if !slices.ContainsFunc(c.Offsets, func(o trace.ClockOffset) bool { return o.OffsetNs != 0 }) {
		return // the reference itself, or no offset
	}
	f := c.toReference
	for _, g := range d.GPUs {
		for i := range g.Energy {
			g.Energy[i].TimestampNs = f(g.Energy[i].TimestampNs)
		}
		for _, s := range []*Samples{&g.DriverPower, &g.InstantPower, &g.AveragePower, &g.Temperature, &g.SMClock, &g.Util, &g.Truth, &g.Reasons} {
			s.mapTimes(f)
		}
	}
	// A client's own stamps are its node's clock too.
	for i := range d.Events {
		e := &d.Events[i]
		e.TimestampNs = f(e.TimestampNs)
		if e.ClientTimestampNs != nil {
			v := f(*e.ClientTimestampNs)
			e.ClientTimestampNs = &v
		}
	}
	var events serving.EventSorter // f keeps the order; the sorters keep it if rounding did not
	ec := d.RequestEvents.All()
	for e, ok := ec.Next(); ok; e, ok = ec.Next() {
		e.TimestampNs = f(e.TimestampNs)
		if e.Has&serving.HasClient != 0 {
			e.ClientTimestampNs = f(e.ClientTimestampNs)
		}
		events.Add(e)
	}
	d.RequestEvents = events.Log()
	var shifted serving.Sorter
	tk := d.Tokens.All()
	for t, ok := tk.Next(); ok; t, ok = tk.Next() {
		t.TimestampNs = f(t.TimestampNs)
		if t.ClientTimestampNs != 0 { // 0: none sent
			t.ClientTimestampNs = f(t.ClientTimestampNs)
		}
		shifted.Add(t)
	}
	d.Tokens = shifted.Log()
	d.Origin, d.End = f(d.Origin), f(d.End)
}

// joinInts writes 0, 1, 3.
func joinInts[T int | int32](v []T) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ", ")
}
