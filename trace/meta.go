package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MetaFile is the name of the run's metadata document.
const MetaFile = "meta.json"

// Run status values in Meta.Status.
const (
	StatusRecording   = "recording"   // the recorder is running, or was killed
	StatusComplete    = "complete"    // the recorder finished and flushed everything
	StatusInterrupted = "interrupted" // the recorder stopped early but flushed what it had
)

// Meta is meta.json: everything about a run that is not a sample.
type Meta struct {
	SchemaVersion string `json:"schema_version"`
	RunID         string `json:"run_id"`
	LlemVersion   string `json:"llem_version"`
	// Complete is true only once the recorder has flushed every table and
	// written the final meta.json. A killed recorder leaves it false.
	Complete bool   `json:"complete"`
	Status   string `json:"status"`
	// Device names the backend: "nvml", "sim", "replay:<run>", "import:<format>".
	Device   string            `json:"device"`
	Labels   map[string]string `json:"labels,omitempty"`
	Clock    ClockAnchor       `json:"clock"`
	Command  *CommandInfo      `json:"command,omitempty"`
	Settings RecordSettings    `json:"settings"`
	Host     HostInfo          `json:"host"`
	GPUs     []GPUInfo         `json:"gpus"`
	Warnings []Warning         `json:"warnings"`
	Recorder RecorderStats     `json:"recorder"`
	Events   EventStats        `json:"events"`
	// SimTruth is written by the simulated device: the ground truth that
	// the analysis is scored against.
	SimTruth *SimTruth `json:"sim_truth,omitempty"`
	// HostEnergy says which of the host's RAPL energy domains the
	// host_energy table holds or, when none, why (optional, within format
	// 1.1; absent from runs recorded before it and from imports).
	HostEnergy *HostEnergyInfo `json:"host_energy,omitempty"`
	// Source describes where an imported or replayed run came from.
	Source *SourceInfo `json:"source,omitempty"`
	// Gaps are spans with no data that the writer knew of (format 1.1): an
	// imported log that stops and resumes, or whose clock jumps. Nothing
	// may be interpolated or integrated across them; Run.Gaps adds the
	// spans of segments lost since.
	Gaps []Gap `json:"gaps,omitempty"`
	// DataEndsNs is set when the recorder could not write everything it
	// recorded (format 1.1, optional): a full or failing disk, the run
	// directory removed. Rows from this time on are missing (meta.json
	// gaps has the span); DataEndsReason says why, naming the path.
	DataEndsNs     int64  `json:"data_ends_ns,omitempty"`
	DataEndsReason string `json:"data_ends_reason,omitempty"`
	// Job and ClockSync are written for a node of a multi-node job (see
	// job.go): the job, the node's tasks, and the node's clock.
	Job       *JobInfo   `json:"job,omitempty"`
	ClockSync *ClockSync `json:"clock_sync,omitempty"`
}

// ClockAnchor ties the recorder's monotonic clock to wall-clock time.
// Every timestamp the recorder stamps itself is WallStartNs plus the
// monotonic time elapsed since the anchor, so a wall-clock step during the
// run (NTP, a manual change) cannot reorder samples. WallEndNs is the wall
// clock read at the end, and DriftNs the difference between it and the
// monotonic end stamp: a large value means the wall clock was stepped.
// Driver power-sample timestamps come from the driver's own wall clock.
type ClockAnchor struct {
	WallStartNs    int64  `json:"wall_start_ns"`
	MonoEndNs      int64  `json:"mono_end_ns,omitempty"`
	WallEndNs      int64  `json:"wall_end_ns,omitempty"`
	DriftNs        int64  `json:"drift_ns,omitempty"`
	TimestampUnits string `json:"timestamp_units"`
}

