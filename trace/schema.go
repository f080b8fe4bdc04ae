// Package trace defines llem's on-disk trace format (version 2; it reads
// version 1 too) and reads and writes it.
//
// A run is a directory holding meta.json and one folder per table. Each
// table folder holds Parquet segments named part-NNNNNN.parquet; a segment
// is written whole to a temporary name and renamed into place, so every
// file named part-*.parquet is a complete Parquet file even after the
// recorder is killed. docs/trace-format.md is the reference for users.
package trace

// SchemaVersion is the trace format version this code writes. Readers
// accept any minor version of the same major version and refuse newer
// majors with a message that says so.
//
// 1.1: a client event's timestamp_ns is its client stamp (ts) moved onto
// the recorder's clock when that lies in the window in which its line
// arrived, else the window's nearer edge (1.0: the time the line was
// read). 1.2: the host_energy table, meta.json host_energy and
// settings.metrics_addr. 2.0: driver_power stores the driver's
// microsecond stamps as timestamp_us and power as int32 (both lossless),
// and its segments grow, rewritten whole at every rotation, until they
// span a minute (DriverPowerSegmentSpan): a driver sample takes 3.4 to
// 4.2 bytes on disk instead of ~10. 2.1: meta.json recorder.loops.*.thread.
// 2.2: driver_power_mw is brotli-compressed (powerCodec); a 2.1 reader
// decodes it, as parquet-go does, but reports an unlisted last segment
// (a killed recorder's) as unreadable. docs/trace-format.md lists every version.
const (
	SchemaMajor   = 2
	SchemaMinor   = 3
	SchemaVersion = "2.3"
)

// Key-value metadata keys stored in every Parquet segment.
const (
	KeySchemaVersion = "llem.schema_version"
	KeyTable         = "llem.table"
	KeyRunID         = "llem.run_id"
)

// Table names: each is a folder in the run directory.
const (
	TableDriverPower = "driver_power"
	TableEnergy      = "energy"
	TableState       = "device_state"
	TableEvents      = "events"
	TableBadEvents   = "bad_events"
	// TableSimTruth is a simulated device's true energy (format 1.1): only
	// runs recorded with --device sim have it.
	TableSimTruth = "sim_truth"
	// TableHostEnergy holds the host's RAPL energy counters (CPU package,
	// DRAM...), read from Linux powercap beside the GPUs (optional, added
	// within format 1.1): only runs recorded where they were readable have
	// it, and a reader that predates it ignores the folder.
	TableHostEnergy = "host_energy"
)

// Tables lists every table in a fixed order.
var Tables = []string{TableDriverPower, TableEnergy, TableState, TableEvents, TableBadEvents, TableSimTruth, TableHostEnergy}

// DriverPowerSample is one sample from the driver's power-sample buffer
// (nvmlDeviceGetSamples with NVML_TOTAL_POWER_SAMPLES). The driver keeps a
// resampled series on a ~20 ms grid; the timestamp is the driver's own,
// converted from microseconds to nanoseconds since the Unix epoch.
//
// This is the row as every reader sees it, whatever the format version; it
// is also format 1's segment layout. Format 2 stores driverPowerRow.
type DriverPowerSample struct {
	GPU           int32 `parquet:"gpu,delta"`
	TimestampNs   int64 `parquet:"timestamp_ns,delta"`
	DriverPowerMw int64 `parquet:"driver_power_mw,delta"`
}

// driverPowerRow is a driver power sample as format 2 stores it. The
// driver stamps in microseconds: stored in ns, Parquet's delta encoding
// spent ~24 bits on each stamp's jitter around the ~20 ms grid (the
// spread of a block of deltas, ~10 ms), in us ~14. Power is mW as NVML
// gives it, a uint32, in plain encoding compressed by brotli (powerCodec;
// format 2.2, zstd before): on a heavily loaded GPU (817 distinct values
// in 58 s) a per-segment dictionary cost more than it saved, and int64
// cost 0.1 byte a sample more. The GPU column is delta-encoded (2.2; a
// dictionary before), the same size on disk, since a dictionary column's
// buffer (256 KiB) was allocated by every segment's writer. Both are
// exact: reading gives back the DriverPowerSample written.
type driverPowerRow struct {
	GPU           int32  `parquet:"gpu,delta"`
	TimestampUs   int64  `parquet:"timestamp_us,delta"`
	DriverPowerMw uint32 `parquet:"driver_power_mw,plain,brotli"`
}

// EnergyRead is one read of the GPU's cumulative energy counter
// (nvmlDeviceGetTotalEnergyConsumption): millijoules since the driver was
// loaded. The timestamp is the midpoint of the call, which takes ~3 ms on an
// H100; ReadDurationNs keeps its length so the analysis can bound the error.
// A value lower than the previous one for the same GPU means the counter was
// reset (driver reload); rows are stored as read, never corrected.
type EnergyRead struct {
	GPU            int32 `parquet:"gpu,delta"`
	TimestampNs    int64 `parquet:"timestamp_ns,delta"`
	EnergyMj       int64 `parquet:"energy_mj,delta"`
	ReadDurationNs int64 `parquet:"read_duration_ns,delta"`
}

