package trace

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A format 1.0 run, recorded before the events table had a task column,
// reads with the column null.
func TestEventsOfFormat10HaveNoTask(t *testing.T) {
	r, err := Open(filepath.Join("..", "testdata", "runs", "h100-bs8-cycles"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.SchemaVersion != "1.0" {
		t.Fatalf("the shipped run is format %s; this test needs a 1.0 run", r.Meta.SchemaVersion)
	}
	evs, err := ReadTable[Event](r, TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for _, e := range evs {
		if e.Task != nil {
			t.Fatalf("event %+v has task %d; want null", e, *e.Task)
		}
	}
}

func TestEventTaskRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := WriteMeta(dir, &Meta{SchemaVersion: SchemaVersion, RunID: "t"}); err != nil {
		t.Fatal(err)
	}
	w, err := NewTableWriter(dir, TableEvents, "t", CompareEvent)
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	in := []Event{
		{TimestampNs: 1, GPU: GPUAll, Kind: "mark", Name: "a", Source: "client", Task: &three},
		{TimestampNs: 2, GPU: GPUAll, Kind: "mark", Name: "b", Source: "client"},
	}
	if err := w.Add(in...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ReadTable[Event](r, TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("read back %+v, want %+v", out, in)
	}
}

func part(task int, node string, nodeIndex int, role string, exit int) *JobTask {
	return &JobTask{ManifestVersion: ManifestVersion, Scheduler: "slurm", JobID: "7", StepID: "0",
		Tasks: 4, Nodes: 2, Task: task, Node: node, NodeIndex: nodeIndex, Role: role, Status: TaskComplete,
		Command: &CommandInfo{Argv: []string{"true"}, ExitCode: &exit}}
}

// Parts written on different nodes merge by being put in one folder; a
// task that never wrote its part is reported missing, a failing one failed.
func TestReadJobMergesParts(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []*JobTask{
		part(3, "n2", 1, RoleRelay, 0),
		part(0, "n1", 0, RoleSampler, 0),
		part(2, "n2", 1, RoleSampler, 5),
	} {
		if err := WriteJobTask(dir, p); err != nil {
			t.Fatal(err)
		}
	}
	j, err := ReadJob(dir)
	if err != nil {
		t.Fatal(err)
	}
	if j.JobID != "7" || j.StepID != "0" || j.Tasks != 4 || j.Nodes != 2 {
		t.Fatalf("job %+v", j)
	}
	var tasks []int
	for _, p := range j.Parts {
		tasks = append(tasks, p.Task)
	}
	if !reflect.DeepEqual(tasks, []int{0, 2, 3}) {
		t.Fatalf("parts of tasks %v, want [0 2 3]", tasks)
	}
	if !reflect.DeepEqual(j.Missing, []int{1}) {
		t.Fatalf("missing %v, want [1]", j.Missing)
	}
	if !reflect.DeepEqual(j.Failed(), []int{2}) {
		t.Fatalf("failed %v, want [2]", j.Failed())
	}
	if len(j.ByNode) != 2 || j.ByNode[0].Name != "n1" || j.ByNode[1].Name != "n2" ||
		!reflect.DeepEqual(j.ByNode[1].Tasks, []int{2, 3}) || j.ByNode[1].Sampler == nil || j.ByNode[1].Sampler.Task != 2 {
		t.Fatalf("by node %+v", j.ByNode)
	}
	if !IsJobDir(dir) || IsJobDir(t.TempDir()) {
		t.Fatal("IsJobDir")
	}
}

func TestReadJobRefusesMixedSteps(t *testing.T) {
	dir := t.TempDir()
	a := part(0, "n1", 0, RoleSampler, 0)
	b := part(1, "n1", 0, RoleRelay, 0)
	b.StepID = "1"
	for _, p := range []*JobTask{a, b} {
		if err := WriteJobTask(dir, p); err != nil {
			t.Fatal(err)
		}
	}
	_, err := ReadJob(dir)
	if err == nil || !strings.Contains(err.Error(), "one job step per directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadJobErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadJob(dir); err == nil || !strings.Contains(err.Error(), "not a job directory") {
		t.Fatalf("empty dir: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ManifestDir), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, ManifestDir, TaskFile(0))
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJob(dir); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("broken part: %v", err)
	}
	if err := os.WriteFile(bad, []byte(`{"manifest_version":"2.0","task":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJob(dir); err == nil || !strings.Contains(err.Error(), "this llem reads 1.x") {
		t.Fatalf("newer major: %v", err)
	}
}
