package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/nvml"
	"github.com/llem/llem/record/rapl"
	"github.com/llem/llem/record/replay"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/record/slurm"
)

func recordCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "record",
		Usage:       "run a command while recording its GPUs and events",
		ArgsUsage:   "[flags] -- COMMAND [ARGS...]",
		Description: helpText("record"),
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "run directory to create (default: llem-run-DATE-TIME-HOST); under Slurm the job directory, with %j job, %s step, %N node, %% a literal % (default: " + slurm.DefaultOut + ")"},
			&ucli.BoolFlag{Name: "no-slurm", Usage: "ignore Slurm's environment: record this host as a single run, as outside Slurm"},
			&ucli.StringFlag{Name: "gpus", Usage: "comma-separated GPU indices to record, e.g. 0,1 (default: all visible)"},
			&ucli.StringFlag{Name: "device", Value: "nvml", Usage: "nvml (real GPUs), sim (simulated GPU with known truth) or replay:RUN_DIR"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no live status line and no notices (warnings are still stored)"},
			&ucli.DurationFlag{Name: "idle-before", Usage: "record the idle GPU for this long before COMMAND starts (e.g. 30s)"},
			&ucli.DurationFlag{Name: "idle-after", Usage: "record the idle GPU for this long after COMMAND exits"},
			&ucli.IntFlag{Name: "cycles", Value: 1, Usage: "run COMMAND this many times; per-cycle energy is what confidence intervals are built on (use >= 5)"},
			&ucli.DurationFlag{Name: "cooldown", Usage: "pause between cycles"},
			&ucli.DurationFlag{Name: "stop-grace", Value: record.DefaultStopGrace, Usage: "after SIGINT, SIGTERM or SIGHUP, how long COMMAND may take to exit before its processes are killed (a second signal kills them at once)"},
			&ucli.DurationFlag{Name: "energy-interval", Value: record.DefaultEnergyInterval, Usage: "energy counter read interval between the reads at every phase and cycle boundary (a read costs ~4 ms of CPU)"},
			&ucli.DurationFlag{Name: "driver-power-interval", Value: record.DefaultDriverPowerInterval, Usage: "how often to drain the driver's power-sample buffer (it holds 120 samples, ~2.4 s)"},
			&ucli.DurationFlag{Name: "state-interval", Value: record.DefaultStateInterval, Usage: "device state poll interval, 10ms (100 Hz) to 10s"},
			&ucli.DurationFlag{Name: "rotate-interval", Value: record.DefaultRotateInterval, Usage: "write a Parquet segment this often; a killed recorder loses at most this much (max 10s)"},
			&ucli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics (dcgm-exporter's GPU metric names, and llem's own) on HOST:PORT while recording, e.g. 127.0.0.1:9400; port 0 picks a free one (default: off)"},
			&ucli.StringSliceFlag{Name: "label", Usage: "key=value label stored in meta.json (repeatable), e.g. --label batch=32"},
			&ucli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the simulated device (--device sim)"},
			&ucli.IntFlag{Name: "sim-gpus", Value: 1, Usage: "number of simulated GPUs (--device sim)"},
			&ucli.Float64Flag{Name: "replay-speed", Value: 1, Usage: "replay this many times faster than recorded (--device replay:RUN)"},
			&ucli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write the recorder's Go CPU profile to this file (for llem's own benchmarks)"},
			&ucli.StringFlag{Name: "path.sysfs", Hidden: true, Value: rapl.DefaultSysfs, EnvVars: []string{"LLEM_PATH_SYSFS"},
				Usage: "sysfs mount point the host's RAPL counters are read under (class/powercap), as node_exporter's --path.sysfs (for tests)"},
		},
		Action: runRecord,
	}
}

