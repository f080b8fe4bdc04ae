// Package record runs a command while sampling its GPUs, and writes the
// samples, the inference's own events and the environment as a trace (see
// package trace). The recorder makes no judgement about the data: every
// decision about windows, baselines or statistics belongs to analyze.
package record

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/llem/llem/record/eventsrv"
	"github.com/llem/llem/trace"
)

// Defaults, chosen from what an H100 showed (shared/gpu-notes.md).
const (
	// The energy counter costs ~4 ms of CPU per read (H100 and H200) and
	// updates every 100 ms; it is cumulative, so a low rate loses no
	// energy, only time resolution inside a window. The recorder reads it
	// where windows need it: at every phase and cycle boundary it makes
	// and whenever a client starts or ends a phase. Between those the
	// analysis splits a read interval by the shape of the 50 Hz driver
	// power. So the clock only backs this up: at 1 Hz the counter alone
	// took 0.4% of a core; every 10 s it takes 0.04%, and on the shipped
	// H100 runs thinned to this every window of 3 s or more kept its
	// energy within 0.04% (docs/recorder.md).
	DefaultEnergyInterval = 10 * time.Second
	// The driver's power buffer holds ~2.4 s of 20 ms samples; draining it
	// every 0.5 s keeps every sample with a wide margin.
	DefaultDriverPowerInterval = 500 * time.Millisecond
	// Cheap cached fields (instant and 1 s average power, clocks...).
	DefaultStateInterval = 100 * time.Millisecond
	// A killed recorder loses at most this much of what it sampled.
	DefaultRotateInterval = 5 * time.Second
	// The audit's minimum measurement window.
	MinRunDuration = 10 * time.Second
)

// Config is everything a recording needs; the CLI turns flags into it so
// nothing below cmd/ knows about flags.
type Config struct {
	OutDir  string
	Argv    []string
	Backend Backend
	// GPUs selects device indices; nil records every visible GPU.
	GPUs []int

	EnergyInterval      time.Duration
	DriverPowerInterval time.Duration
	StateInterval       time.Duration
	RotateInterval      time.Duration

	IdleBefore time.Duration
	IdleAfter  time.Duration
	Cycles     int
	Cooldown   time.Duration

	Labels      map[string]string
	LlemVersion string
	Seed        *int64 // recorded for simulated devices
	ReplaySpeed float64

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Status receives the live one-line status; nil for none.
	Status io.Writer
	// Log receives warnings and notices (normally stderr).
	Log io.Writer

	// Task is this recording's task in a multi-node job (Slurm's
	// SLURM_PROCID), stored with its command's events; Node connects it to
	// the node's other tasks. Both nil outside a job.
	Task *int32
	Node NodeTasks
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.EnergyInterval, DefaultEnergyInterval)
	def(&c.DriverPowerInterval, DefaultDriverPowerInterval)
	def(&c.StateInterval, DefaultStateInterval)
	def(&c.RotateInterval, DefaultRotateInterval)
	if c.Cycles <= 0 {
		c.Cycles = 1
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Result is what a finished recording reports to the caller.
type Result struct {
	Dir      string
	ExitCode int // the command's, for llem to exit with
	Meta     *trace.Meta
}

// Record runs the whole recording: idle phase, cycles of the command with
// cool-downs, idle phase, then flushes the trace. The returned error is for
// failures of the recorder itself; the command's failure is in ExitCode.
func Record(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if len(cfg.Argv) == 0 {
		return nil, errors.New("no command to record: put it after --, e.g. llem record -- python infer.py")
	}
	if _, err := lookPath(cfg.Argv[0]); err != nil {
		return nil, err
	}
	gpus, err := selectGPUs(cfg.Backend, cfg.GPUs)
	if err != nil {
		return nil, err
	}
	if err := makeRunDir(cfg.OutDir); err != nil {
		return nil, err
	}
	r := newRecorder(cfg, gpus)
	return r.run(ctx)
}

func lookPath(name string) (string, error) {
	p, err := execLookPath(name)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", name, err)
	}
	return p, nil
}

func selectGPUs(b Backend, want []int) ([]GPU, error) {
	all := b.GPUs()
	if len(all) == 0 {
		return nil, fmt.Errorf("device %s shows no GPU", b.Name())
	}
	if want == nil {
		return all, nil
	}
	byIndex := map[int]GPU{}
	for _, g := range all {
		byIndex[g.Index()] = g
	}
	var out []GPU
	for _, i := range want {
		g, ok := byIndex[i]
		if !ok {
			return nil, &ConfigError{Field: "GPUs", Msg: fmt.Sprintf("GPU %d is not visible (device %s has %d GPU(s))", i, b.Name(), len(all))}
		}
		out = append(out, g)
	}
	return out, nil
}

