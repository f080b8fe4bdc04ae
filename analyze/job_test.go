package analyze_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

// Synthetic jobs: every GPU of every node draws 100 W, and 400 W from 8 s
// to 32 s of true time; the recording lasts 40 s. A node stamps on its own
// clock, true time plus its offset. Task 0 (on the reference node, n1)
// marks a measure phase from 10 s to 30 s, whose energy is then 400 W x
// 20 s per GPU whatever the sensors' timing (the power is flat around its
// edges) -- if every node's stamps are put on n1's clock. Other tasks
// mark their own measure phases elsewhere, and send requests with the
// same ids as task 0's.

const (
	trueStart = int64(1_800_000_000_000_000_000)
	sec       = int64(1e9)
	loadStart = 8 * sec
	loadEnd   = 32 * sec
	runLen    = 40 * sec
	jobGPUs   = 2 // per node
)

// truePower is every GPU's power (W) at true time t (ns from trueStart).
func truePower(t int64) float64 {
	if t >= loadStart && t < loadEnd {
		return 400
	}
	return 100
}

// trueEnergyJ is every GPU's energy (J) from trueStart to t.
func trueEnergyJ(t int64) float64 {
	load := float64(min(max(t, loadStart), loadEnd)-loadStart) / 1e9
	return 100*float64(t)/1e9 + 300*load
}

type synthNode struct {
	name     string
	index    int
	tasks    []int // the first samples the node
	offsetNs int64 // the node's clock minus true time
	// offsets are what clock_sync says was measured (nil: none).
	offsets   []trace.ClockOffset
	synced    bool
	maxErrUs  int64
	exitCodes map[int]int
	jobID     string // default "77"
	phaseAt   [2]int64
	endAt     int64 // when its samples stop, true time (0: runLen)
	gaps      []trace.Gap
}

func (n synthNode) stamp(t int64) int64 { return trueStart + t + n.offsetNs }

// measured is an offset measured at the start and the end of the run.
func measured(offsetNs, boundStart, boundEnd int64) []trace.ClockOffset {
	return []trace.ClockOffset{
		{At: "start", TimestampNs: trueStart + offsetNs, OffsetNs: offsetNs, BoundNs: boundStart, Exchanges: 16},
		{At: "end", TimestampNs: trueStart + runLen + offsetNs, OffsetNs: offsetNs, BoundNs: boundEnd, Exchanges: 16},
	}
}

// writeJob writes a job directory of the nodes (and their tasks' manifest
// parts) under dir.
func writeJob(t *testing.T, dir string, nodes []synthNode) {
	t.Helper()
	total := 0
	for _, n := range nodes {
		total += len(n.tasks)
	}
	writeJobOf(t, dir, nodes, len(nodes), total)
}

// writeJobOf writes some nodes of a job of stepNodes nodes and stepTasks
// tasks (a node's own output directory holds only its own).
func writeJobOf(t *testing.T, dir string, nodes []synthNode, stepNodes, stepTasks int) {
	t.Helper()
	for _, n := range nodes {
		writeNodeRun(t, filepath.Join(dir, n.name), n, stepNodes, stepTasks)
		for i, task := range n.tasks {
			writePart(t, dir, n, i, task, stepNodes, stepTasks)
		}
	}
}

func (n synthNode) job() string {
	if n.jobID == "" {
		return "77"
	}
	return n.jobID
}

func writePart(t *testing.T, dir string, n synthNode, local, task, nodes, tasks int) {
	t.Helper()
	code := n.exitCodes[task]
	p := &trace.JobTask{ManifestVersion: trace.ManifestVersion, Scheduler: "slurm", JobID: n.job(), StepID: "0",
		Tasks: tasks, Nodes: nodes, Task: task, LocalTask: local, Node: n.name, NodeIndex: n.index, Role: trace.RoleRelay,
		Status: trace.TaskComplete, Command: &trace.CommandInfo{Argv: []string{"serve"}, StartNs: n.stamp(5 * sec),
			EndNs: n.stamp(35 * sec), ExitCode: &code}}
	if local == 0 {
		p.Role = trace.RoleSampler
		p.Sampler = &trace.NodeSampling{RunDir: n.name, GPUSource: "all"}
	}
	if err := trace.WriteJobTask(dir, p); err != nil {
		t.Fatal(err)
	}
}