func runRecord(c *ucli.Context) error {
	argv := c.Args().Slice()
	if len(argv) == 0 {
		return usagef("record: no command given; usage: llem record [flags] -- COMMAND [ARGS...]")
	}
	cfg := record.Config{
		Argv:                argv,
		IdleBefore:          c.Duration("idle-before"),
		IdleAfter:           c.Duration("idle-after"),
		Cycles:              c.Int("cycles"),
		Cooldown:            c.Duration("cooldown"),
		StopGrace:           c.Duration("stop-grace"),
		EnergyInterval:      c.Duration("energy-interval"),
		DriverPowerInterval: c.Duration("driver-power-interval"),
		StateInterval:       c.Duration("state-interval"),
		RotateInterval:      c.Duration("rotate-interval"),
		SysfsRoot:           c.String("path.sysfs"),
		LlemVersion:         version(),
		Stdin:               c.App.Reader,
		Stdout:              c.App.Writer,
		Stderr:              c.App.ErrWriter,
		Log:                 c.App.ErrWriter,
	}
	if err := checkRecordFlags(c, &cfg); err != nil {
		return err
	}
	var err error
	if cfg.GPUs, err = parseGPUs(c.String("gpus")); err != nil {
		return err
	}
	if cfg.Labels, err = parseLabels(c.StringSlice("label")); err != nil {
		return err
	}
	if c.Bool("quiet") {
		cfg.Log = quietLog{c.App.ErrWriter}
	}
	// The recorder needs at most two threads running Go code at once (the
	// trace writer and a sampling loop); on a many-core host Go's default
	// of one per core made every wake-up look for work on all of them,
	// doubling the CPU each sampled event cost. GOMAXPROCS set in the
	// environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(min(runtime.NumCPU(), 2))
	}
	if !c.Bool("no-slurm") {
		task, err := slurm.Detect(os.Getenv)
		switch {
		case errors.Is(err, slurm.ErrNotInStep):
			fmt.Fprintf(cfg.Log, "llem: %v; recording this host only (run llem record under srun to record the job's nodes)\n", err)
		case err != nil:
			return usagef("%v (or give --no-slurm)", err)
		case task != nil:
			return runRecordJob(c, cfg, task)
		}
	}
	cfg.OutDir = c.String("out")
	if cfg.OutDir == "" {
		cfg.OutDir = defaultRunDir(time.Now())
	}
	if cfg.Metrics, err = listenMetrics(c, cfg.Log); err != nil {
		return err
	}
	if cfg.Metrics != nil {
		defer cfg.Metrics.Close() // Record closes it too; this is for the errors before it
	}
	backend, err := openBackend(c, &cfg)
	if err != nil {
		return err
	}
	defer backend.Close()
	cfg.Backend = backend
	if !c.Bool("quiet") && isTerminal(os.Stderr) && c.App.ErrWriter == os.Stderr {
		cfg.Status = os.Stderr
	}
	stop, err := startCPUProfile(c.String("cpuprofile"))
	if err != nil {
		return err
	}
	defer stop()
	res, err := record.Record(context.Background(), cfg)
	if err != nil {
		return recordFlagError(err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "llem: run written to %s (%s); see: llem info %s\n", res.Dir, res.Meta.Status, res.Dir)
	}
	if res.ExitCode != 0 {
		return exitError{res.ExitCode}
	}
	return nil
}

// recordFlagError names the flag behind a setting the recorder (or the
// Slurm task code) refused; other errors pass unchanged.
func recordFlagError(err error) error {
	var ce *record.ConfigError
	if errors.As(err, &ce) {
		flag := map[string]string{"GPUs": "--gpus", "OutDir": "--out"}[ce.Field]
		return fmt.Errorf("%s: %s", cmp.Or(flag, ce.Field), ce.Msg)
	}
	return err
}

// listenMetrics binds --metrics-addr, if given, before anything starts:
// an address that is taken or wrong stops llem before the command runs.
func listenMetrics(c *ucli.Context, log io.Writer) (net.Listener, error) {
	addr := c.String("metrics-addr")
	if addr == "" {
		return nil, nil
	}
	ln, err := record.ListenMetrics(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %v\n(llem record did not start the command)", addr, err)
	}
	fmt.Fprintf(log, "llem: serving Prometheus metrics on http://%s/metrics\n", ln.Addr())
	return ln, nil
}

// quietLog drops notices but keeps warnings: a warning changes what a
// number means and must be seen even with --quiet.
type quietLog struct {
	w interface{ Write([]byte) (int, error) }
}

func (q quietLog) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "llem: warning:") {
		return q.w.Write(p)
	}
	return len(p), nil
}