// ConfigError is a Config field the recorder cannot honour, named by its
// field so that the command line can name its own flag.
type ConfigError struct {
	Field string // of Config: "GPUs", "OutDir"
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// makeRunDir refuses to write into a non-empty directory, so an earlier
// run is never overwritten.
func makeRunDir(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: directory exists and is not empty; choose a new one", dir)}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: %v", dir, err)}
	}
	return nil
}

type recorder struct {
	cfg   Config
	gpus  []GPU
	clock *Clock
	meta  *trace.Meta
	out   *tableSink

	loops     map[string]*loopStats
	final     []func()      // last reads per GPU, after the loops stop
	boundary  []func()      // energy reads per GPU at phase and cycle boundaries
	phaseRead chan struct{} // a client started or ended a phase
	// sampleStart is the origin of every GPU's sampling deadlines.
	sampleStart time.Time

	mu      sync.Mutex
	lost    map[int]int64            // GPU index -> time it was lost
	errs    map[int]map[string]int64 // GPU index -> reading -> failures
	latestW map[int]float64          // latest driver power per GPU, for the status line
	firstMj map[int]uint64
	lastMj  map[int]uint64
}

func newRecorder(cfg Config, gpus []GPU) *recorder {
	return &recorder{
		cfg: cfg, gpus: gpus, clock: NewClock(),
		loops: map[string]*loopStats{
			"energy":       {interval: cfg.EnergyInterval},
			"driver_power": {interval: cfg.DriverPowerInterval},
			"device_state": {interval: cfg.StateInterval},
		},
		lost: map[int]int64{}, errs: map[int]map[string]int64{},
		latestW: map[int]float64{}, firstMj: map[int]uint64{}, lastMj: map[int]uint64{},
	}
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *recorder) run(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	// Take signals before anything else: from here on, Ctrl-C goes to the
	// command (or ends an idle phase), never kills the recorder mid-write.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	workDir, _ := os.Getwd()
	m := &trace.Meta{
		SchemaVersion: trace.SchemaVersion,
		RunID:         newRunID(),
		LlemVersion:   cfg.LlemVersion,
		Status:        trace.StatusRecording,
		Device:        cfg.Backend.Name(),
		Labels:        cfg.Labels,
		Clock:         trace.ClockAnchor{WallStartNs: r.clock.WallStartNs(), TimestampUnits: "ns since Unix epoch"},
		Command:       &trace.CommandInfo{Argv: cfg.Argv, WorkDir: workDir},
		Settings: trace.RecordSettings{
			EnergyIntervalMs: ms(cfg.EnergyInterval), DriverPowerIntervalMs: ms(cfg.DriverPowerInterval),
			StateIntervalMs: ms(cfg.StateInterval), RotateIntervalMs: ms(cfg.RotateInterval),
			IdleBeforeMs: ms(cfg.IdleBefore), IdleAfterMs: ms(cfg.IdleAfter),
			Cycles: cfg.Cycles, CooldownMs: ms(cfg.Cooldown), Seed: cfg.Seed, ReplaySpeed: cfg.ReplaySpeed,
		},
		Host:     HostSnapshot(),
		Warnings: []trace.Warning{},
	}
	r.meta = m
	for _, g := range r.gpus {
		m.Settings.GPUs = append(m.Settings.GPUs, g.Index())
		info, err := g.Info()
		if err != nil {
			fmt.Fprintf(cfg.Log, "llem: GPU %d: environment snapshot incomplete: %v\n", g.Index(), err)
		}
		info.Index = g.Index()
		if info.Processes == nil {
			info.Processes = []trace.GPUProcess{}
		}
		m.GPUs = append(m.GPUs, info)
	}
	for _, w := range Preflight(m.Host, m.GPUs) {
		r.warn(w)
	}
	if cfg.Node != nil {
		cfg.Node.Describe(m)
	}
	if err := trace.WriteMeta(cfg.OutDir, m); err != nil {
		return nil, err
	}

	var err error
	r.out, err = newTableSink(cfg.OutDir, m.RunID, cfg.RotateInterval)
	if err != nil {
		return nil, err
	}
	r.phaseRead = make(chan struct{}, 1)
	srv, sockPath, err := listenEvents(cfg.OutDir, r.clock.Now, eventsrv.Options{Task: cfg.Task, OnPhase: r.clientPhase})
	if err != nil {
		return nil, err
	}
	m.Events.Socket = sockPath
	r.out.attachEvents(srv)
	if cfg.Node != nil {
		cfg.Node.Relay(r.out.relayed, r.out.relayedBad)
	}

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	// Every GPU's schedule starts from the same instant, so their
	// deadlines coincide and one wake-up serves them all.
	r.sampleStart = time.Now()
	for _, g := range r.gpus {
		r.startLoops(sampleCtx, &sampling, g)
	}
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		r.readCountersOnPhase(sampleCtx)
	}()
	stopStatus := r.startStatus()

	exitCode, interrupted, runErr := r.phases(ctx, sigs, sockPath)

	stopStatus()
	stopSampling()
	sampling.Wait()
	r.finalReads()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(cfg.Log, "llem: closing event socket: %v\n", err)
	}
	m.Events = srv.Stats()
	m.Events.Socket = sockPath
	if cfg.Node != nil {
		cfg.Node.Close(m)
	}
	sinkErr := r.out.close()

	r.finish(interrupted)
	if err := writeSimTruth(cfg.Backend, cfg.OutDir, m, m.Clock.WallStartNs, m.Clock.MonoEndNs); err != nil {
		fmt.Fprintf(cfg.Log, "llem: writing the simulated device's truth: %v\n", err)
	}
	if err := trace.WriteMeta(cfg.OutDir, m); err != nil {
		return nil, err
	}
	if runErr != nil {
		return nil, runErr
	}
	if sinkErr != nil {
		return nil, fmt.Errorf("writing trace: %w", sinkErr)
	}
	return &Result{Dir: cfg.OutDir, ExitCode: exitCode, Meta: m}, nil
}