func writeNodeRun(t *testing.T, dir string, n synthNode, nodes, tasks int) {
	t.Helper()
	runID := fmt.Sprintf("run-%s-%s", n.job(), n.name)
	m := &trace.Meta{SchemaVersion: trace.SchemaVersion, RunID: runID, Complete: true, Status: trace.StatusComplete,
		Device: "sim", Clock: trace.ClockAnchor{WallStartNs: n.stamp(0), TimestampUnits: "ns"},
		Command: &trace.CommandInfo{Argv: []string{"serve"}, StartNs: n.stamp(5 * sec), EndNs: n.stamp(35 * sec),
			Cycles: []trace.CycleInfo{{Cycle: 1, StartNs: n.stamp(5 * sec), EndNs: n.stamp(35 * sec)}}},
		Job: &trace.JobInfo{Scheduler: "slurm", JobID: n.job(), StepID: "0", Node: n.name, NodeIndex: n.index,
			Nodes: nodes, Tasks: tasks, SamplerTask: n.tasks[0], GPUSource: "all"},
		ClockSync: &trace.ClockSync{ReferenceNode: "n1", Offsets: n.offsets,
			Start: &trace.KernelClock{Synced: n.synced, MaxErrorUs: n.maxErrUs},
			End:   &trace.KernelClock{Synced: n.synced, MaxErrorUs: n.maxErrUs}},
		Warnings: []trace.Warning{}, Gaps: n.gaps}
	for g := range jobGPUs {
		m.GPUs = append(m.GPUs, trace.GPUInfo{Index: g, Name: "synthetic", UUID: fmt.Sprintf("GPU-%s-%d", n.name, g)})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSamples(t, dir, runID, n)
	writeEvents(t, dir, runID, n)
	if err := trace.WriteMeta(dir, m); err != nil {
		t.Fatal(err)
	}
}

func writeSamples(t *testing.T, dir, runID string, n synthNode) {
	t.Helper()
	dp, err := trace.NewTableWriter(dir, trace.TableDriverPower, runID, trace.CompareDriverPower)
	check(t, err)
	en, err := trace.NewTableWriter(dir, trace.TableEnergy, runID, trace.CompareEnergy)
	check(t, err)
	st, err := trace.NewTableWriter(dir, trace.TableState, runID, trace.CompareState)
	check(t, err)
	end := runLen
	if n.endAt > 0 {
		end = n.endAt
	}
	for g := range int32(jobGPUs) {
		for tt := int64(0); tt <= end; tt += 20_000_000 {
			check(t, dp.Add(trace.DriverPowerSample{GPU: g, TimestampNs: n.stamp(tt), DriverPowerMw: int64(truePower(tt) * 1000)}))
			if tt%(100_000_000) != 0 {
				continue
			}
			check(t, en.Add(trace.EnergyRead{GPU: g, TimestampNs: n.stamp(tt), EnergyMj: int64(math.Round(trueEnergyJ(tt) * 1000))}))
			// The sensor updates every 100 ms: its value moves by a mW.
			mw, temp, clk := int64(truePower(tt)*1000)+tt/100_000_000%2, int32(40), int32(1980)
			check(t, st.Add(trace.DeviceState{GPU: g, TimestampNs: n.stamp(tt), InstantPowerMw: &mw, AveragePowerMw: &mw,
				TemperatureC: &temp, SMClockMHz: &clk}))
		}
	}
	check(t, dp.Flush())
	check(t, en.Flush())
	check(t, st.Flush())
	// The simulated device's truth, of its four GPUs: the node sampled two.
	tr, err := trace.NewTableWriter[trace.SimTruthEnergy](dir, trace.TableSimTruth, runID, nil)
	check(t, err)
	for g := range int32(2 * jobGPUs) {
		for tt := int64(0); tt <= runLen; tt += sec {
			check(t, tr.Add(trace.SimTruthEnergy{GPU: g, TimestampNs: n.stamp(tt), EnergyUj: int64(trueEnergyJ(tt) * 1e6)}))
		}
	}
	check(t, tr.Flush())
}

// writeEvents: the node's recorder marks its idle phases and its cycle;
// each task marks a measure phase (task 0 from 10 s to 30 s, the others
// at phaseAt) and sends requests r1 and r2.
func writeEvents(t *testing.T, dir, runID string, n synthNode) {
	t.Helper()
	ev, err := trace.NewTableWriter(dir, trace.TableEvents, runID, trace.CompareEvent)
	check(t, err)
	add := func(at int64, kind, name, src string, task *int32, mod func(e *trace.Event)) {
		e := trace.Event{TimestampNs: n.stamp(at), GPU: -1, Kind: kind, Name: name, Source: src, Task: task}
		if mod != nil {
			mod(&e)
		}
		check(t, ev.Add(e))
	}
	sampler := int32(n.tasks[0])
	cycle := int32(1)
	withCycle := func(e *trace.Event) { e.Cycle = &cycle }
	add(0, "phase_start", "idle_before", "recorder", nil, nil)
	add(4*sec, "phase_end", "idle_before", "recorder", nil, nil)
	add(5*sec, "cycle_start", "", "recorder", &sampler, withCycle)
	add(35*sec, "cycle_end", "", "recorder", &sampler, withCycle)
	add(36*sec, "phase_start", "idle_after", "recorder", nil, nil)
	add(runLen, "phase_end", "idle_after", "recorder", nil, nil)
	for _, task := range n.tasks {
		tk := int32(task)
		from, to := 10*sec, 30*sec
		if task != 0 {
			from, to = n.phaseAt[0], n.phaseAt[1]
		}
		add(from, "phase_start", "measure", "client", &tk, nil)
		add(to, "phase_end", "measure", "client", &tk, nil)
		for i, out := range []int64{100, 50} {
			id := fmt.Sprintf("r%d", i+1)
			add(int64(12+i)*sec, "request_start", "", "client", &tk, func(e *trace.Event) { e.RequestID = id })
			add(int64(20+5*i)*sec, "request_end", "", "client", &tk, func(e *trace.Event) { e.RequestID, e.OutputTokens = id, &out })
		}
	}
	check(t, ev.Flush())
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// twoNodes is n1 (the reference, tasks 0 and 1) and n2 (tasks 2 and 3,
// its clock 3 s ahead, measured within 50 and 70 us; task 3 fails).
func twoNodes() []synthNode {
	return []synthNode{
		{name: "n1", index: 0, tasks: []int{0, 1}, phaseAt: [2]int64{11 * sec, 29 * sec}},
		{name: "n2", index: 1, tasks: []int{2, 3}, offsetNs: 3 * sec, offsets: measured(3*sec, 50_000, 70_000),
			exitCodes: map[int]int{3: 3}, phaseAt: [2]int64{6 * sec, 26 * sec}},
	}
}

func openJob(t *testing.T, dir string, s analyze.Settings) *analyze.Run {
	t.Helper()
	runs, err := analyze.Open([]string{dir}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return runs[0]
}

func measuredWindows(r *analyze.Run) []analyze.WindowResult { return r.MeasuredWindows() }

func hasCode(ws []analyze.Warning, code string) (analyze.Warning, bool) {
	for _, w := range ws {
		if w.Code == code {
			return w, true
		}
	}
	return analyze.Warning{}, false
}

// A job is one experiment: rank 0's measure phase applies to every node's
// GPUs, each node's stamps on n1's clock (n2's 3 s offset undone), energy
// summed over the four GPUs with a per-node share, tokens of every task.
func TestJobIsOneExperiment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "job")
	writeJob(t, dir, twoNodes())
	r := openJob(t, dir, analyze.DefaultSettings())
	rr := r.Result

	if len(rr.GPUs) != 4 || rr.Job == nil || len(rr.Job.Nodes) != 2 {
		t.Fatalf("gpus %+v, job %+v", rr.GPUs, rr.Job)
	}
	for i, g := range rr.GPUs {
		if g.Index != i || g.Node != []string{"n1", "n1", "n2", "n2"}[i] || g.NodeGPU == nil || *g.NodeGPU != i%2 {
			t.Errorf("GPU %d: %+v", i, g)
		}
	}
	ms := measuredWindows(r)
	if len(ms) != 1 || ms[0].Name != "measure" || math.Abs(ms[0].DurationS-20) > 1e-9 {
		t.Fatalf("measured windows %+v: want task 0's measure phase, 20 s, alone", ms)
	}
	w := ms[0]
	want := 400.0 * 20 * 4
	if math.Abs(float64(w.EnergyJ)-want) > want*1e-4 || math.Abs(float64(w.EnergyIntegratedJ)-want) > want*1e-3 {
		t.Errorf("measure: counter %v J, integrated %v J, want %v J (n2's offset undone)", w.EnergyJ, w.EnergyIntegratedJ, want)
	}
	// Each node's share; n2's would be 15400 J had its 3 s not been undone.
	// The truth of the GPUs sampled, on n1's clock.
	if w.SimTruthEnergyJ == nil || math.Abs(float64(*w.SimTruthEnergyJ)-want) > 1e-6 {
		t.Errorf("sim_truth_energy_j %v, want %v J", w.SimTruthEnergyJ, want)
	}
	if len(w.Nodes) != 2 {
		t.Fatalf("nodes %+v", w.Nodes)
	}
	for _, nw := range w.Nodes {
		if math.Abs(float64(nw.EnergyJ)-want/2) > want*1e-4 || math.Abs(float64(nw.MeanPowerW)-800) > 0.1 {
			t.Errorf("node %s: %v J, %v W; want %v J, 800 W", nw.Node, nw.EnergyJ, nw.MeanPowerW, want/2)
		}
	}
	if got := w.Nodes[0].EnergyJ + w.Nodes[1].EnergyJ; math.Abs(float64(got-w.EnergyJ)) > 1e-9 {
		t.Errorf("node shares add up to %v J, the window has %v J", got, w.EnergyJ)
	}
	// Tokens and requests of every task: r1 and r2 of four tasks.
	if w.OutputTokens != 4*150 || w.Requests != 8 || rr.Requests.Total != 8 {
		t.Errorf("tokens %v, requests %d (total %d); want 600 and 8", w.OutputTokens, w.Requests, rr.Requests.Total)
	}
	if _, ok := hasCode(rr.Warnings, "shared_request_ids"); !ok {
		t.Errorf("no shared_request_ids warning: every task used r1 and r2: %+v", rr.Warnings)
	}
	// Cycles and idle phases from n1 only.
	var cycles, idle int
	for _, x := range rr.Windows {
		if x.Kind == analyze.KindCycle {
			cycles++
		}
		if x.Name == "idle_before" {
			idle++
		}
	}
	if cycles != 1 || idle != 1 || rr.Job.WindowsFrom.CyclesNode != "n1" || rr.Job.WindowsFrom.PhaseTasks["measure"] != 0 {
		t.Errorf("%d cycles, %d idle_before, windows from %+v; want n1's one of each, measure from task 0", cycles, idle, rr.Job.WindowsFrom)
	}
	// Per node over the measured windows.
	for _, n := range rr.Job.Nodes {
		if m := n.Measured; m == nil || math.Abs(float64(m.SharePct)-50) > 0.01 || math.Abs(float64(m.EnergyJ)-want/2) > want*1e-4 {
			t.Errorf("node %s measured %+v", n.Node, m)
		}
	}
}

// Task 3's failure is in the result and its warnings, with its exit code.
func TestJobFailedTaskIsWarned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "job")
	writeJob(t, dir, twoNodes())
	rr := openJob(t, dir, analyze.DefaultSettings()).Result
	if !slices.Equal(rr.Job.FailedTasks, []int{3}) || len(rr.Job.Tasks) != 4 {
		t.Fatalf("failed %v, tasks %+v", rr.Job.FailedTasks, rr.Job.Tasks)
	}
	if tr := rr.Job.Tasks[3]; tr.ExitCode == nil || *tr.ExitCode != 3 || tr.Node != "n2" {
		t.Errorf("task 3: %+v", tr)
	}
	w, ok := hasCode(rr.Warnings, "task_failed")
	if !ok || !strings.Contains(w.Message, "task 3") || !strings.Contains(w.Message, "exited with code 3") {
		t.Errorf("task_failed warning %+v", w)
	}
}

