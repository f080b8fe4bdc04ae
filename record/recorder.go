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
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llem/llem/record/eventsrv"
	"github.com/llem/llem/record/rapl"
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
	// The driver's power buffer holds 120 samples of its ~20 ms grid: the
	// shortest span of 120 consecutive samples was 2.35 s on the shipped
	// H100 runs and on the H200 (whose first drain returned 119 samples over
	// 2.36 s). Draining it every second keeps every sample even when a
	// drain is 1.3 s late; a drain costs the same CPU whatever it returns
	// (~0.3 ms, and up to ~1.8 ms on an idle H200), so each one saved
	// counts. A drain that finds samples missing after the last one it saw
	// (an overflow) writes a driver_power_gap event.
	DefaultDriverPowerInterval = time.Second
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
	// HostEnergyInterval is the read interval of the host's RAPL
	// counters [DefaultHostEnergyInterval]; SysfsRoot the sysfs they are
	// read under [rapl.DefaultSysfs, /sys] (tests give a fixture tree).
	HostEnergyInterval time.Duration
	SysfsRoot          string

	IdleBefore time.Duration
	IdleAfter  time.Duration
	Cycles     int
	Cooldown   time.Duration
	// StopGrace is how long the command may take to exit after a stop
	// signal before its processes are killed [DefaultStopGrace].
	StopGrace time.Duration
	// StallAfter is how long one write of the trace may take before the
	// disk is reported stalled and, at the end, given up on [DefaultStallAfter].
	StallAfter time.Duration

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

	// Metrics, when set, is where Prometheus metrics are served while the
	// recording runs (metrics.go; ListenMetrics binds one). Record closes it.
	Metrics net.Listener
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
	def(&c.HostEnergyInterval, DefaultHostEnergyInterval)
	def(&c.StopGrace, DefaultStopGrace)
	def(&c.StallAfter, DefaultStallAfter)
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
	if cfg.Metrics != nil {
		defer cfg.Metrics.Close() // also when the recording never starts
	}
	cfg.setDefaults()
	if len(cfg.Argv) == 0 {
		return nil, errors.New("no command to record: put it after --, e.g. llem record -- python infer.py")
	}
	if err := CheckCommand(cfg.Argv[0]); err != nil {
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

// makeRunDir creates the run directory, or takes an existing one that is
// empty and the recording user's own. An earlier run is never overwritten,
// and a directory another user owns (or may write into, as any user may
// into a world-writable one without the sticky bit) is refused: its owner
// could replace the run's files while it records.
func makeRunDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: %v", dir, err)}
		}
		return nil
	case err != nil:
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: %v", dir, err)}
	case !st.IsDir():
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s exists and is not a directory; choose a new one", dir)}
	}
	if entries, err := os.ReadDir(dir); err != nil {
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: %v", dir, err)}
	} else if len(entries) > 0 {
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s: directory exists and is not empty; choose a new one", dir)}
	}
	if uid, ok := ownerOf(st); ok && uid != os.Getuid() {
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s is owned by %s, not by you (%s): its owner could replace the run's files; choose a directory of your own",
			dir, userName(uid), userName(os.Getuid()))}
	}
	if perm := st.Mode(); perm.Perm()&0o002 != 0 && perm&os.ModeSticky == 0 {
		return &ConfigError{Field: "OutDir", Msg: fmt.Sprintf("%s is writable by every user (mode %v): any of them could replace the run's files; choose another directory or chmod o-w it",
			dir, perm.Perm())}
	}
	return nil
}

type recorder struct {
	cfg   Config
	gpus  []GPU
	clock *Clock
	meta  *trace.Meta
	out   *tableSink
	host  *rapl.Reader // nil: the host's energy is not recorded
	// hostFinal reads the host counters after the GPUs' last reads.
	hostFinal func()

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
	gaps    []trace.Gap // spans with missing rows found while recording
	dataEnd *dataEnd    // set when the trace could not be written to the end
	stalled bool        // the trace writer never returned: its counts are not to be read

	// For the live metrics (metrics.go): live is nil when none are served.
	live   map[int]*atomic.Pointer[trace.DeviceState] // GPU index -> last state poll
	events *eventsrv.Server
	cycle  atomic.Int32 // the cycle running, 0 while none runs
}

