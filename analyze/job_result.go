package analyze

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/llem/llem/trace"
)

// JobResult is what a job's analysis adds to a run's (RunResult.Job): the
// job, its nodes with their share of the measured windows and their
// clocks, its tasks and how they ended.
type JobResult struct {
	Scheduler string `json:"scheduler"`
	JobID     string `json:"job_id"`
	StepID    string `json:"step_id"`
	JobName   string `json:"job_name,omitempty"`
	// StepNodes and StepTasks count the step as its tasks reported it.
	StepNodes int             `json:"step_nodes"`
	StepTasks int             `json:"step_tasks"`
	Nodes     []NodeResult    `json:"nodes"`
	Tasks     []JobTaskResult `json:"tasks"`
	// FailedTasks exited non-zero, were killed, or their llem failed or
	// never finished; MissingTasks have no manifest part here;
	// MissingNodes have no run here (their GPUs are in no total).
	FailedTasks  []int    `json:"failed_tasks"`
	MissingTasks []int    `json:"missing_tasks"`
	MissingNodes []string `json:"missing_nodes"`
	// WindowsFrom says whose events the windows are: the node whose
	// cycles and idle phases they are, and per phase the task that marked it.
	WindowsFrom JobWindows `json:"windows_from"`
	Clock       JobClock   `json:"clock"`
}

// JobWindows says whose events made a job's windows.
type JobWindows struct {
	CyclesNode string         `json:"cycles_node"`
	PhaseTasks map[string]int `json:"phase_tasks"`
}

// JobClock is how well the nodes' clocks agree.
type JobClock struct {
	// ReferenceNode is the node every timestamp was put on the clock of.
	ReferenceNode string `json:"reference_node"`
	// MisalignmentBoundMs bounds how far a window marked on one node can
	// be misplaced on another's GPUs (null: unknown; 0: one node).
	MisalignmentBoundMs Num `json:"misalignment_bound_ms"`
}

// NodeResult is one node of a job.
type NodeResult struct {
	Node  string `json:"node"`
	Index int    `json:"index"`
	Run   string `json:"run"`
	// GPUs are the job indexes of its GPUs (gpus[].index).
	GPUs     []int `json:"gpus"`
	Tasks    []int `json:"tasks"`
	Complete bool  `json:"complete"`
	// ClockSource: reference, measured, max_error or unknown; ClockErrorMs
	// bounds how far its corrected stamps can be from the reference's
	// clock (null: unknown); the offsets are those subtracted.
	ClockSource   string `json:"clock_source"`
	ClockErrorMs  Num    `json:"clock_error_ms"`
	OffsetStartNs *int64 `json:"offset_start_ns"`
	OffsetEndNs   *int64 `json:"offset_end_ns"`
	ClockNote     string `json:"clock_note"`
	// Measured is the node's share of the measured windows.
	Measured *NodeTotals `json:"measured"`
}

// NodeTotals is a node's energy over some windows.
type NodeTotals struct {
	EnergyJ    Num     `json:"energy_j"`
	DurationS  float64 `json:"duration_s"`
	MeanPowerW Num     `json:"mean_power_w"`
	SharePct   Num     `json:"share_pct"` // of the job's energy over the same windows
}

// NodeWindow is one node's share of a window: its GPUs' energies summed.
type NodeWindow struct {
	Node              string `json:"node"`
	EnergyJ           Num    `json:"energy_j"`
	EnergyIntegratedJ Num    `json:"energy_integrated_j"`
	MeanPowerW        Num    `json:"mean_power_w"`
}

// JobTaskResult is one task of a job and how it ended.
type JobTaskResult struct {
	Task       int    `json:"task"`
	Node       string `json:"node"`
	Role       string `json:"role"`
	Status     string `json:"status"`
	ExitCode   *int   `json:"exit_code"`
	ExitSignal string `json:"exit_signal,omitempty"`
	Error      string `json:"error,omitempty"`
}

// jobHeader describes the job, and warns of what makes its totals less
// than the job's: nodes without a run, tasks that failed or are missing,
// events that never reached a sampler, clocks too far apart or unbounded.
func (c *runCtx) jobHeader(rr *RunResult) {
	j := c.d.Job
	if j == nil {
		return
	}
	man := j.Manifest
	jr := &JobResult{Scheduler: man.Scheduler, JobID: man.JobID, StepID: man.StepID, JobName: man.JobName,
		StepNodes: man.Nodes, StepTasks: man.Tasks, Tasks: []JobTaskResult{}, FailedTasks: orEmpty(man.Failed()),
		MissingTasks: orEmpty(man.Missing), MissingNodes: orEmpty(j.Missing),
		WindowsFrom: JobWindows{CyclesNode: j.CycleNode, PhaseTasks: j.PhaseTasks},
		Clock:       JobClock{ReferenceNode: j.Reference, MisalignmentBoundMs: Num(j.MisalignmentNs() / 1e6)}}
	for _, n := range j.Nodes {
		jr.Nodes = append(jr.Nodes, nodeResult(j, n))
	}
	for _, t := range man.Parts {
		tr := JobTaskResult{Task: t.Task, Node: t.Node, Role: t.Role, Status: t.Status, Error: t.Error}
		if t.Command != nil {
			tr.ExitCode, tr.ExitSignal = t.Command.ExitCode, t.Command.ExitSignal
		}
		jr.Tasks = append(jr.Tasks, tr)
	}
	rr.Job = jr
	c.jobWarnings(rr)
}

