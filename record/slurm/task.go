package slurm

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/llem/llem/record"
)

// Task is one task of a Slurm job step, as Slurm's environment describes
// it to the process it starts.
type Task struct {
	JobID   string // SLURM_JOB_ID
	StepID  string // SLURM_STEP_ID; "batch" for the batch script itself
	JobName string // SLURM_JOB_NAME
	Restart int    // SLURM_RESTART_COUNT: how often the job was requeued

	Rank      int    // SLURM_PROCID: the task's rank in the step
	LocalRank int    // SLURM_LOCALID: its rank on its node
	Node      string // SLURMD_NODENAME
	NodeIndex int    // SLURM_NODEID: the node's position in the step

	Tasks int // SLURM_STEP_NUM_TASKS, SLURM_NTASKS
	Nodes int // SLURM_STEP_NUM_NODES, SLURM_NNODES
	// TasksOnNode is how many tasks of the step run on this node, from
	// SLURM_STEP_TASKS_PER_NODE (or SLURM_TASKS_PER_NODE,
	// SLURM_NTASKS_PER_NODE); 0 when Slurm does not say.
	TasksOnNode int
	// NodeRanks are the ranks of the step's tasks on this node
	// (SLURM_GTIDS); nil when Slurm did not say.
	NodeRanks []int

	// GPUEnv keeps the variables that name the job's GPUs (see SelectGPUs).
	GPUEnv map[string]string
}

// Sampler reports whether the task samples its node's GPUs: the task
// with local rank 0, which every node of a step has, so the choice needs
// no coordination and does not depend on which task starts first.
func (t *Task) Sampler() bool { return t.LocalRank == 0 }

// ErrNotInStep is returned by Detect inside an allocation but outside a job
// step (a salloc shell on a login node): there is no node of the job to
// record, only the host llem runs on.
var ErrNotInStep = errors.New("SLURM_JOB_ID is set but SLURMD_NODENAME is not: this is a Slurm allocation's shell, not a task on one of its nodes")

// Detect reads the task from the environment. It returns nil and no error
// outside Slurm (no SLURM_JOB_ID), and an error naming the variable when
// one is malformed.
func Detect(getenv func(string) string) (*Task, error) {
	first := func(names ...string) (string, string) {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return n, v
			}
		}
		return names[0], ""
	}
	_, job := first("SLURM_JOB_ID", "SLURM_JOBID")
	if job == "" {
		return nil, nil
	}
	t := &Task{JobID: job, GPUEnv: map[string]string{}}
	_, t.Node = first("SLURMD_NODENAME")
	if t.Node == "" {
		return nil, ErrNotInStep
	}
	_, t.JobName = first("SLURM_JOB_NAME")
	for _, name := range gpuVariables {
		if v := getenv(name); v != "" {
			t.GPUEnv[name] = v
		}
	}

	num := func(names ...string) (int, bool, error) {
		name, v := first(names...)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("%s=%q: not a count or rank", name, v)
		}
		return n, true, nil
	}
	var err error
	var ok bool
	if t.Restart, _, err = num("SLURM_RESTART_COUNT"); err != nil {
		return nil, err
	}
	// The batch script has no step id: it is the job's one "batch" step,
	// a single task. Its SLURM_NTASKS and SLURM_TASKS_PER_NODE describe
	// the job's later steps, not itself.
	_, t.StepID = first("SLURM_STEP_ID", "SLURM_STEPID")
	if t.StepID == "" {
		t.StepID = "batch"
		t.Tasks, t.Nodes, t.TasksOnNode = 1, 1, 1
		return t, nil
	}
	if t.Rank, ok, err = num("SLURM_PROCID"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("SLURM_STEP_ID is set but SLURM_PROCID is not: cannot tell which task this is")
	}
	if t.LocalRank, ok, err = num("SLURM_LOCALID"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("SLURM_STEP_ID is set but SLURM_LOCALID is not: cannot tell which task samples the node")
	}
	if t.NodeIndex, _, err = num("SLURM_NODEID"); err != nil {
		return nil, err
	}
	if t.Tasks, _, err = num("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"); err != nil {
		return nil, err
	}
	if t.Nodes, _, err = num("SLURM_STEP_NUM_NODES", "SLURM_NNODES"); err != nil {
		return nil, err
	}
	if name, v := first("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"); v != "" {
		if t.TasksOnNode, err = tasksOnNode(v, t.NodeIndex); err != nil {
			return nil, fmt.Errorf("%s=%q: %w", name, v, err)
		}
	} else if t.TasksOnNode, _, err = num("SLURM_NTASKS_PER_NODE"); err != nil {
		return nil, err
	}
	if t.Tasks > 0 && t.Rank >= t.Tasks {
		return nil, fmt.Errorf("SLURM_PROCID=%d is not below the step's %d tasks", t.Rank, t.Tasks)
	}
	if v := strings.TrimSpace(getenv("SLURM_GTIDS")); v != "" {
		for _, s := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || r < 0 {
				return nil, fmt.Errorf("SLURM_GTIDS=%q: want task ranks separated by commas", v)
			}
			t.NodeRanks = append(t.NodeRanks, r)
		}
		if !slices.Contains(t.NodeRanks, t.Rank) {
			return nil, fmt.Errorf("SLURM_GTIDS=%q does not list this task (SLURM_PROCID=%d)", v, t.Rank)
		}
		if t.TasksOnNode == 0 {
			t.TasksOnNode = len(t.NodeRanks)
		}
	}
	if t.TasksOnNode > 0 && t.LocalRank >= t.TasksOnNode {
		return nil, fmt.Errorf("SLURM_LOCALID=%d is not below the node's %d tasks", t.LocalRank, t.TasksOnNode)
	}
	return t, nil
}

