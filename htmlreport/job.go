package htmlreport

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/llem/llem/analyze"
)

// jobKV are a multi-node job's rows of the results: the job and whose
// events its windows are, the clocks, each node's share and clock, and how
// the tasks ended (docs/multinode.md).
func jobKV(j *analyze.JobResult) []kv {
	if j == nil {
		return nil
	}
	phases := make([]string, 0, len(j.WindowsFrom.PhaseTasks))
	for p, t := range j.WindowsFrom.PhaseTasks {
		phases = append(phases, fmt.Sprintf("%s from task %d", p, t))
	}
	sort.Strings(phases)
	out := []kv{{"Job", fmt.Sprintf("%s job %s.%s: %d of %d nodes, %d of %d tasks; windows: cycles and idle phases from %s%s",
		j.Scheduler, j.JobID, j.StepID, len(j.Nodes), j.StepNodes, len(j.Tasks), j.StepTasks, j.WindowsFrom.CyclesNode,
		strings.Join(append([]string{""}, phases...), ", "))}}
	bound := "unknown"
	if b := j.Clock.MisalignmentBoundMs; b.Valid() {
		bound = fmt.Sprintf("at most %.3f ms", float64(b))
	}
	out = append(out, kv{"Clocks", fmt.Sprintf("on %s's clock; windows of different nodes misaligned by %s", j.Clock.ReferenceNode, bound)})
	for _, n := range j.Nodes {
		val := fmt.Sprintf("GPUs %s, tasks %s", intList(n.GPUs), intList(n.Tasks))
		if m := n.Measured; m != nil {
			val += fmt.Sprintf("; measured %s (%s of the job), %s", num(m.EnergyJ, 1)+" J", num(m.SharePct, 1)+"%", num(m.MeanPowerW, 1)+" W")
		}
		out = append(out, kv{"Node " + n.Node, val + "; clock: " + n.ClockNote})
	}
	var exits []string
	for _, t := range j.Tasks {
		e := t.Status
		if t.ExitCode != nil {
			e = "exit " + strconv.Itoa(*t.ExitCode)
		}
		if t.ExitSignal != "" {
			e += " (" + t.ExitSignal + ")"
		}
		exits = append(exits, fmt.Sprintf("%d (%s on %s) %s", t.Task, t.Role, t.Node, e))
	}
	if len(j.FailedTasks) > 0 {
		exits = append(exits, "failed: "+intList(j.FailedTasks))
	}
	return append(out, kv{"Tasks", strings.Join(exits, "; ")})
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// gpuName is a GPU's name in a job's report: its node and index there too.
func gpuName(res *analyze.RunResult, index int, name string) string {
	for _, g := range res.GPUs {
		if g.Index == index && g.Node != "" && g.NodeGPU != nil {
			return fmt.Sprintf("%s (%s GPU %d)", name, g.Node, *g.NodeGPU)
		}
	}
	return name
}