func checkRecordFlags(c *ucli.Context, cfg *record.Config) error {
	if cfg.Cycles < 1 {
		return usagef("--cycles must be at least 1 (got %d)", cfg.Cycles)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"idle-before", cfg.IdleBefore}, {"idle-after", cfg.IdleAfter}, {"cooldown", cfg.Cooldown}, {"stop-grace", cfg.StopGrace}} {
		if f.d < 0 {
			return usagef("--%s must not be negative (got %v)", f.name, f.d)
		}
	}
	if cfg.StateInterval < 10*time.Millisecond || cfg.StateInterval > 10*time.Second {
		return usagef("--state-interval must be between 10ms (100 Hz) and 10s (got %v)", cfg.StateInterval)
	}
	if cfg.EnergyInterval < 10*time.Millisecond || cfg.EnergyInterval > time.Minute {
		return usagef("--energy-interval must be between 10ms and 1m (got %v)", cfg.EnergyInterval)
	}
	if cfg.DriverPowerInterval < 10*time.Millisecond || cfg.DriverPowerInterval > 2*time.Second {
		return usagef("--driver-power-interval must be between 10ms and 2s: the driver keeps only ~2.4 s of samples (got %v)", cfg.DriverPowerInterval)
	}
	if cfg.RotateInterval < 100*time.Millisecond || cfg.RotateInterval > 10*time.Second {
		return usagef("--rotate-interval must be between 100ms and 10s (got %v)", cfg.RotateInterval)
	}
	// Written so that NaN, which fails every comparison, fails it too.
	if s := c.Float64("replay-speed"); !(s > 0 && s <= 1000) {
		return usagef("--replay-speed must be a number in (0, 1000] (got %g)", s)
	}
	if cfg.StopGrace == 0 && c.IsSet("stop-grace") {
		return usagef("--stop-grace must be positive (got 0)")
	}
	if n := c.Int("sim-gpus"); n < 1 || n > 64 {
		return usagef("--sim-gpus must be between 1 and 64 (got %d)", n)
	}
	return nil
}

func parseGPUs(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 0 {
			return nil, usagef("--gpus: %q is not a GPU index (want e.g. --gpus 0,1)", part)
		}
		if seen[n] {
			return nil, usagef("--gpus: GPU %d given twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--label %q: want key=value, e.g. --label batch=32", kv)
		}
		out[k] = v
	}
	return out, nil
}

func defaultRunDir(t time.Time) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	host, _, _ = strings.Cut(host, ".")
	return fmt.Sprintf("llem-run-%s-%s", t.Format("20060102-150405"), host)
}

func openBackend(c *ucli.Context, cfg *record.Config) (record.Backend, error) {
	dev := c.String("device")
	switch {
	case dev == "nvml":
		b, err := nvml.Open(nvml.Options{GPUs: cfg.GPUs})
		if err != nil {
			if errors.Is(err, nvml.ErrNoDriver) {
				return nil, fmt.Errorf("%w; use --device sim to record without a GPU\n(llem record did not start the command)", err)
			}
			return nil, err
		}
		return b, nil
	case dev == "sim":
		seed := c.Int64("seed")
		cfg.Seed = &seed
		return sim.New(sim.Options{Seed: seed, GPUs: c.Int("sim-gpus")}), nil
	case strings.HasPrefix(dev, "replay:"):
		dir := strings.TrimPrefix(dev, "replay:")
		if dir == "" {
			return nil, usagef("--device replay: needs a run directory, e.g. --device replay:testdata/runs/h100-bs8-cycles")
		}
		cfg.ReplaySpeed = c.Float64("replay-speed")
		// The replayed driver buffer holds ~2.4 s of recorded time, like a
		// real one: drain it often enough at high speeds to lose nothing.
		if limit := time.Duration(float64(time.Second) / cfg.ReplaySpeed); cfg.DriverPowerInterval > limit {
			cfg.DriverPowerInterval = max(limit, 10*time.Millisecond)
		}
		return replay.Open(dir, replay.Options{Speed: cfg.ReplaySpeed})
	}
	return nil, usagef("--device %q: want nvml, sim or replay:RUN_DIR", dev)
}

// isTerminal reports whether f is a terminal, where a live status line helps.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
