// Package nvsmi imports the CSV logs that nvidia-smi writes with
// --query-gpu=... --format=csv into llem runs (llem import nvidia-smi).
//
// Any subset of the known fields, in any order, with or without units in
// the values (csv or csv,nounits), one GPU or several (told apart by an
// index, uuid or pci.bus_id column) is read. Each data line becomes one
// device_state row; GPU fields (name, uuid, driver_version, power.limit,
// persistence_mode...) go to meta.json's gpus[], first value per GPU.
// nvidia-smi's placeholders ([N/A], [Not Supported], [Unknown Error],
// [Insufficient Permissions]) leave the value absent (null) and are
// counted. A line that cannot be read is skipped and counted; columns llem
// does not know are listed in meta.json's source.unknown.
//
// power.draw (and power.draw.average) is stored as average_power_mw: on
// Ampere and newer GPUs it is the driver's 1 s moving average, never an
// instantaneous reading. power.draw.instant is stored as instant_power_mw.
// A log has no energy counter and no driver power samples.
//
// nvidia-smi prints local time with no offset: timestamps are read as if
// they were UTC, so durations are right but wall-clock times are off by
// the recording host's UTC offset.
package nvsmi

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
)

// Format is the importer's name on the command line and in meta.json
// (device "import:nvidia-smi").
const Format = trace.FormatNvidiaSMI

// Query is the nvidia-smi field list that llem import nvidia-smi --help
// recommends.
const Query = "timestamp,index,uuid,name,driver_version,persistence_mode,power.limit," +
	"power.draw,power.draw.instant,temperature.gpu,clocks.sm,clocks.mem,pstate," +
	"utilization.gpu,utilization.memory,memory.used,clocks_event_reasons.active"

// Result counts what an import read.
type Result struct {
	Files     int
	Rows      int // device_state rows
	DataLines int // data lines in the files
	Skipped   int // data lines skipped
	// Reasons describes the first skipped lines, at most MaxReasons per file.
	Reasons []LineError
}

// ImportFiles parses every file and adds its rows, GPUs, notes and
// warnings to w. The files are read in the order given; a file that
// cannot be read or holds no valid line is an error naming it.
func ImportFiles(w *imports.Writer, files []string) (Result, error) {
	var logs []*Log
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return Result{}, err
		}
		lg, err := Parse(f, path)
		f.Close()
		if err != nil {
			return Result{}, err
		}
		logs = append(logs, lg)
	}
	return Import(w, logs), nil
}

// gpuKey is a GPU's identity across logs.
type gpuKey struct{ log, gpu int }

