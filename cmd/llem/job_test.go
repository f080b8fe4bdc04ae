package main_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
)

// The analysis of a job on the real two-node Slurm (slurm_test.go).

// jobScript is every task's command: a measure phase with two requests of
// ten tokens (ids unique to the process), and task 3 fails.
const jobScript = `"$LLEM" mark --kind phase_start measure
for i in 1 2; do
  "$LLEM" mark --kind request_start id=r$$-$i
  sleep 0.4
  "$LLEM" mark --kind request_end id=r$$-$i output_tokens=10
done
"$LLEM" mark --kind phase_end measure
test "$SLURM_PROCID" != 3 || exit 3`

// Tasks 0-2 run both cycles, task 3 stops after its failed first: 7 runs
// of the script, 14 requests, 140 tokens.
const jobRequests, jobTokens = 14, 140

// recordJob runs the script as a two-node, four-task job step, each node
// sampling 2 of its 4 simulated GPUs, into out (Slurm's patterns).
func recordJob(t *testing.T, c *cluster, root, out string) {
	t.Helper()
	r := c.run(t, root, "srun", "-N2", "--ntasks-per-node=2", "--gpus-per-node=2", "--export=ALL,LLEM="+llemBin,
		llemBin, "record", "--device", "sim", "--sim-gpus", "4", "--quiet", "--idle-before", "2s", "--idle-after", "2s",
		"--cycles", "2", "--cooldown", "1s", "--out", out, "--", "sh", "-c", jobScript)
	if r.code != 3 {
		t.Fatalf("srun exit %d, want task 3's 3\n%s", r.code, r.stderr)
	}
}