func newRecorder(cfg Config, gpus []GPU) *recorder {
	r := &recorder{
		cfg: cfg, gpus: gpus, clock: NewClock(),
		loops: map[string]*loopStats{
			"energy":       {interval: cfg.EnergyInterval},
			"driver_power": {interval: cfg.DriverPowerInterval},
			"device_state": {interval: cfg.StateInterval},
		},
		lost: map[int]int64{}, errs: map[int]map[string]int64{},
		latestW: map[int]float64{}, firstMj: map[int]uint64{}, lastMj: map[int]uint64{},
	}
	if cfg.Metrics != nil {
		r.live = map[int]*atomic.Pointer[trace.DeviceState]{}
		for _, g := range gpus {
			r.live[g.Index()] = new(atomic.Pointer[trace.DeviceState])
		}
	}
	return r
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
	signal.Notify(sigs, StopSignals...)
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
	if cfg.Metrics != nil {
		m.Settings.MetricsAddr = cfg.Metrics.Addr().String()
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
	r.openHost()
	if err := trace.WriteMeta(cfg.OutDir, m); err != nil {
		return nil, err
	}

	reserveSpace(cfg.OutDir)
	var err error
	r.out, err = newTableSink(cfg.OutDir, m.RunID, cfg.RotateInterval, r.host != nil)
	if err != nil {
		return nil, err
	}
	r.out.now, r.out.onFail = r.clock.Now, r.writeFailed // before attachEvents starts its loop
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go r.watchWrites(watchCtx)
	r.phaseRead = make(chan struct{}, 1)
	srv, sockPath, err := listenEvents(r.clock.Now, eventsrv.Options{Task: cfg.Task, OnPhase: r.clientPhase})
	if err != nil {
		return nil, err
	}
	defer removeSocketDir(sockPath)
	m.Events.Socket = sockPath
	r.events = srv
	r.out.attachEvents(srv)
	if cfg.Node != nil {
		cfg.Node.Relay(r.out.relayed, r.out.relayedBad)
	}

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	// Every GPU's schedule starts from the same instant, so their
	// deadlines coincide and one wake-up serves them all.
	r.sampleStart = time.Now()
	// The host's first read comes before the GPUs' and its last
	// (r.hostFinal) after theirs, so its reads span theirs.
	if r.host != nil {
		r.startHostLoop(sampleCtx, &sampling)
	}
	for _, g := range r.gpus {
		r.startLoops(sampleCtx, &sampling, g)
	}
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		r.readCountersOnPhase(sampleCtx)
	}()
	stopStatus := r.startStatus()
	stopMetrics := r.startMetrics()

	exitCode, interrupted, runErr := r.phases(ctx, sigs, sockPath)

	stopStatus()
	stopSampling()
	sampling.Wait()
	r.finalReads()
	if r.hostFinal != nil {
		r.hostFinal()
	}
	stopMetrics()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(cfg.Log, "llem: closing event socket: %v\n", err)
	}
	m.Events = srv.Stats()
	m.Events.Socket = sockPath
	if cfg.Node != nil {
		cfg.Node.Close(m)
	}
	sinkErr := r.out.close(cfg.StallAfter)
	stopWatch()
	if errors.Is(sinkErr, errStalled) {
		r.stalled = true
		r.writeStalled()
	}

	r.finish(interrupted)
	r.markDataEnd(m.Clock.MonoEndNs)
	if m.DataEndsNs == 0 {
		if err := writeSimTruth(cfg.Backend, cfg.OutDir, m, m.Clock.WallStartNs, m.Clock.MonoEndNs); err != nil {
			fmt.Fprintf(cfg.Log, "llem: writing the simulated device's truth: %v\n", err)
		}
	}
	releaseSpace(cfg.OutDir)
	if m.DataEndsNs != 0 {
		// The failure has been reported; the command's exit code stands.
		if err := writeMetaWithin(cfg.OutDir, m, cfg.StallAfter); err != nil {
			fmt.Fprintf(cfg.Log, "llem: warning: could not write the final meta.json: %v\n", err)
		}
		if runErr != nil {
			return nil, runErr
		}
		return &Result{Dir: cfg.OutDir, ExitCode: exitCode, Meta: m}, nil
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

// listenEvents opens the event socket in a directory of its own that only
// the recording user can enter (mode 0700, under $TMPDIR or /tmp), never in
// the run directory: whoever can write into a directory can replace a
// socket in it with their own and receive the run's events. meta.json and
// LLEM_EVENTS name it; the caller removes the directory after the server
// has closed (removeSocketDir).
func listenEvents(now func() int64, opts eventsrv.Options) (*eventsrv.Server, string, error) {
	var lastErr error
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dir, err := privateDir(base)
		if err != nil {
			lastErr = err
			continue
		}
		path := filepath.Join(dir, "events.sock")
		srv, err := eventsrv.Listen(path, now, opts)
		if err != nil {
			os.RemoveAll(dir)
			lastErr = fmt.Errorf("event socket %s: %w", path, err)
			continue
		}
		return srv, path, nil
	}
	return nil, "", lastErr
}