// DeviceState is one poll of the cheap, driver-cached device fields. A
// field the GPU does not support, or whose read failed, is null (absent),
// never zero.
type DeviceState struct {
	GPU         int32 `parquet:"gpu,delta"`
	TimestampNs int64 `parquet:"timestamp_ns,delta"`
	// InstantPowerMw is NVML field FI_DEV_POWER_INSTANT (scope GPU):
	// updates every ~100 ms on an H100 and follows a step within one update.
	InstantPowerMw *int64 `parquet:"instant_power_mw,optional"`
	// AveragePowerMw is nvmlDeviceGetPowerUsage: a 1 s moving average on
	// Ampere and newer. Never treat it as instantaneous power.
	AveragePowerMw    *int64 `parquet:"average_power_mw,optional"`
	TemperatureC      *int32 `parquet:"temperature_c,optional"`
	SMClockMHz        *int32 `parquet:"sm_clock_mhz,optional"`
	MemClockMHz       *int32 `parquet:"mem_clock_mhz,optional"`
	PState            *int32 `parquet:"pstate,optional"`
	GPUUtilPct        *int32 `parquet:"gpu_util_pct,optional"`
	MemUtilPct        *int32 `parquet:"mem_util_pct,optional"`
	ClockEventReasons *int64 `parquet:"clock_event_reasons,optional"`
	MemoryUsedBytes   *int64 `parquet:"memory_used_bytes,optional"`
}

// GPUAll is the GPU index of rows that concern no single GPU (most events).
const GPUAll = -1

// Event is one inference or recorder event. TimestampNs is the recorder's
// arrival stamp on its own monotonic-anchored clock; ClientTimestampNs is the
// client's own stamp when it sent one.
//
// Both stamps are delta-encoded (every integer column is: withFixedCodecs)
// and stored uncompressed (format 2.3): the deltas of nanosecond stamps
// are noise to zstd (a fifth of the events table's encoding CPU in
// BenchmarkEventsSegment), which made the token events' timestamp_ns of
// 1 h of 8 GPUs (bench/synth) 10,965,500 bytes from 10,960,177. Request
// ids are dictionary-encoded (but see maxDictBytes): a segment's rows
// name a few hundred requests (the concurrency), each many times.
type Event struct {
	TimestampNs       int64  `parquet:"timestamp_ns,delta,uncompressed"`
	GPU               int32  `parquet:"gpu,delta"`
	Kind              string `parquet:"kind,dict"`
	Name              string `parquet:"name,dict"`
	RequestID         string `parquet:"request_id,dict"`
	ClientTimestampNs *int64 `parquet:"client_timestamp_ns,optional,uncompressed"`
	Count             *int64 `parquet:"count,optional"`
	InputTokens       *int64 `parquet:"input_tokens,optional"`
	OutputTokens      *int64 `parquet:"output_tokens,optional"`
	Cycle             *int32 `parquet:"cycle,optional"`
	// Source is "client" for events sent over LLEM_EVENTS and "recorder"
	// for those llem writes itself (phases, cycles, GPU errors).
	Source string `parquet:"source,dict"`
	// Attrs holds any further key/value pairs as a JSON object ("" if none).
	Attrs string `parquet:"attrs"`
	// Task is the job task whose command the event concerns (Slurm's
	// SLURM_PROCID) in a multi-node recording; null otherwise (and in
	// formats before 1.1, which lack the column).
	Task *int32 `parquet:"task,optional"`
}

// BadEvent is a client line the recorder could not accept, kept aside with
// the reason. Raw is truncated to MaxBadEventRaw bytes and may be invalid
// UTF-8, hence bytes rather than a string.
type BadEvent struct {
	TimestampNs int64  `parquet:"timestamp_ns,delta"`
	Reason      string `parquet:"reason,dict"`
	Raw         []byte `parquet:"raw"`
}

// MaxBadEventRaw bounds how much of a rejected line is kept.
const MaxBadEventRaw = 1024

// SimTruthEnergy is a simulated GPU's true cumulative energy (what it
// drew, before any sensor error) at the start of each tick of its model,
// in microjoules from the start of the recording. True power is constant
// within a tick, so the energy between two rows is linear in time: the
// true energy of any window is exact to the microjoule.
type SimTruthEnergy struct {
	GPU         int32 `parquet:"gpu,delta"`
	TimestampNs int64 `parquet:"timestamp_ns,delta"`
	EnergyUj    int64 `parquet:"energy_uj,delta"`
}

// HostEnergyRead is one read of one RAPL domain's cumulative energy
// counter (powercap's energy_uj), in microjoules, as read: the counter
// wraps to 0 after the domain's max_energy_range_uj (meta.json's
// host_energy.domains), and rows are never corrected; the analysis
// unwraps them. Zone is the powercap zone ("intel-rapl:0:2"); Name the
// domain's label, its powercap name qualified by its parent's for a
// subzone ("package-0", "package-0/dram"), unique within a run. Every
// readable domain is read at the same TimestampNs (the recorder's clock,
// before the first file is opened).
type HostEnergyRead struct {
	TimestampNs int64  `parquet:"timestamp_ns,delta"`
	Zone        string `parquet:"zone,dict"`
	Name        string `parquet:"name,dict"`
	EnergyUj    int64  `parquet:"energy_uj,delta"`
}