func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// nodeResult describes a node and its clock (its measured share comes
// with the windows: jobTotals).
func nodeResult(j *Job, n *JobNode) NodeResult {
	nr := NodeResult{Node: n.Name, Index: n.Index, Run: n.Dir, GPUs: orEmpty(n.GPUs), Complete: n.Meta.Complete,
		ClockSource: n.Clock.Source, ClockErrorMs: Num(n.Clock.ErrorNs / 1e6), ClockNote: n.Clock.Note, Tasks: []int{}}
	for _, t := range j.Manifest.Parts {
		if t.Node == n.Name {
			nr.Tasks = append(nr.Tasks, t.Task)
		}
	}
	if o := n.Clock.Offsets; len(o) > 0 {
		first, last := o[0].OffsetNs, o[len(o)-1].OffsetNs
		nr.OffsetStartNs, nr.OffsetEndNs = &first, &last
	}
	return nr
}

// jobWarnings adds the job's warnings to the run's.
func (c *runCtx) jobWarnings(rr *RunResult) {
	j, jr := c.d.Job, rr.Job
	for _, name := range j.Missing {
		why := "its directory was not copied into the job directory, or its sampler never wrote a run"
		for _, n := range j.Manifest.ByNode {
			if n.Name == name && n.Sampler != nil && n.Sampler.Error != "" {
				why = "its sampler failed: " + n.Sampler.Error
			}
		}
		rr.warn(Warning{Code: "node_missing", Message: fmt.Sprintf(
			"node %s of the job has no run here (%s): its GPUs are in no total, so the job's energy is too low", name, why)})
	}
	for _, t := range j.Manifest.Parts {
		if slices.Contains(jr.FailedTasks, t.Task) {
			rr.warn(Warning{Code: "task_failed", Message: fmt.Sprintf(
				"task %d (%s on %s) %s: the job did not run as planned; check its output before using these numbers",
				t.Task, t.Role, t.Node, taskFailure(t))})
		}
		if t.Relay != nil && t.Relay.Undelivered > 0 {
			rr.warn(Warning{Code: "events_undelivered", Message: fmt.Sprintf(
				"task %d's %d event(s) never reached its node's sampler (kept in %s): they are not in this analysis",
				t.Task, t.Relay.Undelivered, t.Relay.UndeliveredDir)})
		}
	}
	if len(jr.MissingTasks) > 0 {
		rr.warn(Warning{Code: "task_missing", Message: fmt.Sprintf(
			"task(s) %s of %d have no manifest part here: their llem never started, or their node's files were not copied into the job directory",
			joinInts(jr.MissingTasks), jr.StepTasks)})
	}
	c.clockWarnings(rr)
}

// taskFailure says how a failed task ended.
func taskFailure(t trace.JobTask) string {
	switch {
	case t.Status == trace.TaskFailed:
		return "stopped because llem failed: " + t.Error
	case t.Status == trace.TaskRunning:
		return "never finished (its manifest part still says running: it was killed outright, or copied before it ended)"
	case t.Command == nil || t.Command.ExitCode == nil:
		return "never ran its command"
	case t.Command.ExitSignal != "":
		return fmt.Sprintf("was killed by %s (exit code %d)", t.Command.ExitSignal, *t.Command.ExitCode)
	}
	return fmt.Sprintf("exited with code %d", *t.Command.ExitCode)
}

// clockWarnings flags a misalignment bound above the setting, an unknown
// one, and offsets measured only once.
func (c *runCtx) clockWarnings(rr *RunResult) {
	j := c.d.Job
	b := j.MisalignmentNs()
	var notes []string
	for _, n := range j.Nodes {
		if n.Clock.Source != ClockReference {
			notes = append(notes, n.Name+": "+n.Clock.Note)
		}
		if len(n.Clock.Offsets) == 1 {
			rr.warn(Warning{Code: "clock_offset_once", Message: fmt.Sprintf(
				"node %s's clock offset to %s was measured only at the %s: its drift during the run is not in the misalignment bound",
				n.Name, j.Reference, n.Clock.Offsets[0].At)})
		}
	}
	switch {
	case math.IsNaN(b):
		rr.warn(Warning{Code: "clock_unbounded", Message: fmt.Sprintf(
			"how far windows of different nodes are misaligned is unknown (%s): energy at window edges may be misplaced by any amount, and the uncertainty leaves it out",
			strings.Join(notes, "; "))})
	case b/1e6 > c.s.ClockMisalignmentMaxMs:
		rr.warn(Warning{Code: "clock_misalignment", Message: fmt.Sprintf(
			"windows of different nodes can be misaligned by up to %.3f ms, more than clock_misalignment_max_ms (%g ms) (%s): each window edge that far off moves the power there times that time of energy (in edge_uncertainty_pct)",
			b/1e6, c.s.ClockMisalignmentMaxMs, strings.Join(notes, "; "))})
	}
}

