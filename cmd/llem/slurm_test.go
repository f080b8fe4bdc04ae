package main_test

// Tests on a real Slurm: .ci/slurm/start.sh starts a two-node cluster on
// this host (slurmctld, and slurmd n1 and n2 on their own ports), and real
// srun and sbatch jobs run llem record on the simulated device. They skip,
// saying why, where such a cluster cannot be started (not root, Slurm or
// munge not installed); with LLEM_REQUIRE_SLURM=1 (set by .ci/run) that is
// a failure instead.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

// cluster is a running test cluster.
type cluster struct {
	state string   // its state directory
	env   []string // the environment for srun and sbatch
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("LLEM_REQUIRE_SLURM") == "1" {
			t.Fatalf("Slurm is required here (LLEM_REQUIRE_SLURM=1) but %s", msg)
		}
		t.Skipf("no Slurm test cluster: %s", msg)
	}
	if os.Getuid() != 0 {
		skip("slurmd must run as root to start job steps")
	}
	for _, bin := range []string{"munged", "slurmctld", "slurmd", "srun", "sbatch", "sinfo"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", bin)); err != nil {
				skip("%s is not installed (apt-get install slurm-wlm munge)", bin)
			}
		}
	}
	state, err := os.MkdirTemp("", "llem-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	port := freePorts(t)
	start := exec.Command(filepath.Join(repoRoot(t), ".ci", "slurm", "start.sh"), state)
	start.Env = append(os.Environ(), fmt.Sprintf("SLURM_TEST_PORT=%d", port), "PATH="+os.Getenv("PATH")+":/usr/sbin")
	out, err := start.CombinedOutput()
	c := &cluster{state: state}
	t.Cleanup(func() { c.stop(t) })
	if err != nil {
		skip("start.sh failed: %v\n%s", err, out)
	}
	tmp := filepath.Join(state, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// TMPDIR keeps this cluster's task rendezvous apart from any other
	// cluster's on the host (job ids restart at 1 in every new cluster).
	c.env = append(os.Environ(), "SLURM_CONF="+filepath.Join(state, "slurm.conf"), "TMPDIR="+tmp,
		"PATH="+os.Getenv("PATH")+":/usr/sbin")
	return c
}

func (c *cluster) stop(t *testing.T) {
	stop := exec.Command(filepath.Join(repoRoot(t), ".ci", "slurm", "stop.sh"), c.state)
	if out, err := stop.CombinedOutput(); err != nil {
		t.Errorf("stop.sh: %v\n%s", err, out)
	}
	if t.Failed() {
		for _, log := range []string{"slurmctld.log", "slurmd-n1.log", "slurmd-n2.log"} {
			b, _ := os.ReadFile(filepath.Join(c.state, "log", log))
			t.Logf("%s (tail):\n%s", log, tail(string(b), 2000))
		}
	}
	os.RemoveAll(c.state)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// freePorts finds three consecutive free TCP ports (slurmctld and the two
// slurmd), so that parallel test runs on one host do not collide.
func freePorts(t *testing.T) int {
	for base := 26800 + os.Getpid()%2000; base < 30000; base += 3 {
		free := true
		for p := base; p < base+3 && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no three free consecutive ports")
	return 0
}

// run runs a Slurm client command (srun, sbatch) in dir.
func (c *cluster) run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%s did not finish in 3 minutes\n%s", strings.Join(args, " "), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// onlyJobDir returns the one job directory llem wrote under root.
func onlyJobDir(t *testing.T, root string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(root, "*", trace.ManifestDir))
	if len(dirs) != 1 {
		t.Fatalf("want one job directory under %s, found %v", root, dirs)
	}
	return filepath.Dir(dirs[0])
}

func readMeta(t *testing.T, dir string) *trace.Meta {
	t.Helper()
	m, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSlurm(t *testing.T) {
	c := startCluster(t)
	t.Run("TwoNodesFourTasks", func(t *testing.T) { testTwoNodesFourTasks(t, c) })
	t.Run("Sbatch", func(t *testing.T) { testSbatchExample(t, c) })
	t.Run("SamplerFails", func(t *testing.T) { testSamplerFails(t, c) })
	t.Run("NoSlurm", func(t *testing.T) { testNoSlurm(t, c) })
	t.Run("JobAnalysis", func(t *testing.T) { testJobAnalysis(t, c) })
	t.Run("JobNotShared", func(t *testing.T) { testJobNotShared(t, c) })
}

// srun -N2 --ntasks-per-node=2: one sampler per node sampling the step's
// GPUs (2 of the node's 4 simulated ones), every task's events recorded
// with its rank, task 3's failure in its exit code, the manifest, and the
// clocks.
func testTwoNodesFourTasks(t *testing.T, c *cluster) {
	root := t.TempDir()
	script := `"$LLEM" mark start rank=$SLURM_PROCID
"$LLEM" mark --kind request_end id=r$SLURM_PROCID output_tokens=10
sleep 1
test "$SLURM_PROCID" != 3 || exit 3`
	r := c.run(t, root, "srun", "-N2", "--ntasks-per-node=2", "--gpus-per-node=2", "--export=ALL,LLEM="+llemBin,
		llemBin, "record", "--device", "sim", "--sim-gpus", "4", "--out", filepath.Join(root, "%j"),
		"--", "sh", "-c", script)
	if r.code != 3 {
		t.Fatalf("srun exit %d, want task 3's 3\n%s", r.code, r.stderr)
	}
	jobDir := onlyJobDir(t, root)
	job, err := trace.ReadJob(jobDir)
	if err != nil {
		t.Fatal(err)
	}
	if job.Tasks != 4 || job.Nodes != 2 || len(job.Parts) != 4 || len(job.Missing) != 0 || len(job.ByNode) != 2 {
		t.Fatalf("job %s: %d tasks, %d nodes, %d parts, missing %v", jobDir, job.Tasks, job.Nodes, len(job.Parts), job.Missing)
	}
	if f := job.Failed(); !slices.Equal(f, []int{3}) {
		t.Errorf("failed tasks %v, want [3]", f)
	}
	for _, p := range job.Parts {
		want := 0
		if p.Task == 3 {
			want = 3
		}
		if p.Command == nil || p.Command.ExitCode == nil || *p.Command.ExitCode != want || p.Status != trace.TaskComplete {
			t.Errorf("task %d: status %s, command %+v; want exit %d", p.Task, p.Status, p.Command, want)
		}
	}

	starts := map[int32]string{} // rank -> node whose run holds its mark
	for _, node := range job.ByNode {
		samplers := 0
		for _, p := range job.Parts {
			if p.Node == node.Name && p.Role == trace.RoleSampler {
				samplers++
			}
		}
		if samplers != 1 || node.Sampler == nil || node.Sampler.LocalTask != 0 {
			t.Fatalf("node %s: %d samplers (%+v); want exactly one, local task 0", node.Name, samplers, node.Sampler)
		}
		s := node.Sampler.Sampler
		if s.GPUSource != "SLURM_STEP_GPUS" || len(s.GPUs) != 2 || s.GPUs[0].Index != 0 || s.GPUs[1].Index != 1 || s.GPUs[0].UUID == "" {
			t.Errorf("node %s sampled %+v from %s; want GPUs 0,1 of 4 from SLURM_STEP_GPUS", node.Name, s.GPUs, s.GPUSource)
		}
		runDir := filepath.Join(jobDir, s.RunDir)
		m := readMeta(t, runDir)
		if !m.Complete || m.Job == nil || m.Job.Node != node.Name || len(m.Job.NodeTasks) != 2 {
			t.Fatalf("node %s meta: complete %v, job %+v", node.Name, m.Complete, m.Job)
		}
		if !slices.Equal(m.Settings.GPUs, []int{0, 1}) {
			t.Errorf("node %s recorded GPUs %v", node.Name, m.Settings.GPUs)
		}
		for _, nt := range m.Job.NodeTasks {
			want := 0
			if nt.Task == 3 {
				want = 3
			}
			if !nt.Reached || nt.ExitCode == nil || *nt.ExitCode != want {
				t.Errorf("node %s task %d: reached %v exit %v, want exit %d", node.Name, nt.Task, nt.Reached, nt.ExitCode, want)
			}
		}
		cs := m.ClockSync
		if cs == nil || cs.Start == nil || cs.End == nil || cs.Start.Error != "" || cs.ReferenceNode != "n1" {
			t.Fatalf("node %s clock_sync %+v", node.Name, cs)
		}
		if node.Index != 0 {
			// Both "nodes" share this host's clock: the true offset is 0.
			if len(cs.Offsets) != 2 || cs.Offsets[0].At != "start" || cs.Offsets[1].At != "end" {
				t.Fatalf("node %s offsets %+v (note %q)", node.Name, cs.Offsets, cs.OffsetNote)
			}
			for _, o := range cs.Offsets {
				if o.OffsetNs > o.BoundNs || -o.OffsetNs > o.BoundNs || o.BoundNs > int64(50*time.Millisecond) {
					t.Errorf("node %s offset %+v: the same clock must be within the bound", node.Name, o)
				}
			}
		}

		run, err := trace.Open(runDir)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := trace.ReadTable[trace.Event](run, trace.TableEvents)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == "mark" && e.Name == "start" {
				if e.Task == nil {
					t.Fatalf("node %s: a mark without its task: %+v", node.Name, e)
				}
				if prev, dup := starts[*e.Task]; dup {
					t.Errorf("task %d's mark is in %s and %s", *e.Task, prev, node.Name)
				}
				starts[*e.Task] = node.Name
				if e.Attrs != fmt.Sprintf(`{"rank":%d}`, *e.Task) {
					t.Errorf("task %d's mark says %s", *e.Task, e.Attrs)
				}
			}
		}
	}
	want := map[int32]string{0: "n1", 1: "n1", 2: "n2", 3: "n2"}
	if fmt.Sprint(starts) != fmt.Sprint(want) {
		t.Errorf("marks by task %v, want %v", starts, want)
	}

	// Each node's directory is an ordinary run, analysed alone when named;
	// the job directory is one experiment (job_test.go).
	for _, n := range []string{"n1", "n2"} {
		if runs := analyzeJSON(t, filepath.Join(jobDir, n)); len(runs) != 1 || len(runs[0].GPUs) != 2 || runs[0].Job != nil {
			t.Errorf("llem analyze of node %s's run: %+v", n, runs)
		}
	}
}

// The sbatch example of examples/, on the simulated device with four GPUs
// per node, all of them the job's.
func testSbatchExample(t *testing.T, c *cluster) {
	root := t.TempDir()
	example := filepath.Join(repoRoot(t), "examples", "slurm", "record.sbatch")
	r := c.run(t, root, "sbatch", "--wait", "--time=10", "-N2", "--ntasks-per-node=2", "--gpus-per-node=4", "-o", filepath.Join(root, "slurm-%j.out"),
		"--export=ALL,LLEM="+llemBin+",LLEM_DEVICE=sim --sim-gpus 4,LLEM_IDLE=0s,LLEM_CYCLES=1,LLEM_TRACES="+filepath.Join(root, "traces"),
		example, "sh", "-c", `"$LLEM" mark --kind phase_start measure; sleep 1; "$LLEM" mark --kind phase_end measure`)
	outs, _ := filepath.Glob(filepath.Join(root, "slurm-*.out"))
	var log string
	for _, o := range outs {
		b, _ := os.ReadFile(o)
		log += string(b)
	}
	if r.code != 0 {
		t.Fatalf("sbatch --wait: exit %d\n%s\n%s", r.code, r.stderr, log)
	}
	jobDir := onlyJobDir(t, filepath.Join(root, "traces"))
	job, err := trace.ReadJob(jobDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Parts) != 4 || len(job.Failed()) != 0 || len(job.ByNode) != 2 {
		t.Fatalf("job: %d parts, failed %v, %d nodes\n%s", len(job.Parts), job.Failed(), len(job.ByNode), log)
	}
	for _, node := range job.ByNode {
		s := node.Sampler.Sampler
		if len(s.GPUs) != 4 || s.GPUSource != "SLURM_STEP_GPUS" {
			t.Errorf("node %s sampled %+v (%s), want the step's 4 GPUs", node.Name, s.GPUs, s.GPUSource)
		}
		m := readMeta(t, filepath.Join(jobDir, s.RunDir))
		// Four phase marks per node: two from each task.
		if got := m.Events.Accepted; got != 4 {
			t.Errorf("node %s accepted %d client events, want 4", node.Name, got)
		}
	}
	if !strings.Contains(log, "llem analyze") {
		t.Errorf("the example should end by saying how to analyse the job:\n%s", log)
	}
}

// A sampler that cannot start (a replayed run that does not exist): its
// failure is in the manifest, and the other task still runs its command
// and keeps its events in the job directory.
func testSamplerFails(t *testing.T, c *cluster) {
	root := t.TempDir()
	r := c.run(t, root, "srun", "-N1", "-n2", "--export=ALL,LLEM="+llemBin,
		llemBin, "record", "--device", "replay:"+filepath.Join(root, "no-such-run"), "--out", filepath.Join(root, "%j"),
		"--", "sh", "-c", `"$LLEM" mark hello`)
	if r.code == 0 {
		t.Fatalf("srun exit 0, want the sampler's failure\n%s", r.stderr)
	}
	job, err := trace.ReadJob(onlyJobDir(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Parts) != 2 {
		t.Fatalf("%d parts", len(job.Parts))
	}
	s, rl := job.Parts[0], job.Parts[1]
	if s.Role != trace.RoleSampler || s.Status != trace.TaskFailed || !strings.Contains(s.Error, "no-such-run") {
		t.Errorf("sampler part: %s %s %q", s.Role, s.Status, s.Error)
	}
	if rl.Status != trace.TaskComplete || rl.Command.ExitCode == nil || *rl.Command.ExitCode != 0 ||
		rl.Relay == nil || rl.Relay.Undelivered != 3 || rl.Relay.UndeliveredDir == "" {
		t.Errorf("relay part: %s, command %+v, relay %+v; want its mark, task_start and task_end kept", rl.Status, rl.Command, rl.Relay)
	}
	if !slices.Equal(job.Failed(), []int{0}) {
		t.Errorf("failed %v, want [0]", job.Failed())
	}
}

// --no-slurm inside a step records the host as a plain run.
func testNoSlurm(t *testing.T, c *cluster) {
	root := t.TempDir()
	out := filepath.Join(root, "plain")
	r := c.run(t, root, "srun", "-N1", "-n1", llemBin, "record", "--no-slurm", "--device", "sim", "--quiet",
		"--out", out, "--", "true")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	m := readMeta(t, out)
	if m.Job != nil || m.ClockSync != nil || trace.IsJobDir(root) {
		t.Fatalf("--no-slurm wrote job data: %+v %+v", m.Job, m.ClockSync)
	}
}

// Slurm's environment alone (no cluster needed): the batch script's single
// task records a job directory; bad variables and --out patterns are
// refused with the name of what is wrong and a non-zero exit status.
func TestSlurmEnvironmentWithoutCluster(t *testing.T) {
	root := t.TempDir()
	tmp, err := os.MkdirTemp("", "lt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	batch := []string{"SLURM_JOB_ID=77", "SLURMD_NODENAME=fake1", "SLURM_JOB_NAME=env", "SLURM_PROCID=0",
		"SLURM_LOCALID=0", "SLURM_NODEID=0", "SLURM_NTASKS=8", "SLURM_JOB_GPUS=1", "TMPDIR=" + tmp}
	r := llem(t, batch, "record", "--device", "sim", "--sim-gpus", "2", "--quiet", "--out", filepath.Join(root, "%x-%j.%s"), "--", "true")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	job, err := trace.ReadJob(filepath.Join(root, "env-77.batch"))
	if err != nil {
		t.Fatal(err)
	}
	if job.StepID != "batch" || len(job.Parts) != 1 || job.Tasks != 1 || job.ByNode[0].Sampler == nil {
		t.Fatalf("job %+v", job)
	}
	s := job.ByNode[0].Sampler.Sampler
	if s.GPUSource != "SLURM_JOB_GPUS" || len(s.GPUs) != 1 || s.GPUs[0].Index != 1 {
		t.Errorf("sampled %+v from %s; want GPU 1 from SLURM_JOB_GPUS", s.GPUs, s.GPUSource)
	}

	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{append(slices.Clone(batch), "SLURM_STEP_ID=0", "SLURM_PROCID=x"), nil, `SLURM_PROCID="x": not a count or rank (or give --no-slurm)`},
		{batch, []string{"--out", filepath.Join(root, "t%t")}, `--out: "` + filepath.Join(root, "t%t") + `": %t (the task) is not allowed`},
		{append(slices.Clone(batch), "SLURM_JOB_GPUS=MIG-1"), []string{"--out", filepath.Join(root, "mig")},
			"--gpus: SLURM_JOB_GPUS=MIG-1 names a MIG device"},
	} {
		args := append([]string{"record", "--device", "sim", "--quiet"}, tc.args...)
		r := llem(t, tc.env, append(args, "--", "true")...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want it to contain %q", tc.env[len(tc.env)-1], tc.args, r.code, r.stderr, tc.want)
		}
	}
}