// listenEvents opens the event socket in the run directory. Unix socket
// paths are limited to 108 bytes, so a deep run directory gets its socket
// in a private (0700) temporary directory instead; meta.json names it.
func listenEvents(runDir string, now func() int64, opts eventsrv.Options) (*eventsrv.Server, string, error) {
	abs, err := filepath.Abs(filepath.Join(runDir, "events.sock"))
	if err != nil {
		return nil, "", err
	}
	if len(abs) < 100 {
		srv, err := eventsrv.Listen(abs, now, opts)
		if err == nil {
			return srv, abs, nil
		}
	}
	tmp, err := os.MkdirTemp("", "llem-events-")
	if err != nil {
		return nil, "", fmt.Errorf("event socket: %w", err)
	}
	path := filepath.Join(tmp, "events.sock")
	srv, err := eventsrv.Listen(path, now, opts)
	if err != nil {
		return nil, "", fmt.Errorf("event socket %s: %w", path, err)
	}
	return srv, path, nil
}

func (r *recorder) warn(w trace.Warning) {
	r.meta.Warnings = append(r.meta.Warnings, w)
	fmt.Fprintf(r.cfg.Log, "llem: warning: %s\n", w.Message)
}

// event writes a recorder-made event. Cycle events are about this task's
// command, so in a job they carry its task number; phases are the node's.
func (r *recorder) event(kind, name string, cycle *int32, gpu int32, attrs string) {
	ev := trace.Event{TimestampNs: r.clock.Now(), GPU: gpu, Kind: kind, Name: name,
		Cycle: cycle, Source: "recorder", Attrs: attrs}
	if cycle != nil {
		ev.Task = r.cfg.Task
	}
	r.out.events(ev)
}

// phases runs idle-before, the cycles with cool-downs, and idle-after. A
// signal during an idle phase or a cool-down ends the recording early; a
// signal while the command runs goes to the command.
func (r *recorder) phases(ctx context.Context, sigs <-chan os.Signal, sockPath string) (exitCode int, interrupted bool, err error) {
	cfg := r.cfg
	cmd := r.meta.Command
	env := append(os.Environ(), "LLEM_EVENTS="+sockPath, "LLEM_RUN_DIR="+cfg.OutDir)
	r.event("recording_start", "", nil, trace.GPUAll, "")

	idle := func(name string, d time.Duration) bool {
		if d <= 0 {
			return true
		}
		r.readCounters()
		r.event("phase_start", name, nil, trace.GPUAll, "")
		defer func() {
			r.readCounters()
			r.event("phase_end", name, nil, trace.GPUAll, "")
		}()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-sigs:
			fmt.Fprintf(cfg.Log, "llem: interrupted during %s; finishing the trace\n", name)
			return false
		case <-ctx.Done():
			return false
		}
	}

	if !idle("idle_before", cfg.IdleBefore) {
		return 130, true, nil
	}
	for c := 1; c <= cfg.Cycles; c++ {
		cycle := int32(c)
		var startNs int64
		r.readCounters()
		res, err := runChild(cfg.Argv, env, cfg.Stdin, cfg.Stdout, cfg.Stderr, sigs, func() {
			startNs = r.clock.Now()
			r.setBusy(true, startNs)
			r.event("cycle_start", "", &cycle, trace.GPUAll, "")
		})
		endNs := r.clock.Now()
		if err != nil {
			return 0, true, err
		}
		r.setBusy(false, endNs)
		r.readCounters()
		r.event("cycle_end", "", &cycle, trace.GPUAll, fmt.Sprintf(`{"exit_code":%d}`, res.ExitCode))
		if cmd.StartNs == 0 {
			cmd.StartNs = startNs
		}
		cmd.EndNs = endNs
		cmd.Cycles = append(cmd.Cycles, trace.CycleInfo{Cycle: c, StartNs: startNs, EndNs: endNs, ExitCode: res.ExitCode})
		code := res.ExitCode
		cmd.ExitCode = &code
		cmd.ExitSignal = res.Signal
		exitCode = res.ExitCode
		if res.ExitCode != 0 {
			if c < cfg.Cycles {
				r.warn(trace.Warning{Code: "cycle_failed", Message: fmt.Sprintf(
					"cycle %d exited with %d; the remaining %d cycle(s) were not run", c, res.ExitCode, cfg.Cycles-c)})
			}
			break
		}
		if c < cfg.Cycles && !idle("cooldown", cfg.Cooldown) {
			return 130, true, nil
		}
	}
	if cfg.Node != nil && !cfg.Node.Await(sigs) {
		return exitCode, true, nil
	}
	if !idle("idle_after", cfg.IdleAfter) {
		return exitCode, true, nil
	}
	return exitCode, false, nil
}