// The misalignment bound: n2's offset measured within 50 and 70 us gives
// 0.07 ms; over the setting it is flagged. Its energy at the window's
// edges is in the timing terms: at each edge n2's two GPUs draw 400 W,
// misplaced by up to 70 us.
func TestJobClockBound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "job")
	writeJob(t, dir, twoNodes())
	s := analyze.DefaultSettings()
	rr := openJob(t, dir, s).Result
	if b := rr.Job.Clock.MisalignmentBoundMs; math.Abs(float64(b)-0.07) > 1e-9 || rr.Job.Clock.ReferenceNode != "n1" {
		t.Errorf("bound %v ms, reference %s; want 0.07 ms, n1", b, rr.Job.Clock.ReferenceNode)
	}
	if n2 := rr.Job.Nodes[1]; n2.ClockSource != analyze.ClockMeasured || n2.OffsetStartNs == nil || *n2.OffsetStartNs != 3*sec {
		t.Errorf("n2 clock %+v", n2)
	}
	if _, ok := hasCode(rr.Warnings, "clock_misalignment"); ok {
		t.Errorf("0.07 ms flagged under the default of %g ms", s.ClockMisalignmentMaxMs)
	}
	w := measuredWindows(openJob(t, dir, s))[0]
	term := 2 * 400 * 70e-6 // J, per edge
	wantPct := 1.96 * math.Sqrt(2*term*term/3) / float64(w.EnergyJ) * 100
	if w.ClockUncertaintyPct == nil || math.Abs(float64(*w.ClockUncertaintyPct)-wantPct) > wantPct*1e-6 {
		t.Errorf("clock uncertainty %v %%, want %v %%", w.ClockUncertaintyPct, wantPct)
	}
	if !(w.EdgeUncertaintyPct >= *w.ClockUncertaintyPct) {
		t.Errorf("edge uncertainty %v %% leaves out the clock's %v %%", w.EdgeUncertaintyPct, *w.ClockUncertaintyPct)
	}

	s.ClockMisalignmentMaxMs = 0.05
	rr = openJob(t, dir, s).Result
	if w, ok := hasCode(rr.Warnings, "clock_misalignment"); !ok || !strings.Contains(w.Message, "0.070 ms") {
		t.Errorf("over 0.05 ms: warning %+v", w)
	}
}