// jobWindow fills a job's window with each node's share and folds the
// misalignment of the nodes' clocks into the window's timing terms.
func (c *runCtx) jobWindow(w Window, wr *WindowResult, energy Num) {
	j := c.d.Job
	if j == nil {
		return
	}
	for _, n := range j.Nodes {
		nw := NodeWindow{Node: n.Name}
		var counter, integ float64
		for _, gi := range n.GPUs {
			gw := wr.GPUs[gi]
			counter += float64(gw.EnergyJ) // NaN stays NaN
			integ += float64(gw.EnergyIntegratedJ)
		}
		nw.EnergyJ, nw.EnergyIntegratedJ, nw.MeanPowerW = Num(counter), Num(integ), NaN
		if len(n.GPUs) == 0 {
			nw.EnergyJ, nw.EnergyIntegratedJ = NaN, NaN
		}
		if e := wr.nodeEnergy(nw); e.Valid() && wr.DurationS > 0 {
			nw.MeanPowerW = e / Num(wr.DurationS)
		}
		if !nw.EnergyJ.Valid() && !nw.EnergyIntegratedJ.Valid() && len(n.GPUs) > 0 {
			wr.warnf("node_not_covered", "node %s's samples (%.1f to %.1f s) do not cover this window: the job's energy is null here",
				n.Name, c.d.seconds(n.StartNs), c.d.seconds(n.EndNs))
		}
		wr.Nodes = append(wr.Nodes, nw)
	}
	terms, ok := c.clockTerms(w)
	wr.counterTerms = append(wr.counterTerms, terms...)
	wr.integTerms = append(wr.integTerms, terms...)
	pct := NaN
	if ok && energy.Valid() && energy > 0 {
		pct = Num(q95(terms)) / energy * 100
	}
	wr.ClockUncertaintyPct = &pct
}

// jobTotals gives each node its share of the measured windows.
func (c *runCtx) jobTotals(rr *RunResult) {
	if rr.Job == nil {
		return
	}
	total := Num(0)
	for _, wr := range rr.Windows {
		if wr.Measured {
			total += bestEnergy(wr.EnergyJ, wr.EnergyIntegratedJ)
		}
	}
	for k := range rr.Job.Nodes {
		nt := &NodeTotals{}
		for _, wr := range rr.Windows {
			if !wr.Measured {
				continue
			}
			nt.EnergyJ += wr.nodeEnergy(wr.Nodes[k])
			nt.DurationS += wr.DurationS
		}
		nt.MeanPowerW, nt.SharePct = NaN, NaN
		if nt.DurationS > 0 {
			nt.MeanPowerW = nt.EnergyJ / Num(nt.DurationS)
		}
		if total.Valid() && total > 0 {
			nt.SharePct = nt.EnergyJ / total * 100
		}
		rr.Job.Nodes[k].Measured = nt
	}
}

// nodeEnergy is a node's share of the window's energy by the window's
// rule: the counter's when every GPU's counter covers the window, else
// integrated power's (bestEnergy), so that the shares add up to it.
func (wr WindowResult) nodeEnergy(nw NodeWindow) Num {
	if wr.EnergyJ.Valid() {
		return nw.EnergyJ
	}
	return nw.EnergyIntegratedJ
}

// NodeTrace is one node's power summed over its GPUs: what the nodes
// figure draws, x in seconds from the job's first sample.
type NodeTrace struct {
	Node  string
	GPUs  int
	Power XY
}

// NodePower is each node's power over a job, its GPUs' best power series
// (driver, else instant, else 1 s average) summed in bins of one sensor
// update (100 ms) at the bins' centres; bins some GPU of the node does
// not cover are left out. nil for a run that is not a job.
func (r *Run) NodePower() []NodeTrace {
	d := r.Data
	if d.Job == nil {
		return nil
	}
	const binNs = 100e6
	var out []NodeTrace
	for _, n := range d.Job.Nodes {
		var gpus []*GPU
		for _, gi := range n.GPUs {
			gpus = append(gpus, d.GPUs[gi])
		}
		nt := NodeTrace{Node: n.Name, GPUs: len(gpus)}
		for i, v := range sumBins(gpus, powerSeries, d.Origin, d.End, binNs) {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				nt.Power.add((float64(i)+0.5)*binNs/1e9, v)
			}
		}
		out = append(out, nt)
	}
	return out
}
