package report

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
)

// jobResults is results() made a two-node job: GPU 1 is n2's GPU 0.
func jobResults() *analyze.Results {
	res := results()
	r := &res.Runs[0]
	zero := 0
	r.GPUs = []analyze.GPUSummary{{Index: 0, Name: "Sim GPU", Node: "n1", NodeGPU: &zero}, {Index: 1, Name: "Sim GPU", Node: "n2", NodeGPU: &zero}}
	r.Thermal[0].GPUs[0].GPU = 1
	r.Windows[0].Nodes = []analyze.NodeWindow{{Node: "n1", EnergyJ: 1200, EnergyIntegratedJ: 1205, MeanPowerW: 120},
		{Node: "n2", EnergyJ: 800, EnergyIntegratedJ: 805, MeanPowerW: 80}}
	three := 3
	r.Job = &analyze.JobResult{Scheduler: "slurm", JobID: "12", StepID: "0", StepNodes: 2, StepTasks: 2,
		Nodes: []analyze.NodeResult{
			{Node: "n1", GPUs: []int{0}, Tasks: []int{0}, ClockNote: "the reference",
				Measured: &analyze.NodeTotals{EnergyJ: 1200, DurationS: 10, MeanPowerW: 120, SharePct: 60}},
			{Node: "n2", GPUs: []int{1}, Tasks: []int{1}, ClockNote: "offset +0.002 ms within 0.014 ms"}},
		Tasks:       []analyze.JobTaskResult{{Task: 0, ExitCode: &zero}, {Task: 1, ExitCode: &three}},
		FailedTasks: []int{1}, WindowsFrom: analyze.JobWindows{CyclesNode: "n1", PhaseTasks: map[string]int{"measure": 0}},
		Clock: analyze.JobClock{ReferenceNode: "n1", MisalignmentBoundMs: 0.014}}
	return res
}

func TestTableOfAJob(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, jobResults()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"gpus      0 n1 GPU 0 Sim GPU; 1 n2 GPU 0 Sim GPU\n",
		"job       slurm job 12.0: 2 of 2 nodes, 2 of 2 tasks; windows: cycles and idle phases from n1, measure from task 0\n",
		"clocks    on n1's clock; windows of different nodes misaligned by at most 0.014 ms\n",
		"node      n1 (GPUs 0; tasks 0): measured 1200.0 J (60.0%), 120.0 W; clock the reference\n",
		"node      n2 (GPUs 1; tasks 1): no measured window; clock offset +0.002 ms within 0.014 ms\n",
		"tasks     0 exit 0; 1 exit 3 (failed: 1)\n",
		"thermal   measure (cycle 1) n2 GPU 0:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	res := jobResults()
	res.Runs[0].Job.Clock.MisalignmentBoundMs = analyze.NaN
	b.Reset()
	Table(&b, res)
	if !strings.Contains(b.String(), "misaligned by unknown\n") {
		t.Errorf("an unknown bound:\n%s", b.String())
	}
}

// A job's window is its row (node empty) and a row per node with the
// node's share, so that summing a sweep's rows of node "" counts each
// window once.
func TestCSVOfAJob(t *testing.T) {
	var b bytes.Buffer
	if err := CSV(&b, jobResults()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	col := func(row []string, name string) string { return row[slices.Index(head, name)] }
	if len(rows) != 1+3+1 {
		t.Fatalf("%d rows, want the header, the measure window and its two nodes, the gap", len(rows))
	}
	for i, want := range [][3]string{{"", "2000", "200"}, {"n1", "1200", "120"}, {"n2", "800", "80"}} {
		row := rows[1+i]
		if got := [3]string{col(row, "node"), col(row, "energy_j"), col(row, "mean_power_w")}; got != want ||
			col(row, "window") != "measure" || col(row, "label:batch") != "8" || len(row) != len(head) {
			t.Errorf("row %d: %v", i, row)
		}
	}
	if col(rows[2], "output_tokens") != "" || col(rows[1], "output_tokens") != "1600" {
		t.Errorf("tokens: job %q, node %q", col(rows[1], "output_tokens"), col(rows[2], "output_tokens"))
	}
}