// tasksOnNode reads Slurm's compressed per-node task counts, "2(x3),1"
// meaning 2 tasks on each of the first three nodes and 1 on the fourth,
// and returns the count of node index.
func tasksOnNode(list string, index int) (int, error) {
	node := 0
	for _, item := range strings.Split(list, ",") {
		count, reps := item, "1"
		if c, r, ok := strings.Cut(item, "(x"); ok {
			if !strings.HasSuffix(r, ")") {
				return 0, fmt.Errorf("%q: want COUNT or COUNT(xREPEAT)", item)
			}
			count, reps = c, strings.TrimSuffix(r, ")")
		}
		n, err1 := strconv.Atoi(count)
		k, err2 := strconv.Atoi(reps)
		if err1 != nil || err2 != nil || n < 0 || k < 1 {
			return 0, fmt.Errorf("%q: want COUNT or COUNT(xREPEAT)", item)
		}
		if index < node+k {
			return n, nil
		}
		node += k
	}
	return 0, fmt.Errorf("no entry for node %d (SLURM_NODEID)", index)
}

// DefaultOut is the job directory when none is given: one per job
// step, named as Slurm names steps (JOB.STEP).
const DefaultOut = "llem-job-%j.%s"

// ExpandOut replaces Slurm's filename patterns in the job directory's
// name (Config.OutDir): %j job id, %s
// step id, %N node name, %n node index, %x job name, %u user name, %% a
// literal %. Patterns that differ between the tasks of a node (%t, the
// task) are refused: the tasks of a node share one run directory. Errors
// are *record.ConfigError of field OutDir.
func (t *Task) ExpandOut(pattern string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(pattern) {
			return "", outError("%q: ends in a lone %%; write %%%% for a literal %%", pattern)
		}
		i++
		switch pattern[i] {
		case 'j':
			b.WriteString(t.JobID)
		case 's':
			b.WriteString(t.StepID)
		case 'N':
			b.WriteString(t.Node)
		case 'n':
			b.WriteString(strconv.Itoa(t.NodeIndex))
		case 'x':
			b.WriteString(t.JobName)
		case 'u':
			u, err := user.Current()
			if err != nil {
				return "", outError("%q: %%u: %v", pattern, err)
			}
			b.WriteString(u.Username)
		case '%':
			b.WriteByte('%')
		case 't':
			return "", outError("%q: %%t (the task) is not allowed: the tasks of a node share one run directory", pattern)
		default:
			return "", outError("%q: %%%c is not a pattern llem knows (%%j job, %%s step, %%N node, %%n node index, %%x job name, %%u user, %%%% a literal %%)", pattern, pattern[i])
		}
	}
	if b.Len() == 0 {
		return "", outError("%q: expands to an empty path", pattern)
	}
	return b.String(), nil
}

func outError(format string, args ...any) error {
	return &record.ConfigError{Field: "OutDir", Msg: fmt.Sprintf(format, args...)}
}