// privateDir creates a new directory under base and checks that it is the
// user's and no one else's (a base on a file system that ignores modes
// would not give that).
func privateDir(base string) (string, error) {
	dir, err := os.MkdirTemp(base, "llem-events-")
	if err != nil {
		return "", fmt.Errorf("event socket: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("event socket: %w", err)
	}
	if uid, ok := ownerOf(st); !st.IsDir() || (ok && uid != os.Getuid()) || st.Mode().Perm()&0o077 != 0 {
		os.RemoveAll(dir)
		return "", fmt.Errorf("event socket: %s is not a directory of yours with mode 0700 (mode %v)", dir, st.Mode())
	}
	return dir, nil
}

// removeSocketDir removes the socket's private directory once the server
// is closed.
func removeSocketDir(sockPath string) {
	dir := filepath.Dir(sockPath)
	if strings.HasPrefix(filepath.Base(dir), "llem-events-") {
		os.RemoveAll(dir)
	}
}

// ownerOf is the uid owning the file st describes.
func ownerOf(st os.FileInfo) (int, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(sys.Uid), true
}

// userName is "name (uid N)", or "uid N" for a uid without a name.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
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
		pol := stopPolicy{grace: cfg.StopGrace, log: cfg.Log, now: r.clock.Now, cycle: c}
		res, err := runChild(cfg.Argv, env, cfg.Stdin, cfg.Stdout, cfg.Stderr, sigs, pol, func() {
			startNs = r.clock.Now()
			r.cycle.Store(cycle)
			r.setBusy(true, startNs)
			r.event("cycle_start", "", &cycle, trace.GPUAll, "")
		})
		endNs := r.clock.Now()
		r.cycle.Store(0)
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
		cmd.Leftover += res.Leftover
		if res.Leftover > 0 { // runChild has said so
			r.meta.Warnings = append(r.meta.Warnings, trace.Warning{Code: "command_leftover", Message: fmt.Sprintf(
				"cycle %d: the command exited leaving %d process(es) of its group running; they were stopped", c, res.Leftover)})
		}
		exitCode = res.ExitCode
		if res.Stop != nil {
			// Asked to stop: no further cycle, no idle phase after.
			cmd.Stop = res.Stop
			if res.Stop.Killed { // runChild has said so
				r.meta.Warnings = append(r.meta.Warnings, trace.Warning{Code: "command_killed", Message: fmt.Sprintf(
					"the command was killed (SIGKILL) after %s (%s)", res.Stop.Signal, res.Stop.KillReason)})
			}
			return exitCode, true, nil
		}
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
			m.Gaps = append(m.Gaps, trace.Gap{GPU: &idx, StartNs: t, EndNs: max(endNs, t), Code: "gpu_lost",
				Message: fmt.Sprintf("GPU %d was lost: no reading of it from here to the end of the recording", idx)})
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
	overflows := 0
	for _, g := range r.gaps {
		if g.Code == "driver_power_gap" {
			overflows++
		}
	}
	m.Gaps = append(m.Gaps, r.gaps...)
	r.mu.Unlock()
	if overflows > 0 {
		r.warn(trace.Warning{Code: "driver_power_gap", Message: fmt.Sprintf(
			"the driver's power-sample buffer overflowed %d time(s) (a late drain): those spans are gaps in driver_power (meta.json gaps)", overflows)})
	}
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
	if !r.stalled {
		st.Rows, st.Segments = r.out.counts()
	}
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
