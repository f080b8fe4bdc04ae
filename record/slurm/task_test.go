package slurm

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/llem/llem/record"
)

// env is a fake environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// srunEnv is what srun -N2 --ntasks-per-node=2 --gpus-per-node=2 gave task 3
// on the test cluster (.ci/slurm), trimmed to what llem reads.
func srunEnv() env {
	return env{
		"SLURM_JOB_ID": "12", "SLURM_JOB_NAME": "llem", "SLURM_STEP_ID": "0",
		"SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURMD_NODENAME": "n2",
		"SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_NODES": "2", "SLURM_NNODES": "2",
		"SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_GTIDS": "2,3",
		"SLURM_STEP_GPUS": "0,1", "CUDA_VISIBLE_DEVICES": "0,1",
	}
}

func TestDetectSrunTask(t *testing.T) {
	got, err := Detect(srunEnv().get)
	if err != nil {
		t.Fatal(err)
	}
	want := &Task{JobID: "12", StepID: "0", JobName: "llem", Rank: 3, LocalRank: 1, Node: "n2", NodeIndex: 1,
		Tasks: 4, Nodes: 2, TasksOnNode: 2, NodeRanks: []int{2, 3},
		GPUEnv: map[string]string{"SLURM_STEP_GPUS": "0,1", "CUDA_VISIBLE_DEVICES": "0,1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if got.Sampler() {
		t.Fatal("local task 1 must not sample")
	}
}

func TestDetectOutsideSlurmAndInAllocationShell(t *testing.T) {
	if task, err := Detect(env{"HOME": "/root"}.get); task != nil || err != nil {
		t.Fatalf("outside Slurm: %v, %v; want nil, nil", task, err)
	}
	// salloc's shell on a login node: a job, but no node of it.
	if _, err := Detect(env{"SLURM_JOB_ID": "5", "SLURM_NTASKS": "4"}.get); err != ErrNotInStep {
		t.Fatalf("allocation shell: %v, want ErrNotInStep", err)
	}
}

// The batch script itself is a single task, whatever the job's counts say
// about its later steps.
func TestDetectBatchScript(t *testing.T) {
	got, err := Detect(env{"SLURM_JOB_ID": "2", "SLURMD_NODENAME": "n1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
		"SLURM_NODEID": "0", "SLURM_NTASKS": "4", "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_JOB_GPUS": "0,1"}.get)
	if err != nil {
		t.Fatal(err)
	}
	if got.StepID != "batch" || got.Tasks != 1 || got.Nodes != 1 || got.TasksOnNode != 1 || !got.Sampler() {
		t.Fatalf("batch step: %+v", got)
	}
}

func TestDetectBadValues(t *testing.T) {
	for _, tc := range []struct {
		set, value, want string
	}{
		{"SLURM_PROCID", "x", `SLURM_PROCID="x": not a count or rank`},
		{"SLURM_PROCID", "", "SLURM_PROCID is not"},
		{"SLURM_LOCALID", "", "SLURM_LOCALID is not"},
		{"SLURM_LOCALID", "-1", `SLURM_LOCALID="-1"`},
		{"SLURM_STEP_TASKS_PER_NODE", "2(x", `SLURM_STEP_TASKS_PER_NODE="2(x"`},
		{"SLURM_STEP_TASKS_PER_NODE", "2", "no entry for node 1"},
		{"SLURM_PROCID", "4", "SLURM_PROCID=4 is not below the step's 4 tasks"},
		{"SLURM_LOCALID", "2", "SLURM_LOCALID=2 is not below the node's 2 tasks"},
		{"SLURM_GTIDS", "0,1", "does not list this task"},
		{"SLURM_GTIDS", "2,a", `SLURM_GTIDS="2,a"`},
		{"SLURM_RESTART_COUNT", "many", `SLURM_RESTART_COUNT="many"`},
	} {
		e := srunEnv()
		e[tc.set] = tc.value
		_, err := Detect(e.get)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: error %v, want one containing %q", tc.set, tc.value, err, tc.want)
		}
	}
}

func TestTasksOnNode(t *testing.T) {
	for _, tc := range []struct {
		list  string
		index int
		want  int
	}{
		{"2(x3),1", 0, 2}, {"2(x3),1", 2, 2}, {"2(x3),1", 3, 1}, {"8", 0, 8}, {"1,3,2", 1, 3},
	} {
		got, err := tasksOnNode(tc.list, tc.index)
		if err != nil || got != tc.want {
			t.Errorf("tasksOnNode(%q, %d) = %d, %v; want %d", tc.list, tc.index, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "2(x0)", "2(x3", "-1"} {
		if _, err := tasksOnNode(bad, 0); err == nil {
			t.Errorf("tasksOnNode(%q) accepted", bad)
		}
	}
}

func TestExpandOut(t *testing.T) {
	task, err := Detect(srunEnv().get)
	if err != nil {
		t.Fatal(err)
	}
	for pattern, want := range map[string]string{
		"traces/%j":         "traces/12",
		DefaultOut:          "llem-job-12.0",
		"/scratch/%N/%j.%s": "/scratch/n2/12.0",
		"%x-%n-100%%":       "llem-1-100%",
		"plain":             "plain",
	} {
		got, err := task.ExpandOut(pattern)
		if err != nil || got != want {
			t.Errorf("ExpandOut(%q) = %q, %v; want %q", pattern, got, err, want)
		}
	}
	for pattern, want := range map[string]string{
		"out/%t":  "%t (the task) is not allowed",
		"out/%q":  "%q is not a pattern llem knows",
		"out/5%":  "ends in a lone %",
		"":        "expands to an empty path",
		"out/%%%": "ends in a lone %",
	} {
		_, err := task.ExpandOut(pattern)
		var ce *record.ConfigError
		if !errors.As(err, &ce) || ce.Field != "OutDir" || !strings.Contains(ce.Msg, want) {
			t.Errorf("ExpandOut(%q): error %v, want an OutDir setting error containing %q", pattern, err, want)
		}
	}
	task.JobName = ""
	if _, err := task.ExpandOut("%x"); err == nil {
		t.Error("a job directory name that expands to nothing was accepted")
	}
}