// Without a measured offset: two synchronised clocks are within the sum
// of their maximum errors; an unsynchronised one bounds nothing.
func TestJobClockWithoutOffsets(t *testing.T) {
	nodes := twoNodes()
	nodes[1].offsetNs, nodes[1].offsets = 0, nil
	for i := range nodes {
		nodes[i].synced, nodes[i].maxErrUs = true, int64(2000*(i+1))
	}
	dir := filepath.Join(t.TempDir(), "synced")
	writeJob(t, dir, nodes)
	rr := openJob(t, dir, analyze.DefaultSettings()).Result
	if b := rr.Job.Clock.MisalignmentBoundMs; math.Abs(float64(b)-6) > 1e-9 || rr.Job.Nodes[1].ClockSource != analyze.ClockMaxError {
		t.Errorf("synced clocks: bound %v ms (%s), want 2 + 4 ms of maximum errors", b, rr.Job.Nodes[1].ClockSource)
	}

	nodes[1].synced = false
	dir = filepath.Join(t.TempDir(), "unsynced")
	writeJob(t, dir, nodes)
	r := openJob(t, dir, analyze.DefaultSettings())
	rr = r.Result
	if b := rr.Job.Clock.MisalignmentBoundMs; b.Valid() || rr.Job.Nodes[1].ClockSource != analyze.ClockUnknown {
		t.Errorf("unsynchronised: bound %v ms (%s), want unknown", b, rr.Job.Nodes[1].ClockSource)
	}
	if _, ok := hasCode(rr.Warnings, "clock_unbounded"); !ok {
		t.Errorf("no clock_unbounded warning: %+v", rr.Warnings)
	}
	if w := measuredWindows(r)[0]; w.ClockUncertaintyPct == nil || w.ClockUncertaintyPct.Valid() {
		t.Errorf("unknown misalignment: clock_uncertainty_pct %v, want null", w.ClockUncertaintyPct)
	}
}

