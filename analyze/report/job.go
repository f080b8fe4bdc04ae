package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/llem/llem/analyze"
)

// gpuLabel names a GPU of a result by its index: "GPU 2", or in a job
// "n2 GPU 0" (its node and the driver's index there).
func gpuLabel(r *analyze.RunResult, index int) string {
	for _, g := range r.GPUs {
		if g.Index == index && g.Node != "" && g.NodeGPU != nil {
			return fmt.Sprintf("%s GPU %d", g.Node, *g.NodeGPU)
		}
	}
	return fmt.Sprintf("GPU %d", index)
}

// jobLines describe a job below its GPUs: the job and whose events its
// windows are, the clocks, each node's share of the measured windows, and
// how the tasks ended.
func jobLines(w io.Writer, j *analyze.JobResult) {
	if j == nil {
		return
	}
	name := ""
	if j.JobName != "" {
		name = " (" + j.JobName + ")"
	}
	phases := make([]string, 0, len(j.WindowsFrom.PhaseTasks))
	for p, t := range j.WindowsFrom.PhaseTasks {
		phases = append(phases, fmt.Sprintf("%s from task %d", p, t))
	}
	sort.Strings(phases)
	from := "cycles and idle phases from " + j.WindowsFrom.CyclesNode
	if len(phases) > 0 {
		from += ", " + strings.Join(phases, ", ")
	}
	fmt.Fprintf(w, "job       %s job %s.%s%s: %d of %d nodes, %d of %d tasks; windows: %s\n", j.Scheduler, j.JobID, j.StepID,
		name, len(j.Nodes), j.StepNodes, len(j.Tasks), j.StepTasks, from)
	bound := "unknown"
	if b := j.Clock.MisalignmentBoundMs; b.Valid() {
		bound = "at most " + strconv.FormatFloat(float64(b), 'f', 3, 64) + " ms"
	}
	fmt.Fprintf(w, "clocks    on %s's clock; windows of different nodes misaligned by %s\n", j.Clock.ReferenceNode, bound)
	for _, n := range j.Nodes {
		share := "no measured window"
		if m := n.Measured; m != nil {
			share = fmt.Sprintf("measured %s J (%s%%), %s W", num(m.EnergyJ, 1), num(m.SharePct, 1), num(m.MeanPowerW, 1))
		}
		fmt.Fprintf(w, "node      %s (GPUs %s; tasks %s): %s; clock %s\n", n.Node, ints(n.GPUs), ints(n.Tasks), share, n.ClockNote)
	}
	var exits []string
	for _, t := range j.Tasks {
		e := t.Status
		if t.ExitCode != nil {
			e = "exit " + strconv.Itoa(*t.ExitCode)
		}
		if t.ExitSignal != "" {
			e += " " + t.ExitSignal
		}
		exits = append(exits, fmt.Sprintf("%d %s", t.Task, e))
	}
	fmt.Fprintf(w, "tasks     %s", strings.Join(exits, "; "))
	if len(j.FailedTasks) > 0 {
		fmt.Fprintf(w, " (failed: %s)", ints(j.FailedTasks))
	}
	fmt.Fprintln(w)
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