func (r *recorder) setBusy(busy bool, atNs int64) {
	if lo, ok := r.cfg.Backend.(LoadObserver); ok {
		lo.SetBusy(busy, atNs)
	}
}

// finish fills in the end-of-run parts of meta.json.
func (r *recorder) finish(interrupted bool) {
	m := r.meta
	endNs := r.clock.Now()
	wallEnd := time.Now().UnixNano()
	m.Clock.MonoEndNs = endNs
	m.Clock.WallEndNs = wallEnd
	m.Clock.DriftNs = wallEnd - endNs
	if abs64(m.Clock.DriftNs) > int64(time.Second) {
		r.warn(trace.Warning{Code: "clock_step", Message: fmt.Sprintf(
			"the wall clock moved %.1f s against the monotonic clock during the run; recorder timestamps are monotonic, driver power-sample timestamps are not",
			float64(m.Clock.DriftNs)/1e9)})
	}
	if d := time.Duration(endNs - m.Clock.WallStartNs); d < MinRunDuration {
		r.warn(trace.Warning{Code: "short_run", Message: fmt.Sprintf(
			"the recording lasted %.1f s, under the %v minimum window; energy figures will be dominated by sensor granularity", d.Seconds(), MinRunDuration)})
	}
	// What the backend learned over the run (fields it found unsupported,
	// failed driver calls) replaces the start-of-run snapshot's copy.
	for i, g := range r.gpus {
		if rep, ok := g.(backendReport); ok {
			m.GPUs[i].Unsupported = rep.Unsupported()
			m.GPUs[i].Errors = rep.Errors()
		}
	}
	r.mu.Lock()
	for i := range m.GPUs {
		idx := m.GPUs[i].Index
		if t, ok := r.lost[idx]; ok {
			m.GPUs[i].Lost, m.GPUs[i].LostNs = true, t
		}
		if e := r.errs[idx]; len(e) > 0 {
			if m.GPUs[i].Errors == nil {
				m.GPUs[i].Errors = map[string]int64{}
			}
			for k, v := range e {
				m.GPUs[i].Errors[k] += v
			}
		}
	}
	r.mu.Unlock()
	m.Recorder = r.stats(endNs)
	if tr, ok := r.cfg.Backend.(TruthReporter); ok {
		m.SimTruth = tr.Truth(m.Clock.WallStartNs, endNs)
	}
	m.Status = trace.StatusComplete
	if interrupted {
		m.Status = trace.StatusInterrupted
	}
	m.Complete = true
}

// backendReport is implemented by GPUs that count their own failed calls
// and unsupported fields (the NVML backend).
type backendReport interface {
	Errors() map[string]int64
	Unsupported() []string
}

func (r *recorder) stats(endNs int64) trace.RecorderStats {
	st := trace.RecorderStats{Loops: map[string]trace.LoopStats{}}
	for name, l := range r.loops {
		st.Loops[name] = l.snapshot()
	}
	st.Rows, st.Segments = r.out.counts()
	st.WallSeconds = float64(endNs-r.meta.Clock.WallStartNs) / 1e9
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		st.CPUSeconds = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
		st.MaxRSSBytes = ru.Maxrss * 1024
	}
	if st.WallSeconds > 0 {
		st.CPUPercent = 100 * st.CPUSeconds / st.WallSeconds
	}
	return st
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