// Import adds parsed logs to w. GPUs are matched across logs by index,
// else by UUID, else by PCI bus id; a GPU known only by UUID or bus id gets
// the lowest index no other GPU uses; a log with none of the three is GPU 0.
func Import(w *imports.Writer, logs []*Log) Result {
	res := Result{Files: len(logs)}
	index := map[gpuKey]int{}
	used := map[int]bool{}
	byUUID, byBus := map[string]int{}, map[string]int{}
	for li, lg := range logs {
		for gi, g := range lg.GPUs {
			if g.Index >= 0 {
				index[gpuKey{li, gi}] = g.Index
				used[g.Index] = true
				if g.UUID != "" {
					byUUID[g.UUID] = g.Index
				}
				if g.BusID != "" {
					byBus[g.BusID] = g.Index
				}
			}
		}
	}
	for li, lg := range logs {
		for gi, g := range lg.GPUs {
			if g.Index >= 0 {
				continue
			}
			i, ok := byUUID[g.UUID]
			if !ok || g.UUID == "" {
				i, ok = byBus[g.BusID]
				ok = ok && g.BusID != ""
			}
			if !ok {
				if g.UUID == "" && g.BusID == "" {
					i = 0
				} else {
					for i = 0; used[i]; i++ {
					}
				}
			}
			used[i] = true
			if g.UUID != "" {
				byUUID[g.UUID] = i
			}
			if g.BusID != "" {
				byBus[g.BusID] = i
			}
			index[gpuKey{li, gi}] = i
		}
	}

	// One description per GPU: the first value of each field over the logs.
	type merged struct {
		info   trace.GPUInfo
		absent map[string]map[string]int
		valid  map[string]int
		ts     []int64
	}
	gpus := map[int]*merged{}
	header := map[string]string{} // field name -> the first header that named it
	stored := map[string]string{} // field name -> where it went
	present := map[target]bool{}  // targets found in some log
	var columns, unknownCols []string
	for li, lg := range logs {
		res.DataLines += lg.DataLines
		res.Skipped += lg.Skipped
		res.Reasons = append(res.Reasons, lg.Reasons...)
		for _, c := range lg.Columns {
			if c.f == nil {
				u := fmt.Sprintf("column %q: %s", c.Header, c.Why)
				if !slices.Contains(unknownCols, u) {
					unknownCols = append(unknownCols, u)
				}
				continue
			}
			present[c.f.target] = true
			if _, ok := header[c.Name]; !ok {
				header[c.Name], stored[c.Name] = c.Header, c.Stored
				columns = append(columns, c.Header+" as "+c.Stored)
			}
		}
		for gi, g := range lg.GPUs {
			i := index[gpuKey{li, gi}]
			m := gpus[i]
			if m == nil {
				m = &merged{info: trace.GPUInfo{Index: i}, absent: map[string]map[string]int{}, valid: map[string]int{}}
				gpus[i] = m
			}
			if m.info.UUID == "" {
				m.info.UUID = g.UUID
			}
			if m.info.PCIBusID == "" {
				m.info.PCIBusID = g.BusID
			}
			mergeInfo(&m.info, g.Info)
			for f, byMarker := range g.Absent {
				if m.absent[f] == nil {
					m.absent[f] = map[string]int{}
				}
				for k, n := range byMarker {
					m.absent[f][k] += n
				}
			}
			for f, n := range g.Valid {
				m.valid[f] += n
			}
		}
		rows := lg.Rows
		for k := range rows {
			rows[k].GPU = int32(index[gpuKey{li, int(rows[k].GPU)}])
		}
		mendClock(w, lg, rows)
		lg.Rows, lg.Lines = nil, nil // the writer takes the rows
		for _, r := range rows {
			gpus[int(r.GPU)].ts = append(gpus[int(r.GPU)].ts, r.TimestampNs)
		}
		res.Rows += len(rows)
		w.TakeState(rows)
	}

	idx := slices.Sorted(maps.Keys(gpus))
	var infos []trace.GPUInfo
	absentTotal := map[string]map[string]int{} // field -> marker -> count, over GPUs
	absentGPUs := map[string][]int{}
	for _, i := range idx {
		m := gpus[i]
		if m.info.Name == "" {
			m.info.Name = "unknown GPU"
		}
		m.info.Processes = []trace.GPUProcess{}
		for _, f := range slices.Sorted(maps.Keys(m.absent)) {
			if m.valid[f] == 0 && onlyUnsupported(m.absent[f]) && isStateField(f) {
				m.info.Unsupported = append(m.info.Unsupported, stored[f])
			}
			for _, k := range slices.Sorted(maps.Keys(m.absent[f])) {
				n := m.absent[f][k]
				if !unsupportedMarker(k) {
					if m.info.Errors == nil {
						m.info.Errors = map[string]int64{}
					}
					m.info.Errors[f+" "+k] += int64(n)
				}
				if absentTotal[f] == nil {
					absentTotal[f] = map[string]int{}
				}
				absentTotal[f][k] += n
			}
			absentGPUs[f] = append(absentGPUs[f], i)
		}
		infos = append(infos, m.info)

		// Repeated timestamps: several GPUs mixed into one, or overlapping logs.
		slices.Sort(m.ts)
		rep := 0
		for k := 1; k < len(m.ts); k++ {
			if m.ts[k] == m.ts[k-1] {
				rep++
			}
		}
		if rep > 0 {
			gi := i
			why := "the logs overlap in time, or nvidia-smi printed a line twice"
			if !anyIdentity(logs) {
				why = "the log has no index, uuid or pci.bus_id column, so every line was read as GPU 0: it may mix several GPUs (log with --query-gpu=timestamp,index,...)"
			}
			w.Warn(trace.Warning{Code: "import_repeated_timestamps", GPU: &gi, Message: fmt.Sprintf(
				"GPU %d: %d of %d rows repeat an earlier row's timestamp: %s", i, rep, len(m.ts), why)})
		}
	}
	w.SetGPUs(infos)

	// Absent values, one warning per field.
	for _, f := range slices.Sorted(maps.Keys(absentTotal)) {
		var parts []string
		total := 0
		for _, k := range slices.Sorted(maps.Keys(absentTotal[f])) {
			parts = append(parts, fmt.Sprintf("%s %d", k, absentTotal[f][k]))
			total += absentTotal[f][k]
		}
		valid := 0
		for _, i := range idx {
			valid += gpus[i].valid[f]
		}
		wn := trace.Warning{Code: "import_absent_values", Message: fmt.Sprintf(
			"%s: %d of %d values absent (%s), stored as null in %s", header[f], total, total+valid, strings.Join(parts, ", "), stored[f])}
		if g := absentGPUs[f]; len(g) == 1 && len(idx) > 1 {
			wn.GPU = &g[0]
			wn.Message = fmt.Sprintf("GPU %d: %s", g[0], wn.Message)
		}
		w.Warn(wn)
	}
	imports.SkippedLines(w, res.Skipped, res.DataLines, res.Reasons)
	if !present[tAvgPower] && !present[tInstantPower] {
		w.Warn(trace.Warning{Code: "import_no_power", Message: "the log has no power column (power.draw, power.draw.instant): llem can compute no energy from it"})
	}

	// What the source could not tell.
	for _, u := range []string{"energy counter", "driver power samples", "events", "command", "host", "time zone"} {
		w.Unknown(u)
	}
	for _, f := range fields {
		if f.what != "" && !present[f.target] {
			w.Unknown(f.what)
		}
	}
	for _, u := range unknownCols {
		w.Unknown(u)
	}

	w.Note("columns", strings.Join(columns, "; "))
	w.Note("time_zone", "unknown: nvidia-smi prints local time with no offset; times were read as UTC, so durations are right and clock times are off by the recording host's UTC offset")
	w.Note("timestamps", "nvidia-smi's, printed to the millisecond: when nvidia-smi read the value, not when the driver updated it")
	if present[tAvgPower] {
		w.Note("power.draw", "stored as average_power_mw: on Ampere and newer GPUs power.draw (and power.draw.average) is the driver's 1 s moving average, never an instantaneous reading; on earlier GPUs (V100 and older) it is the sensor's latest reading")
	}
	return res
}