// Node runs copied together from node-local directories merge: a node
// whose manifest parts were not copied is still found by its run, a node
// the manifest names without a run is warned, and a run of another job or
// a node recorded twice is refused.
func TestJobDirectoryMerge(t *testing.T) {
	root := t.TempDir()
	local := []string{filepath.Join(root, "n1-local"), filepath.Join(root, "n2-local")}
	nodes := twoNodes()
	for i, n := range nodes {
		writeJobOf(t, local[i], []synthNode{n}, 2, 4)
	}
	merged := filepath.Join(root, "merged")
	for _, l := range local {
		if err := os.CopyFS(merged, os.DirFS(l)); err != nil {
			t.Fatal(err)
		}
	}
	if got := trace.RunsIn(root); !slices.Equal(got, []string{merged, local[0], local[1]}) {
		t.Errorf("RunsIn(%s) = %v: want each job directory as one", root, got)
	}
	rr := openJob(t, merged, analyze.DefaultSettings()).Result
	if len(rr.GPUs) != 4 || len(rr.Job.Nodes) != 2 || len(rr.Job.MissingNodes) != 0 {
		t.Fatalf("merged copy: %d GPUs, job %+v", len(rr.GPUs), rr.Job)
	}

	// n2's parts lost: its run is still found; n3 named by a part has none.
	os.Remove(filepath.Join(merged, trace.ManifestDir, trace.TaskFile(2)))
	n3 := synthNode{name: "n3", index: 2, tasks: []int{4}}
	writePart(t, merged, n3, 0, 4, 3, 5)
	rr = openJob(t, merged, analyze.DefaultSettings()).Result
	if len(rr.Job.Nodes) != 2 || !slices.Equal(rr.Job.MissingNodes, []string{"n3"}) {
		t.Errorf("nodes %d, missing %v", len(rr.Job.Nodes), rr.Job.MissingNodes)
	}
	if w, ok := hasCode(rr.Warnings, "node_missing"); !ok || !strings.Contains(w.Message, "n3") {
		t.Errorf("node_missing warning %+v", w)
	}

	other := nodes[1]
	other.jobID = "78"
	writeNodeRun(t, filepath.Join(merged, "x"), other, 2, 4)
	if _, err := analyze.Load(merged); err == nil || !strings.Contains(err.Error(), "not a node of job 77.0") {
		t.Errorf("another job's run inside: %v", err)
	}
	os.RemoveAll(filepath.Join(merged, "x"))
	writeNodeRun(t, filepath.Join(merged, "n2-again"), nodes[1], 2, 4)
	if _, err := analyze.Load(merged); err == nil || !strings.Contains(err.Error(), "node n2 was recorded twice") {
		t.Errorf("a node twice: %v", err)
	}
}

