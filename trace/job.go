package trace

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A job directory holds one recording of a multi-node job (llem record
// under Slurm): one ordinary run directory per node, named after the node,
// and the job manifest, one small JSON file per task under ManifestDir:
//
//	llem-job-12345.0/
//	  n1/                    node n1's run (meta.json and tables, as any run)
//	  n2/
//	  manifest/
//	    task-000000.json     written by task 0 itself: its node, role, command and exit
//	    task-000001.json ...
//	    clock-reference.json where the reference node's clock answers (offsets)
//
// Every task writes only its own part, so no two processes ever write the
// same file, no node needs another node's files, and parts copied together
// from several nodes' local output directories merge by being put in one
// folder: ReadJob merges them.
const (
	ManifestDir        = "manifest"
	ManifestVersion    = "1.0"
	ClockReferenceFile = "clock-reference.json"
)

// Roles of a task in a job.
const (
	// RoleSampler is the one task per node that samples the node's GPUs
	// and writes the node's run directory.
	RoleSampler = "sampler"
	// RoleRelay is every other task: it runs its command and sends its
	// events to the node's sampler.
	RoleRelay = "relay"
)

// Task status values in JobTask.Status.
const (
	TaskRunning     = "running"     // the task's llem has started and not yet finished (or was killed)
	TaskComplete    = "complete"    // the command ran (whatever its exit code) and llem finished
	TaskInterrupted = "interrupted" // a signal ended an idle phase or the wait for other tasks
	TaskFailed      = "failed"      // llem itself failed: Error says why
)

// JobTask is one task's part of a job manifest, manifest/task-NNNNNN.json
// (NNNNNN its task number, SLURM_PROCID). The task writes it when it starts
// (status "running") and replaces it when it ends.
type JobTask struct {
	ManifestVersion string `json:"manifest_version"`
	LlemVersion     string `json:"llem_version"`
	// Scheduler is "slurm".
	Scheduler string `json:"scheduler"`
	JobID     string `json:"job_id"`
	StepID    string `json:"step_id"`
	JobName   string `json:"job_name,omitempty"`
	// Tasks and Nodes count the whole step.
	Tasks int `json:"tasks"`
	Nodes int `json:"nodes"`
	// Task is the task's rank in the step (SLURM_PROCID); LocalTask its rank
	// on its node (SLURM_LOCALID).
	Task      int    `json:"task"`
	LocalTask int    `json:"local_task"`
	Node      string `json:"node"`
	// NodeIndex is the node's position in the step (SLURM_NODEID).
	NodeIndex int `json:"node_index"`
	// TasksOnNode is how many tasks of the step run on this node; 0 when
	// Slurm did not say.
	TasksOnNode int    `json:"tasks_on_node"`
	Hostname    string `json:"hostname"`
	Role        string `json:"role"`
	Status      string `json:"status"`
	// Error is llem's own failure (not the command's, which is its exit code).
	Error string `json:"error,omitempty"`
	// Command is the task's command: argv, start and end, exit code and signal, cycles.
	Command *CommandInfo `json:"command,omitempty"`
	// Events counts the lines this task's command sent to its own
	// LLEM_EVENTS socket.
	Events *EventStats `json:"events,omitempty"`
	// Relay is set for relay tasks: what reached the sampler.
	Relay *RelayStats `json:"relay,omitempty"`
	// The sampler's part also describes the node's recording.
	Sampler *NodeSampling `json:"sampler,omitempty"`
}

// RelayStats says what a relay task delivered to its node's sampler.
type RelayStats struct {
	// Delivered counts events and bad lines the sampler acknowledged.
	Delivered int64 `json:"delivered"`
	// Undelivered counts those the sampler never took (it failed or never
	// started); they are kept in UndeliveredDir, relative to the job
	// directory, as events and bad_events tables.
	Undelivered    int64  `json:"undelivered"`
	UndeliveredDir string `json:"undelivered_dir,omitempty"`
	// Overflow counts events lost because the sampler did not take them
	// for so long that the relay's bounded buffer filled.
	Overflow int64 `json:"overflow,omitempty"`
}

// NodeSampling is the node's recording, in its sampler's part.
type NodeSampling struct {
	// RunDir is the node's run directory, relative to the job directory.
	RunDir string `json:"run_dir"`
	// RunStatus is the run's meta.json status when the sampler finished.
	RunStatus string `json:"run_status,omitempty"`
	// GPUs are the GPUs sampled; GPUSource names what chose them (see
	// docs/multinode.md) and GPUEnv keeps the variables it looked at.
	GPUs      []JobGPU          `json:"gpus"`
	GPUSource string            `json:"gpu_source"`
	GPUEnv    map[string]string `json:"gpu_env,omitempty"`
	Clock     *ClockSync        `json:"clock,omitempty"`
}

// JobGPU identifies one sampled GPU beyond its index, so that a mismatch
// between the scheduler's numbering and the driver's can be found later.
type JobGPU struct {
	Index    int    `json:"index"`
	UUID     string `json:"uuid,omitempty"`
	PCIBusID string `json:"pci_bus_id,omitempty"`
	Name     string `json:"name,omitempty"`
}

// JobInfo is meta.json's "job" section in a node's run: the job, the node,
// and every task of the node with its exit, so that a node's run directory
// copied on its own still says what it was part of.
type JobInfo struct {
	Scheduler string `json:"scheduler"`
	JobID     string `json:"job_id"`
	StepID    string `json:"step_id"`
	JobName   string `json:"job_name,omitempty"`
	Node      string `json:"node"`
	NodeIndex int    `json:"node_index"`
	Nodes     int    `json:"nodes"`
	Tasks     int    `json:"tasks"`
	// SamplerTask is the task that sampled this node (SLURM_PROCID).
	SamplerTask int               `json:"sampler_task"`
	GPUSource   string            `json:"gpu_source"`
	GPUEnv      map[string]string `json:"gpu_env,omitempty"`
	// NodeTasks are the node's tasks, sampler first; filled in at the end.
	NodeTasks []NodeTask `json:"node_tasks,omitempty"`
}

// NodeTask is one task of a node as its sampler saw it.
type NodeTask struct {
	Task      int    `json:"task"`
	LocalTask int    `json:"local_task"`
	Role      string `json:"role"`
	// Reached is false for a task that never reached the sampler.
	Reached    bool        `json:"reached"`
	ExitCode   *int        `json:"exit_code,omitempty"`
	ExitSignal string      `json:"exit_signal,omitempty"`
	Error      string      `json:"error,omitempty"`
	StartNs    int64       `json:"start_ns,omitempty"`
	EndNs      int64       `json:"end_ns,omitempty"`
	Events     *EventStats `json:"events,omitempty"`
}

// ClockSync is what a node knew about its clock: the kernel's NTP state at
// the start and end, chrony's or ntpd's own account when they are there,
// and the measured offsets to the job's reference node.
type ClockSync struct {
	Start *KernelClock `json:"start,omitempty"`
	End   *KernelClock `json:"end,omitempty"`
	// Chrony is `chronyc -n tracking`, NTPQ `ntpq -pn`, as printed (at the
	// start; absent when the program is not installed).
	Chrony string `json:"chrony_tracking,omitempty"`
	NTPQ   string `json:"ntpq_peers,omitempty"`
	// ReferenceNode is the node whose clock the offsets are measured against.
	ReferenceNode string        `json:"reference_node,omitempty"`
	Offsets       []ClockOffset `json:"offsets,omitempty"`
	// OffsetNote says why an offset could not be measured.
	OffsetNote string `json:"offset_note,omitempty"`
}

// KernelClock is adjtimex(2) read without changing anything.
type KernelClock struct {
	TimestampNs int64 `json:"timestamp_ns"`
	// Synced: the kernel considers its clock synchronised (STA_UNSYNC
	// clear and the state is not TIME_ERROR).
	Synced bool `json:"synced"`
	// State is adjtimex's return value (0 TIME_OK ... 5 TIME_ERROR),
	// Status its STA_* bits.
	State  int   `json:"state"`
	Status int64 `json:"status"`
	// EstErrorUs and MaxErrorUs are the kernel's estimated and maximum
	// error of the clock, in microseconds, as set by the NTP daemon.
	EstErrorUs int64 `json:"est_error_us"`
	MaxErrorUs int64 `json:"max_error_us"`
	// OffsetNs is the NTP daemon's last offset given to the kernel; FreqPPM
	// the frequency correction.
	OffsetNs int64   `json:"offset_ns"`
	FreqPPM  float64 `json:"freq_ppm"`
	Error    string  `json:"error,omitempty"`
}

// ClockOffset is one measurement of this node's clock against the
// reference node's: OffsetNs = this node's clock minus the reference's
// (positive: this node is ahead), so a time t of this node is t - OffsetNs
// on the reference's clock. The true offset lies within BoundNs of OffsetNs.
type ClockOffset struct {
	At          string `json:"at"` // "start" or "end"
	TimestampNs int64  `json:"timestamp_ns"`
	OffsetNs    int64  `json:"offset_ns"`
	BoundNs     int64  `json:"bound_ns"`
	RoundTripNs int64  `json:"round_trip_ns"`
	Exchanges   int    `json:"exchanges"`
	Address     string `json:"address,omitempty"`
}

// TaskFile is the name of task's manifest part.
func TaskFile(task int) string { return fmt.Sprintf("task-%06d.json", task) }

// WriteJobTask writes a task's manifest part atomically.
func WriteJobTask(jobDir string, t *JobTask) error {
	dir := filepath.Join(jobDir, ManifestDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("job manifest: %w", err)
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", TaskFile(t.Task), err)
	}
	return writeFileAtomic(filepath.Join(dir, TaskFile(t.Task)), append(b, '\n'))
}

// Job is a job directory's manifest, merged from its parts.
type Job struct {
	Dir       string
	Scheduler string
	JobID     string
	StepID    string
	JobName   string
	// Tasks and Nodes are the step's counts as its tasks reported them.
	Tasks int
	Nodes int
	// Parts are the tasks' manifest parts, ordered by task.
	Parts []JobTask
	// ByNode groups the parts by node, ordered by node index.
	ByNode []JobNode
	// Missing lists the tasks with no part: their llem never started, or
	// their node's files were not copied here.
	Missing []int
}

// JobNode is one node of a job.
type JobNode struct {
	Name  string
	Index int
	// Tasks are the node's parts' task numbers, ascending.
	Tasks []int
	// Sampler is the node's sampler part; nil when none was found.
	Sampler *JobTask
}

// IsJobDir reports whether dir holds a job manifest.
func IsJobDir(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, ManifestDir, "task-*.json"))
	return len(m) > 0
}

