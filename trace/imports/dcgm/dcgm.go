// Package dcgm imports the text output of NVIDIA DCGM's dcgmi dmon into
// llem runs (llem import dcgm).
//
// dcgmi dmon -e FIELD_IDS -d MS prints a header line ("#Entity" and each
// field's short name), a units line ("ID", W, mJ, C...), then, every -d
// milliseconds, one line per entity ("GPU 0" and the values, "N/A" where
// there is none), repeating the two header lines every 14 samples
// (NVIDIA/DCGM dcgmi/DeviceMonitor.cpp; the fields' short names, units and
// widths are in dcgmlib/src/dcgm_fields.cpp). The fields llem reads are
// listed in fields.go; other columns are listed in meta.json's
// source.unknown.
//
// POWER (field 155, DCGM_FI_DEV_POWER_USAGE) is DCGM's read of
// nvmlDeviceGetPowerUsage, the same call as nvidia-smi's power.draw: on
// Ampere and newer GPUs the driver's 1 s moving average. It is therefore
// stored as average_power_mw, never as instantaneous power; POWINST (field
// 157, NVML_FI_DEV_POWER_INSTANT) is stored as instant_power_mw. TOTEC
// (field 156) is the GPU's energy counter, mJ since the driver was loaded:
// its values become rows of the energy table.
//
// dmon prints no time. A sample's time is Options.Start plus its index
// times Options.Interval (the -d given to dmon), unless every line begins
// with a timestamp (dmon's output piped through ts, for example), which is
// then read instead. Without --start, the file's modification time is
// taken as the time of the last sample, an assumption meta.json states.
package dcgm

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
)

// Format is the importer's name on the command line and in meta.json
// (device "import:dcgm").
const Format = trace.FormatDCGM

// ErrNoInterval is returned for a log without timestamps when no
// sampling interval was given.
var ErrNoInterval = errors.New("no sampling interval")

// Options say when the samples of a log without timestamps were taken.
type Options struct {
	// Interval is dmon's -d: the time between samples. Required unless
	// the lines have timestamps.
	Interval time.Duration
	// Start is the time of the first sample; when zero, ModTime is taken
	// as the time of the last one.
	Start time.Time
	// ModTime is the file's modification time; ImportFiles sets it.
	ModTime time.Time
}

// Result counts what an import read.
type Result struct {
	Rows       int // device_state rows
	EnergyRows int // energy rows
	DataLines  int // data lines (neither headers nor blank)
	Skipped    int // data lines skipped
	Reasons    []LineError
	Samples    int // dmon's samples
	Others     int // rows of other entities, not imported
	// StartFrom says where the times come from: StartFromTimestamps,
	// StartFromOption or StartFromModTime.
	StartFrom string
}

// Where an import's sample times come from (Result.StartFrom).
const (
	StartFromTimestamps = "timestamps"        // the lines' own
	StartFromOption     = "start"             // Options.Start + k x Options.Interval
	StartFromModTime    = "modification time" // assumed: the file's modification time is the last sample's
)

// ImportFiles parses the dmon output at path and adds its rows, GPUs,
// notes and warnings to w. An error wraps ErrNoInterval when the log has
// no timestamps and o.Interval is not set.
func ImportFiles(w *imports.Writer, path string, o Options) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	lg, err := Parse(f, path)
	if err != nil {
		return Result{}, err
	}
	if o.Start.IsZero() && o.ModTime.IsZero() {
		st, err := f.Stat()
		if err != nil {
			return Result{}, err
		}
		o.ModTime = st.ModTime()
	}
	return Import(w, lg, o)
}