// analyzeJSON runs llem analyze --json with args and decodes its runs.
func analyzeJSON(t *testing.T, args ...string) []analyze.RunResult {
	t.Helper()
	r := llem(t, nil, append([]string{"analyze", "--json", "--quiet"}, args...)...)
	if r.code != 0 {
		t.Fatalf("llem analyze %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var res analyze.Results
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("llem analyze --json %v: %v", args, err)
	}
	return res.Runs
}

func warned(rr analyze.RunResult, code string) (analyze.Warning, bool) {
	for _, w := range rr.Warnings {
		if w.Code == code {
			return w, true
		}
	}
	return analyze.Warning{}, false
}

// llem analyze JOB_DIR is one experiment: the job's windows (task 0's
// measure phases) over the four GPUs of both nodes, with totals equal to
// the sums of the nodes' own analyses of the same windows (each on its
// node's clock), the clocks' misalignment bound, and task 3's failure.
func testJobAnalysis(t *testing.T, c *cluster) {
	root := t.TempDir()
	recordJob(t, c, root, filepath.Join(root, "shared", "%j"))
	jobDir := onlyJobDir(t, filepath.Join(root, "shared"))
	runs := analyzeJSON(t, filepath.Join(root, "shared")) // the job found as one
	if len(runs) != 1 || runs[0].Run != jobDir || runs[0].Job == nil {
		t.Fatalf("llem analyze of the job's parent: %d runs (%v), want the job %s as one", len(runs), runs, jobDir)
	}
	rr := runs[0]
	if len(rr.GPUs) != 4 || len(rr.Job.Nodes) != 2 || rr.Job.Nodes[0].Node != "n1" || rr.Job.Nodes[1].Node != "n2" {
		t.Fatalf("gpus %+v, nodes %+v: want n1's and n2's two GPUs each", rr.GPUs, rr.Job.Nodes)
	}
	if rr.Requests.Total != jobRequests {
		t.Errorf("%d requests, want every task's %d", rr.Requests.Total, jobRequests)
	}
	if w, ok := warned(rr, "task_failed"); !ok || !strings.Contains(w.Message, "task 3") || !strings.Contains(w.Message, "exited with code 3") {
		t.Errorf("task 3's failure: %+v", w)
	}
	// Both nodes share this host's clock: the measured bound is small.
	n2 := rr.Job.Nodes[1]
	b := rr.Job.Clock.MisalignmentBoundMs
	if n2.ClockSource != analyze.ClockMeasured || !b.Valid() || b <= 0 || b > 50 || b < n2.ClockErrorMs {
		t.Errorf("clock: n2 %s (error %v ms), bound %v ms; want measured offsets within 50 ms", n2.ClockSource, n2.ClockErrorMs, b)
	}
	t.Logf("job %s: misalignment bound %.4f ms (n2: %s)", jobDir, float64(b), n2.ClockNote)

	measured := slices.DeleteFunc(slices.Clone(rr.Windows), func(w analyze.WindowResult) bool { return !w.Measured })
	if len(measured) != 2 {
		t.Fatalf("%d measured windows, want task 0's two measure phases", len(measured))
	}
	sumNodes(t, rr, measured)
}

// sumNodes analyses each node's run on its own over the job's measured
// windows (moved onto the node's clock by its offset): the job's energy and
// tokens of each window are the sums of the nodes'.
func sumNodes(t *testing.T, rr analyze.RunResult, measured []analyze.WindowResult) {
	t.Helper()
	type sums struct{ counter, integrated, tokens float64 }
	got := make([]sums, len(measured))
	var runTokens float64
	var drift int64 // the most a node's measured offset moved over the job
	for _, n := range rr.Job.Nodes {
		if n.OffsetStartNs != nil && n.OffsetEndNs != nil {
			drift = max(drift, *n.OffsetEndNs-*n.OffsetStartNs, *n.OffsetStartNs-*n.OffsetEndNs)
		}
		alone := analyzeJSON(t, n.Run)[0]
		run := alone.Windows[0]
		origin := run.StartNs - int64(math.Round(run.StartS*1e9))
		runTokens += float64(run.OutputTokens)
		var offset int64
		if n.OffsetStartNs != nil {
			offset = *n.OffsetStartNs
		}
		var args []string
		spec := make([]string, len(measured))
		for i, w := range measured {
			spec[i] = fmt.Sprintf("%.9f..%.9f", float64(w.StartNs+offset-origin)/1e9, float64(w.EndNs+offset-origin)/1e9)
			args = append(args, "--window", spec[i])
		}
		node := analyzeJSON(t, append(args, n.Run)...)[0]
		for i := range measured {
			k := slices.IndexFunc(node.Windows, func(w analyze.WindowResult) bool { return w.Name == spec[i] })
			if k < 0 {
				t.Fatalf("node %s: no window %s", n.Node, spec[i])
			}
			w := node.Windows[k]
			got[i].counter += float64(w.EnergyJ)
			got[i].integrated += float64(w.EnergyIntegratedJ)
			got[i].tokens += float64(w.OutputTokens)
		}
	}
	near := func(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Abs(b) }
	for i, w := range measured {
		// The nodes' windows are the job's moved by each node's offset at
		// the start, the job's by the offset interpolated to the window:
		// their edges are at most the offset's drift apart (a few ns to
		// tens of us on this shared host, as its measurements scatter), so
		// integrated power and tokens (spread over each request) agree to
		// twice the drift over the window's length, or 1e-5. The counter's
		// timing is the sensor period measured over the GPUs analysed
		// together (4 GPUs here, 2 alone: 100.1 or 100.3 ms), which moves
		// its reads by a twentieth of a millisecond: on windows of a
		// second, 0.1% of their energy.
		rel := max(1e-5, 2*float64(drift)/float64(w.EndNs-w.StartNs))
		if !near(got[i].integrated, float64(w.EnergyIntegratedJ), rel) || !near(got[i].counter, float64(w.EnergyJ), 5e-3) ||
			!near(got[i].tokens, float64(w.OutputTokens), rel) {
			t.Errorf("%s (cycle %d): job %.4f J counter, %.4f J integrated, %v tokens; nodes sum to %.4f J, %.4f J, %v tokens",
				w.Name, w.Cycle, float64(w.EnergyJ), float64(w.EnergyIntegratedJ), w.OutputTokens, got[i].counter, got[i].integrated, got[i].tokens)
		}
		t.Logf("%s (cycle %d): job %.3f J counter (n1 %.3f + n2 %.3f), %.3f J integrated, %.4f tokens; the nodes alone: %.3f J, %.3f J, %.4f tokens",
			w.Name, w.Cycle, float64(w.EnergyJ), float64(w.Nodes[0].EnergyJ), float64(w.Nodes[1].EnergyJ), float64(w.EnergyIntegratedJ),
			float64(w.OutputTokens), got[i].counter, got[i].integrated, got[i].tokens)
	}
	if job := float64(rr.Windows[0].OutputTokens); job != runTokens || job != jobTokens {
		t.Errorf("the run's tokens: job %v, nodes %v, want %d", job, runTokens, jobTokens)
	}
}

// The same job recorded into node-local directories (no shared output:
// no offset measured), copied together afterwards, merges: every node's
// GPUs and every task's requests, the clock bound from the kernel's
// maximum errors where the clocks are synchronised, else unknown and said.
func testJobNotShared(t *testing.T, c *cluster) {
	root := t.TempDir()
	start := time.Now()
	recordJob(t, c, root, filepath.Join(root, "local", "%N", "%j"))
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("recording took %v: node-local output should not wait for the clock reference", d)
	}
	merged := filepath.Join(root, "merged")
	dirs, _ := filepath.Glob(filepath.Join(root, "local", "*", "*"))
	if len(dirs) != 2 {
		t.Fatalf("node-local job directories %v, want n1's and n2's", dirs)
	}
	for _, d := range dirs {
		if err := os.CopyFS(merged, os.DirFS(d)); err != nil {
			t.Fatal(err)
		}
	}
	rr := analyzeJSON(t, merged)[0]
	if len(rr.GPUs) != 4 || rr.Job == nil || len(rr.Job.Nodes) != 2 || rr.Requests.Total != jobRequests ||
		float64(rr.Windows[0].OutputTokens) != jobTokens || !rr.Windows[0].EnergyJ.Valid() {
		t.Fatalf("merged copies: %d GPUs, job %+v, %d requests, %v tokens, %v J", len(rr.GPUs), rr.Job,
			rr.Requests.Total, rr.Windows[0].OutputTokens, rr.Windows[0].EnergyJ)
	}
	n2 := rr.Job.Nodes[1]
	_, unbounded := warned(rr, "clock_unbounded")
	switch n2.ClockSource {
	case analyze.ClockUnknown:
		if rr.Job.Clock.MisalignmentBoundMs.Valid() || !unbounded {
			t.Errorf("unknown clock error: bound %v, warned %v", rr.Job.Clock.MisalignmentBoundMs, unbounded)
		}
	case analyze.ClockMaxError:
		if rr.Job.Clock.MisalignmentBoundMs != n2.ClockErrorMs || unbounded {
			t.Errorf("maximum errors: bound %v, n2 %v", rr.Job.Clock.MisalignmentBoundMs, n2.ClockErrorMs)
		}
	default:
		t.Errorf("n2's clock %s (%s): no offset can be measured without a shared directory", n2.ClockSource, n2.ClockNote)
	}
	t.Logf("node-local: n2 clock %s: %s", n2.ClockSource, n2.ClockNote)
}