// ReadJob reads and merges a job directory's manifest parts. Parts of
// another job or step in the same folder are an error (they would mix two
// experiments); a part that does not parse is an error naming the file.
func ReadJob(dir string) (*Job, error) {
	paths, err := filepath.Glob(filepath.Join(dir, ManifestDir, "task-*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: not a job directory (no %s/task-*.json)", dir, ManifestDir)
	}
	sort.Strings(paths)
	j := &Job{Dir: dir}
	seen := map[int]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var t JobTask
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if err := checkManifestVersion(t.ManifestVersion); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if len(j.Parts) == 0 {
			j.Scheduler, j.JobID, j.StepID, j.JobName = t.Scheduler, t.JobID, t.StepID, t.JobName
		} else if t.JobID != j.JobID || t.StepID != j.StepID {
			return nil, fmt.Errorf("%s: task %d is of job %s.%s, but %s is of job %s.%s: one job step per directory",
				p, t.Task, t.JobID, t.StepID, seen[j.Parts[0].Task], j.JobID, j.StepID)
		}
		if prev, dup := seen[t.Task]; dup {
			return nil, fmt.Errorf("%s: task %d also has a part in %s", p, t.Task, prev)
		}
		seen[t.Task] = p
		j.Tasks = max(j.Tasks, t.Tasks)
		j.Nodes = max(j.Nodes, t.Nodes)
		j.Parts = append(j.Parts, t)
	}
	sort.Slice(j.Parts, func(a, b int) bool { return j.Parts[a].Task < j.Parts[b].Task })
	for task := range j.Tasks {
		if _, ok := seen[task]; !ok {
			j.Missing = append(j.Missing, task)
		}
	}
	byName := map[string]int{}
	for i := range j.Parts {
		t := &j.Parts[i]
		n, ok := byName[t.Node]
		if !ok {
			n = len(j.ByNode)
			byName[t.Node] = n
			j.ByNode = append(j.ByNode, JobNode{Name: t.Node, Index: t.NodeIndex})
		}
		j.ByNode[n].Tasks = append(j.ByNode[n].Tasks, t.Task)
		if t.Role == RoleSampler {
			j.ByNode[n].Sampler = t
		}
	}
	sort.Slice(j.ByNode, func(a, b int) bool { return j.ByNode[a].Index < j.ByNode[b].Index })
	return j, nil
}

// Failed lists the tasks whose command exited non-zero, was killed by a
// signal, never ran, or whose llem failed or never finished.
func (j *Job) Failed() []int {
	var out []int
	for _, t := range j.Parts {
		if t.Status != TaskComplete && t.Status != TaskInterrupted ||
			t.Command == nil || t.Command.ExitCode == nil || *t.Command.ExitCode != 0 {
			out = append(out, t.Task)
		}
	}
	return out
}

func checkManifestVersion(v string) error {
	if v == "" {
		return errors.New("no manifest_version: not an llem job manifest")
	}
	major, _, _ := strings.Cut(v, ".")
	if want, _, _ := strings.Cut(ManifestVersion, "."); major != want {
		return fmt.Errorf("job manifest version %s: this llem reads %s.x", v, want)
	}
	return nil
}
