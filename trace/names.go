package trace

// Column names of the tables, as the struct tags of the row types in
// schema.go spell them. Code that reads or describes columns by name
// (analyze's column scans, the NVML backend's list of unsupported fields,
// the importers) uses these, so a column is named in one place; a test
// checks them against the tags.
const (
	ColGPU         = "gpu"
	ColTimestampNs = "timestamp_ns"
	// ColTimestampUs is driver_power's time column from format 2 on; a
	// column scan asking for timestamp_ns gets it in ns (scanSegmentColumns).
	ColTimestampUs = "timestamp_us"

	// driver_power
	ColDriverPowerMw = "driver_power_mw"

	// energy
	ColEnergyMj       = "energy_mj"
	ColReadDurationNs = "read_duration_ns"

	// device_state
	ColInstantPowerMw    = "instant_power_mw"
	ColAveragePowerMw    = "average_power_mw"
	ColTemperatureC      = "temperature_c"
	ColSMClockMHz        = "sm_clock_mhz"
	ColMemClockMHz       = "mem_clock_mhz"
	ColPState            = "pstate"
	ColGPUUtilPct        = "gpu_util_pct"
	ColMemUtilPct        = "mem_util_pct"
	ColClockEventReasons = "clock_event_reasons"
	ColMemoryUsedBytes   = "memory_used_bytes"

	// events
	ColKind              = "kind"
	ColName              = "name"
	ColRequestID         = "request_id"
	ColClientTimestampNs = "client_timestamp_ns"
	ColCount             = "count"
	ColInputTokens       = "input_tokens"
	ColOutputTokens      = "output_tokens"
	ColCycle             = "cycle"
	ColSource            = "source"
	ColAttrs             = "attrs"
	ColTask              = "task"

	// bad_events
	ColReason = "reason"
	ColRaw    = "raw"

	// sim_truth (and host_energy)
	ColEnergyUj = "energy_uj"

	// host_energy (with timestamp_ns, name and energy_uj)
	ColZone = "zone"
)

// Formats of imported runs (SourceInfo.Format).
const (
	FormatNvidiaSMI = "nvidia-smi"
	FormatPTDaemon  = "ptdaemon"
	FormatDCGM      = "dcgm"
)

// An MLPerf Power import (FormatPTDaemon with loadgen's logs) marks
// loadgen's power window as the phase PhaseMLPerfPower and keeps the
// summary's throughput in the source notes under NoteMLPerfTokensPerS.
const (
	PhaseMLPerfPower     = "mlperf_power"
	NoteMLPerfTokensPerS = "mlperf_tokens_per_s"
)

// WallMeter reports whether the run's power comes from a whole-system
// analyzer read at about 1 Hz (a SPEC PTDaemon log) rather than from the
// GPUs' own sensors: such a run's mean power follows MLPerf's rule, and
// NVML's accuracy says nothing of it.
func (m *Meta) WallMeter() bool {
	return m.Source != nil && m.Source.Format == FormatPTDaemon
}