// A job directory whose nodes left no run is an error that says so.
func TestJobWithoutRuns(t *testing.T) {
	dir := t.TempDir()
	writePart(t, dir, synthNode{name: "n1", tasks: []int{0}}, 0, 0, 1, 1)
	_, err := analyze.Load(dir)
	if err == nil || !strings.Contains(err.Error(), "no node run in it") {
		t.Errorf("%v", err)
	}
}

// A node whose samples stop inside a window leaves the job's energy of it
// null, and says so: its GPUs' energy is not there to sum.
func TestJobWindowNotCovered(t *testing.T) {
	nodes := twoNodes()
	nodes[1].endAt = 25 * sec
	dir := filepath.Join(t.TempDir(), "job")
	writeJob(t, dir, nodes)
	w := measuredWindows(openJob(t, dir, analyze.DefaultSettings()))[0]
	if w.EnergyJ.Valid() || w.Nodes[1].EnergyJ.Valid() || !w.Nodes[0].EnergyJ.Valid() {
		t.Errorf("energy %v, nodes %+v: want n2's and the job's null", w.EnergyJ, w.Nodes)
	}
	if x, ok := hasCode(w.Warnings, "node_not_covered"); !ok || !strings.Contains(x.Message, "node n2's samples (0.0 to 25.0 s)") {
		t.Errorf("warning %+v", x)
	}
}