// mendClock undoes the steps back of each GPU's clock in a log, in line
// order, before the rows are sorted by time (imports.MendClock). rows are
// the log's rows, with llem's GPU indexes.
func mendClock(w *imports.Writer, lg *Log, rows []trace.DeviceState) {
	rowsOf := map[int32][]int{} // GPU -> its rows, in line order
	for k, r := range rows {
		rowsOf[r.GPU] = append(rowsOf[r.GPU], k)
	}
	for _, gpu := range slices.Sorted(maps.Keys(rowsOf)) {
		ks := rowsOf[gpu]
		ts, lines := make([]int64, len(ks)), make([]int, len(ks))
		for j, k := range ks {
			ts[j], lines[j] = rows[k].TimestampNs, lg.Lines[k]
		}
		steps := imports.MendClock(ts, lines)
		for j, k := range ks {
			rows[k].TimestampNs = ts[j]
		}
		w.WriteClockSteps(lg.File, int(gpu), steps)
	}
}

func anyIdentity(logs []*Log) bool {
	return slices.ContainsFunc(logs, func(l *Log) bool { return l.HasIdentity })
}

// unsupportedMarker reports whether a placeholder says the GPU has no such
// value, rather than that reading it failed.
func unsupportedMarker(m string) bool {
	switch m {
	case "[N/A]", "[Not Supported]":
		return true
	}
	return false
}

func onlyUnsupported(byMarker map[string]int) bool {
	for k := range byMarker {
		if !unsupportedMarker(k) {
			return false
		}
	}
	return true
}

func isStateField(name string) bool {
	f := byName[name]
	return f != nil && f.target.isState()
}