// CommandInfo describes the recorded command.
type CommandInfo struct {
	Argv       []string `json:"argv"`
	WorkDir    string   `json:"work_dir"`
	StartNs    int64    `json:"start_ns"`
	EndNs      int64    `json:"end_ns,omitempty"`
	ExitCode   *int     `json:"exit_code,omitempty"`
	ExitSignal string   `json:"exit_signal,omitempty"`
	// Cycles holds one entry per run of the command (--cycles).
	Cycles []CycleInfo `json:"cycles,omitempty"`
	// Stop says how the recorder stopped the command, when it was asked to
	// (format 1.1, optional): absent when the command ended by itself.
	Stop *CommandStop `json:"stop,omitempty"`
	// Leftover counts the processes of the command's process group still
	// running when the command itself exited, which the recorder then
	// stopped (SIGTERM, SIGKILL after the grace period) so that none
	// outlives the recording (format 1.1, optional).
	Leftover int `json:"leftover_processes,omitempty"`
}

// CommandStop is how a command was stopped: the signal the recorder got,
// whether it passed it on to the command's processes, and whether it had
// to kill them.
type CommandStop struct {
	// Signal is the first stop signal the recorder received (SIGINT,
	// SIGTERM, SIGHUP) while the command ran, at AtNs.
	Signal string `json:"signal"`
	AtNs   int64  `json:"at_ns"`
	Cycle  int    `json:"cycle,omitempty"`
	// Forwarded is false for a Ctrl-C the terminal had already sent to
	// the command itself.
	Forwarded bool    `json:"forwarded"`
	GraceMs   float64 `json:"grace_ms"`
	// Killed is set when the recorder sent SIGKILL to the command's
	// processes, at KilledNs, because KillReason: "grace_expired" (still
	// running GraceMs after the signal) or "second_signal".
	Killed     bool   `json:"killed,omitempty"`
	KilledNs   int64  `json:"killed_ns,omitempty"`
	KillReason string `json:"kill_reason,omitempty"`
}

// CycleInfo is one run of the command.
type CycleInfo struct {
	Cycle    int   `json:"cycle"`
	StartNs  int64 `json:"start_ns"`
	EndNs    int64 `json:"end_ns"`
	ExitCode int   `json:"exit_code"`
}

// RecordSettings are the recorder's settings for this run.
type RecordSettings struct {
	EnergyIntervalMs      float64 `json:"energy_interval_ms"`
	DriverPowerIntervalMs float64 `json:"driver_power_interval_ms"`
	StateIntervalMs       float64 `json:"state_interval_ms"`
	RotateIntervalMs      float64 `json:"rotate_interval_ms"`
	IdleBeforeMs          float64 `json:"idle_before_ms"`
	IdleAfterMs           float64 `json:"idle_after_ms"`
	Cycles                int     `json:"cycles"`
	CooldownMs            float64 `json:"cooldown_ms"`
	GPUs                  []int   `json:"gpus"`
	Seed                  *int64  `json:"seed,omitempty"`
	ReplaySpeed           float64 `json:"replay_speed,omitempty"`
	// MetricsAddr is where live Prometheus metrics were served while
	// recording (llem record --metrics-addr); empty when none were.
	MetricsAddr string `json:"metrics_addr,omitempty"`
}

// HostInfo is the host's environment snapshot.
type HostInfo struct {
	Hostname    string `json:"hostname"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel"`
	Arch        string `json:"arch"`
	CPUModel    string `json:"cpu_model"`
	NumCPU      int    `json:"num_cpu"`
	CPUGovernor string `json:"cpu_governor"` // "" when the kernel exposes none
	InContainer bool   `json:"in_container"`
	// ContainerHint says what gave the container away (/.dockerenv, cgroup...).
	ContainerHint string `json:"container_hint,omitempty"`
}

