package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const simJob = "../../testdata/jobs/sim-2nodes" // a two-node Slurm job (testdata/jobs)

// Every command that takes runs takes a job as one: compare it with a run,
// draw its standard figures (with its power per node), replay it.
func TestCommandsTakeAJob(t *testing.T) {
	r := runLlem(t, "", "compare", "-q", simJob, bs8Run)
	if r.code != 0 || !strings.Contains(r.stdout, "sim-2nodes") || strings.Contains(r.stdout, "sim-2nodes/n1") {
		t.Errorf("compare: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	figs := t.TempDir()
	r = runLlem(t, "", "analyze", "-q", "--plots", figs, simJob)
	if r.code != 0 {
		t.Fatalf("analyze --plots: exit %d\n%s", r.code, r.stderr)
	}
	for _, f := range []string{"sim-2nodes-timeline.svg", "sim-2nodes-nodes.svg", "sim-2nodes-nodes.png"} {
		if _, err := os.Stat(filepath.Join(figs, f)); err != nil {
			t.Errorf("analyze --plots: %v", err)
		}
	}
	r = runLlem(t, "", "plot", "--kind", "nodes", "-o", filepath.Join(figs, "x.pdf"), bs8Run)
	if r.code == 0 || !strings.Contains(r.stderr, "not a multi-node job") {
		t.Errorf("plot --kind nodes of a run: exit %d, %s", r.code, r.stderr)
	}
	r = runLlem(t, "", "replay", "-q", "--as", "counter", simJob)
	if r.code != 0 || !strings.Contains(r.stdout, "counter") {
		t.Errorf("replay: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