// Import adds a parsed log to w.
func Import(w *imports.Writer, lg *Log, o Options) (Result, error) {
	res := Result{DataLines: lg.DataLines, Skipped: lg.Skipped, Reasons: lg.Reasons, Samples: lg.Samples}
	for _, n := range lg.Others {
		res.Others += n
	}
	var start int64
	switch {
	case lg.Timestamped:
		res.StartFrom = StartFromTimestamps
	case o.Interval <= 0:
		return res, fmt.Errorf("%w: %s has no timestamps: give the sample interval, the -d of dcgmi dmon (%d samples; dmon's default -d is 1000 ms)",
			ErrNoInterval, lg.File, lg.Samples)
	case !o.Start.IsZero():
		res.StartFrom = StartFromOption
		start = o.Start.UnixNano()
	default:
		res.StartFrom = StartFromModTime
		start = o.ModTime.UnixNano() - int64(lg.Samples-1)*int64(o.Interval)
	}

	var states []trace.DeviceState
	var energy []trace.EnergyRead
	for _, r := range lg.Rows {
		ts := r.TimeNs
		if !lg.Timestamped {
			ts = start + int64(r.Sample)*int64(o.Interval)
		}
		if r.HasState {
			st := r.State
			st.GPU, st.TimestampNs = int32(r.GPU), ts
			states = append(states, st)
		}
		if r.EnergyMj != nil {
			energy = append(energy, trace.EnergyRead{GPU: int32(r.GPU), TimestampNs: ts, EnergyMj: *r.EnergyMj})
		}
	}
	w.State(states...)
	w.Energy(energy...)
	res.Rows, res.EnergyRows = len(states), len(energy)

	// The GPUs, and their absent values.
	stored := map[string]string{}
	present := map[target]bool{}
	var columns []string
	for _, c := range lg.Columns {
		if c.f == nil {
			w.Unknown(fmt.Sprintf("column %q: not a field llem imports", c.Name))
			continue
		}
		present[c.f.target] = true
		stored[c.Name] = c.Stored
		columns = append(columns, fmt.Sprintf("%s (field %d, %s) as %s", c.Name, c.f.id, c.f.symbol, c.Stored))
	}
	gpus := slices.Clone(lg.GPUs)
	slices.SortFunc(gpus, func(a, b *GPU) int { return a.Index - b.Index })
	var infos []trace.GPUInfo
	absentTotal := map[string]map[string]int{}
	for _, g := range gpus {
		info := trace.GPUInfo{Index: g.Index, Name: g.Name, UUID: g.UUID}
		if info.Name == "" {
			info.Name = "unknown GPU"
		}
		for _, col := range slices.Sorted(maps.Keys(g.Absent)) {
			f := byShort[col]
			if g.Valid[col] == 0 && f != nil && f.target.isState() && onlyMarker(g.Absent[col], "N/A", "(empty)") {
				info.Unsupported = append(info.Unsupported, stored[col])
			}
			if absentTotal[col] == nil {
				absentTotal[col] = map[string]int{}
			}
			for k, n := range g.Absent[col] {
				absentTotal[col][k] += n
			}
		}
		infos = append(infos, info)
	}
	w.SetGPUs(infos)
	for _, col := range slices.Sorted(maps.Keys(absentTotal)) {
		var parts []string
		total, valid := 0, 0
		for _, k := range slices.Sorted(maps.Keys(absentTotal[col])) {
			parts = append(parts, fmt.Sprintf("%s %d", k, absentTotal[col][k]))
			total += absentTotal[col][k]
		}
		for _, g := range gpus {
			valid += g.Valid[col]
		}
		w.Warn(trace.Warning{Code: "import_absent_values", Message: fmt.Sprintf(
			"%s: %d of %d values absent (%s), stored as null in %s", col, total, total+valid, strings.Join(parts, ", "), stored[col])})
	}
	imports.SkippedLines(w, res.Skipped, res.DataLines, res.Reasons)
	if len(lg.NewHeaders) > 0 {
		consecutive := ""
		if !lg.Timestamped {
			consecutive = ", and without timestamps their samples are taken as consecutive"
		}
		w.Warn(trace.Warning{Code: "import_new_header", Message: fmt.Sprintf(
			"%s: the header changes on line %d: the output of several dmon runs? Each part is read with its own header%s",
			lg.File, lg.NewHeaders[0], consecutive)})
	}
	if res.Others > 0 {
		w.Note("other_entities", fmt.Sprintf("%d row(s) of entities other than GPUs (%s) were read and not imported", res.Others, others(lg.Others)))
	}
	if !present[tAvgPower] && !present[tInstantPower] && !present[tEnergy] {
		w.Warn(trace.Warning{Code: "import_no_power", Message: "the log has no power or energy column (POWER 155, POWINST 157, TOTEC 156): llem can compute no energy from it"})
	}

	// Time.
	switch res.StartFrom {
	case "timestamps":
		if lg.Zoned {
			w.Note("timestamps", "each line's own timestamp, with its UTC offset")
		} else {
			w.Note("timestamps", "each line's own timestamp, with no zone: read as UTC, so durations are right and clock times are off by the host's UTC offset")
			w.Unknown("time zone")
		}
		if o.Interval > 0 || !o.Start.IsZero() {
			w.Note("ignored", "the given interval and start: the lines have their own timestamps")
		}
	default:
		w.Unknown("sample times (dcgmi dmon prints none: computed from the given interval and the start)")
		w.Note("interval", fmt.Sprintf("%s (given): sample k is at start + k x interval; dmon sleeps -d after each sample, so its true period is a little longer and durations come out slightly short", o.Interval))
		if res.StartFrom == StartFromOption {
			w.Note("start", o.Start.UTC().Format(time.RFC3339Nano)+" (given)")
		} else {
			msg := fmt.Sprintf("assumed: the file's modification time %s was taken as the time of the last sample, so the first is at %s; give the start time for the true time (and for a reproducible import: a copy of the file has another modification time)",
				o.ModTime.UTC().Format(time.RFC3339Nano), time.Unix(0, start).UTC().Format(time.RFC3339Nano))
			w.Note("start", msg)
			w.Warn(trace.Warning{Code: "import_assumed_start", Message: "the start time is assumed from the file's modification time (taken as the last sample's time): give the start time"})
		}
	}

	// What the source could not tell.
	for _, u := range []string{"driver power samples", "events", "command", "host"} {
		w.Unknown(u)
	}
	for _, f := range fields {
		if f.what != "" && !present[f.target] {
			w.Unknown(f.what)
		}
	}
	if present[tEnergy] {
		w.Unknown("energy read duration (dmon prints the counter's value only)")
	}
	w.Note("columns", strings.Join(columns, "; "))
	if present[tAvgPower] {
		w.Note("POWER", "field 155 (DCGM_FI_DEV_POWER_USAGE) is nvmlDeviceGetPowerUsage, as nvidia-smi's power.draw: on Ampere and newer GPUs the driver's 1 s moving average, never an instantaneous reading, hence average_power_mw")
	}
	w.Note("values", "DCGM's latest cached value of each field when dmon read it, not the time the driver updated it")
	return res, nil
}

func onlyMarker(byMarker map[string]int, markers ...string) bool {
	for k := range byMarker {
		if !slices.Contains(markers, k) {
			return false
		}
	}
	return true
}

// Describe says in lines where the import's times came from and what it
// read beyond the power samples.
func (r Result) Describe(o Options) []string {
	var lines []string
	switch r.StartFrom {
	case StartFromTimestamps:
		lines = append(lines, fmt.Sprintf("times: the lines' own timestamps (%d samples)", r.Samples))
	case StartFromOption:
		lines = append(lines, fmt.Sprintf("times: the given start + k x %s for sample k (%d samples)", o.Interval, r.Samples))
	default:
		lines = append(lines, fmt.Sprintf("times: assumed: the file's modification time is the last of %d samples, %s apart; give the start time", r.Samples, o.Interval))
	}
	lines = append(lines, fmt.Sprintf("energy counter: %d reads (TOTEC)", r.EnergyRows))
	if r.Others > 0 {
		lines = append(lines, fmt.Sprintf("not imported: %d row(s) of entities other than GPUs (GPU-I, Switch, links)", r.Others))
	}
	return lines
}