// GPUInfo is one GPU's environment snapshot taken at the start of the run.
// Pointer fields are null when the GPU or driver does not report them.
type GPUInfo struct {
	Index               int    `json:"index"`
	Name                string `json:"name"`
	UUID                string `json:"uuid"`
	Serial              string `json:"serial,omitempty"`
	PCIBusID            string `json:"pci_bus_id,omitempty"`
	DriverVersion       string `json:"driver_version,omitempty"`
	NVMLVersion         string `json:"nvml_version,omitempty"`
	CUDAVersion         string `json:"cuda_version,omitempty"`
	PersistenceMode     *bool  `json:"persistence_mode,omitempty"`
	PowerLimitMw        *int64 `json:"power_limit_mw,omitempty"`
	DefaultPowerLimitMw *int64 `json:"default_power_limit_mw,omitempty"`
	ECCEnabled          *bool  `json:"ecc_enabled,omitempty"`
	MIGEnabled          *bool  `json:"mig_enabled,omitempty"`
	ComputeMode         string `json:"compute_mode,omitempty"`
	MaxSMClockMHz       *int32 `json:"max_sm_clock_mhz,omitempty"`
	MaxMemClockMHz      *int32 `json:"max_mem_clock_mhz,omitempty"`
	PStateAtStart       *int32 `json:"pstate_at_start,omitempty"`
	// Processes are the compute processes on the GPU when recording began.
	Processes []GPUProcess `json:"processes"`
	// Unsupported lists the fields this GPU does not report; they are
	// absent (null) in every table row.
	Unsupported []string `json:"unsupported,omitempty"`
	// Errors counts failed calls by call name over the run.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Lost is set when the GPU stopped answering during the run.
	Lost   bool  `json:"lost,omitempty"`
	LostNs int64 `json:"lost_ns,omitempty"`
}

// GPUProcess is a process holding a context on a GPU.
type GPUProcess struct {
	PID             uint32 `json:"pid"`
	Name            string `json:"name,omitempty"`
	UsedMemoryBytes uint64 `json:"used_memory_bytes,omitempty"`
}

// Warning is a preflight or recording warning. Code is stable for scripts.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	GPU     *int   `json:"gpu,omitempty"`
}

// RecorderStats is the recorder's account of its own cost and timeliness.
type RecorderStats struct {
	CPUSeconds  float64              `json:"cpu_seconds"`
	WallSeconds float64              `json:"wall_seconds"`
	CPUPercent  float64              `json:"cpu_percent_of_one_core"`
	MaxRSSBytes int64                `json:"max_rss_bytes,omitempty"`
	Rows        map[string]int64     `json:"rows"`
	Segments    map[string]int       `json:"segments"`
	Loops       map[string]LoopStats `json:"loops"`
}

// LoopStats describes one sampling loop (per kind, over all GPUs).
type LoopStats struct {
	IntervalMs      float64 `json:"interval_ms"`
	Iterations      int64   `json:"iterations"`
	MissedDeadlines int64   `json:"missed_deadlines"`
	WorstJitterMs   float64 `json:"worst_jitter_ms"`
	MeanJitterMs    float64 `json:"mean_jitter_ms"`
	Errors          int64   `json:"errors"`
	// Thread names where the loop ran when not on the recorder's Go
	// schedule: "c" for NVML state polls made by a C thread (from llem
	// 2026-12-06 on); empty otherwise.
	Thread string `json:"thread,omitempty"`
}

// EventStats counts client events.
type EventStats struct {
	Socket   string `json:"socket,omitempty"`
	Received int64  `json:"received"`
	Accepted int64  `json:"accepted"`
	Bad      int64  `json:"bad"`
	// BadKept is how many bad lines were stored in bad_events (bounded).
	BadKept int64 `json:"bad_kept"`
	// Dropped counts good events lost because the client sent faster than
	// they could be written; it is zero in a healthy run.
	Dropped int64 `json:"dropped"`
}

// SimTruth is the simulated GPU's ground truth, summed over its GPUs.
// Times are seconds from Clock.WallStartNs.
type SimTruth struct {
	Seed             int64     `json:"seed"`
	EnergyJ          float64   `json:"energy_j"`
	StartNs          int64     `json:"start_ns"`
	EndNs            int64     `json:"end_ns"`
	IdlePowerW       float64   `json:"idle_power_w"`
	SteadyStartS     float64   `json:"steady_start_s"`
	SteadyMeanPowerW float64   `json:"steady_mean_power_w"`
	PerGPUEnergyJ    []float64 `json:"per_gpu_energy_j,omitempty"`
	Model            string    `json:"model"`
}