// The shipped two-node job (testdata/jobs): every window's energy, summed
// over both nodes' GPUs on n1's clock, lies within its stated uncertainty
// of the simulated GPUs' true energy (their sim_truth, each on its node's
// clock, moved with it).
func TestJobRecoversSimTruth(t *testing.T) {
	rr := openJob(t, "../testdata/jobs/sim-2nodes", analyze.DefaultSettings()).Result
	checked := 0
	for _, w := range rr.Windows {
		if w.SimTruthEnergyJ == nil {
			t.Fatalf("%s: no sim_truth_energy_j", w.Name)
		}
		truth := float64(*w.SimTruthEnergyJ)
		for _, e := range []struct {
			name     string
			v, bound analyze.Num
		}{{"counter", w.EnergyJ, w.UncertaintyPct}, {"integrated", w.EnergyIntegratedJ, w.IntegratedUncertaintyPct}} {
			if rel := math.Abs(float64(e.v)-truth) / truth * 100; !(rel <= float64(e.bound)) {
				t.Errorf("%s (cycle %d): %s energy %.1f J, truth %.1f J: %.2f%% off, stated +/-%.2f%%", w.Name, w.Cycle, e.name, float64(e.v), truth, rel, float64(e.bound))
			}
		}
		checked++
	}
	if checked < 20 || len(rr.GPUs) != 4 {
		t.Errorf("%d windows of %d GPUs checked", checked, len(rr.GPUs))
	}
}

// A node's recorded gaps are the job's, on n1's clock: one of every GPU of
// n2 is one of each of n2's GPUs, not n1's.
func TestJobGaps(t *testing.T) {
	nodes := twoNodes()
	one := 1
	nodes[1].gaps = []trace.Gap{{Table: trace.TableDriverPower, StartNs: nodes[1].stamp(20 * sec), EndNs: nodes[1].stamp(21 * sec), Code: "import_gap"},
		{Table: trace.TableEnergy, GPU: &one, StartNs: nodes[1].stamp(22 * sec), EndNs: nodes[1].stamp(23 * sec), Code: "import_gap"}}
	dir := filepath.Join(t.TempDir(), "job")
	writeJob(t, dir, nodes)
	d, err := analyze.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range d.Run.Meta.Gaps {
		got = append(got, fmt.Sprintf("%s gpu %d %d..%d s", g.Table, *g.GPU, (g.StartNs-trueStart)/sec, (g.EndNs-trueStart)/sec))
	}
	want := []string{"driver_power gpu 2 20..21 s", "driver_power gpu 3 20..21 s", "energy gpu 3 22..23 s"}
	if !slices.Equal(got, want) {
		t.Errorf("gaps %v, want %v", got, want)
	}
}