// HostEnergyInfo describes the host energy counters a recording found
// under Linux powercap (docs/recorder.md, "Host energy").
type HostEnergyInfo struct {
	// Path is the powercap directory read (normally /sys/class/powercap).
	Path string `json:"path"`
	// IntervalMs is the read interval of the host_energy table's rows
	// (they are also read at every phase and cycle boundary).
	IntervalMs float64 `json:"interval_ms,omitempty"`
	// Domains are the domains recorded, in the host_energy table.
	Domains []HostEnergyDomain `json:"domains"`
	// Unreadable are the RAPL zones found whose counter could not be read.
	Unreadable []HostEnergyZoneError `json:"unreadable,omitempty"`
	// Unavailable is set when no domain is recorded: "no_powercap" (no
	// powercap directory: a virtual machine, a container without /sys,
	// not Linux), "no_rapl" (powercap without RAPL zones), or
	// "permission_denied" (energy_uj is root-only since Linux 5.10).
	// Reason says so in words, with the fix.
	Unavailable string `json:"unavailable,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// HostEnergyDomain is one RAPL domain: its powercap zone, its label in
// the host_energy table and in results, and the counter's range: it wraps
// to 0 after MaxEnergyRangeUj microjoules.
type HostEnergyDomain struct {
	Zone             string `json:"zone"`
	Name             string `json:"name"`
	MaxEnergyRangeUj int64  `json:"max_energy_range_uj"`
}

// HostEnergyZoneError is a RAPL zone whose counter could not be read.
type HostEnergyZoneError struct {
	Zone  string `json:"zone"`
	Error string `json:"error"`
}

// SourceInfo names where an imported or replayed run's data came from.
type SourceInfo struct {
	Format  string            `json:"format"`
	Files   []SourceFile      `json:"files,omitempty"`
	Unknown []string          `json:"unknown,omitempty"`
	Notes   map[string]string `json:"notes,omitempty"`
}

// SourceFile is one input file with its content hash.
type SourceFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// WriteMeta writes meta.json atomically (temporary file, fsync, rename) so
// a crash leaves the old or the new document, never half of one.
func WriteMeta(dir string, m *Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", MetaFile, err)
	}
	b = append(b, '\n')
	return writeFileAtomic(filepath.Join(dir, MetaFile), b)
}

// ReadMeta reads and checks a run's meta.json.
func ReadMeta(dir string) (*Meta, error) {
	path := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: not an llem run (no %s)", dir, MetaFile)
		}
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, metaError(path, b, err)
	}
	if err := CheckVersion(m.SchemaVersion); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// metaError names where in meta.json decoding failed, as file:line:column,
// so that a hand-edited or damaged document can be mended.
func metaError(path string, b []byte, err error) error {
	var offset int64 = -1
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	case errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected end of JSON input"):
		offset = int64(len(b))
	}
	if offset < 0 {
		return fmt.Errorf("%s: %w", path, err)
	}
	line, col := lineColumn(b, offset)
	return fmt.Errorf("%s:%d:%d: not a valid %s: %w", path, line, col, MetaFile, err)
}

// lineColumn turns a byte offset into a 1-based line and column (in bytes).
// encoding/json's offsets count the bytes read when the error was found,
// so the column is that of the offending byte.
func lineColumn(b []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(b))))
	before := b[:offset]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// CheckVersion accepts any version with this reader's major number.
func CheckVersion(v string) error {
	if v == "" {
		return fmt.Errorf("no schema_version: not an llem trace")
	}
	majorStr, _, _ := strings.Cut(v, ".")
	major, err := strconv.Atoi(majorStr)
	if err != nil {
		return fmt.Errorf("schema_version %q is not of the form MAJOR.MINOR", v)
	}
	if major > SchemaMajor {
		return fmt.Errorf("trace format %s is newer than this llem reads (%d.x): upgrade llem", v, SchemaMajor)
	}
	if major < 1 {
		return fmt.Errorf("schema_version %q is not a released trace format", v)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	if err := writeFileSynced(path+".tmp", b); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// writeFileSynced writes b to path and syncs it to disk.
func writeFileSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
