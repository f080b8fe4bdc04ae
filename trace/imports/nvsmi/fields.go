package nvsmi

import (
	"strings"

	"github.com/llem/llem/trace"
)

// target is where a column's values go.
type target int

const (
	tNone target = iota
	tTimestamp
	tIndex
	tUUID
	tBusID
	// GPU description (meta.json gpus[]): the first value of each GPU.
	tName
	tSerial
	tDriver
	tPersistence
	tPowerLimit
	tDefaultPowerLimit
	tMaxSMClock
	tMaxMemClock
	tComputeMode
	// device_state columns, one value per row.
	tAvgPower
	tInstantPower
	tTemperature
	tSMClock
	tMemClock
	tPState
	tGPUUtil
	tMemUtil
	tMemUsed
	tReasons
)

// isState reports whether t is a device_state column.
func (t target) isState() bool { return t >= tAvgPower }

// quantity is what a numeric column measures, which decides the units its
// header may give.
type quantity int

const (
	qNone quantity = iota
	qPower
	qClock
	qMemory
	qPercent
	qTemperature
)

// field is one nvidia-smi --query-gpu field llem understands.
type field struct {
	names  []string // the name nvidia-smi prints in the header, then the other query names
	target target
	q      quantity
	column string // the llem column or meta.json field it is stored as
	what   string // what it is, for meta.json's source.unknown when absent
}

// fields lists every column llem imports. nvidia-smi prints a field's
// canonical name in the header whatever alias was queried (clocks.sm
// prints "clocks.current.sm [MHz]"); the aliases are accepted too.
var fields = []field{
	{names: []string{"timestamp"}, target: tTimestamp, column: trace.ColTimestampNs},
	{names: []string{"index"}, target: tIndex, column: trace.ColGPU},
	{names: []string{"uuid", "gpu_uuid"}, target: tUUID, column: "gpus[].uuid", what: "GPU UUID (uuid)"},
	{names: []string{"pci.bus_id", "gpu_bus_id"}, target: tBusID, column: "gpus[].pci_bus_id"},
	{names: []string{"name", "gpu_name"}, target: tName, column: "gpus[].name", what: "GPU name (name)"},
	{names: []string{"serial", "gpu_serial"}, target: tSerial, column: "gpus[].serial"},
	{names: []string{"driver_version"}, target: tDriver, column: "gpus[].driver_version", what: "driver version (driver_version)"},
	{names: []string{"persistence_mode"}, target: tPersistence, column: "gpus[].persistence_mode", what: "persistence mode (persistence_mode)"},
	{names: []string{"power.limit"}, target: tPowerLimit, q: qPower, column: "gpus[].power_limit_mw", what: "power limit (power.limit)"},
	{names: []string{"power.default_limit"}, target: tDefaultPowerLimit, q: qPower, column: "gpus[].default_power_limit_mw"},
	{names: []string{"clocks.max.sm", "clocks.max.streaming_multiprocessor"}, target: tMaxSMClock, q: qClock, column: "gpus[].max_sm_clock_mhz"},
	{names: []string{"clocks.max.memory", "clocks.max.mem"}, target: tMaxMemClock, q: qClock, column: "gpus[].max_mem_clock_mhz"},
	{names: []string{"compute_mode"}, target: tComputeMode, column: "gpus[].compute_mode"},

	{names: []string{"power.draw", "power.draw.average"}, target: tAvgPower, q: qPower, column: trace.ColAveragePowerMw,
		what: "average power (power.draw or power.draw.average)"},
	{names: []string{"power.draw.instant"}, target: tInstantPower, q: qPower, column: trace.ColInstantPowerMw,
		what: "instant power (power.draw.instant)"},
	{names: []string{"temperature.gpu"}, target: tTemperature, q: qTemperature, column: trace.ColTemperatureC,
		what: "GPU temperature (temperature.gpu)"},
	{names: []string{"clocks.current.sm", "clocks.sm"}, target: tSMClock, q: qClock, column: trace.ColSMClockMHz,
		what: "SM clock (clocks.sm)"},
	{names: []string{"clocks.current.memory", "clocks.mem", "clocks.current.mem"}, target: tMemClock, q: qClock, column: trace.ColMemClockMHz,
		what: "memory clock (clocks.mem)"},
	{names: []string{"pstate"}, target: tPState, column: trace.ColPState, what: "P-state (pstate)"},
	{names: []string{"utilization.gpu"}, target: tGPUUtil, q: qPercent, column: trace.ColGPUUtilPct,
		what: "GPU utilisation (utilization.gpu)"},
	{names: []string{"utilization.memory"}, target: tMemUtil, q: qPercent, column: trace.ColMemUtilPct,
		what: "memory utilisation (utilization.memory)"},
	{names: []string{"memory.used"}, target: tMemUsed, q: qMemory, column: trace.ColMemoryUsedBytes,
		what: "memory used (memory.used)"},
	{names: []string{"clocks_event_reasons.active", "clocks_throttle_reasons.active"}, target: tReasons, column: trace.ColClockEventReasons,
		what: "clock event reasons (clocks_event_reasons.active)"},
}

var byName = func() map[string]*field {
	m := map[string]*field{}
	for i := range fields {
		for _, n := range fields[i].names {
			m[n] = &fields[i]
		}
	}
	return m
}()

// unitScale is the factor from a header's unit to llem's unit for a
// quantity (W to mW, MiB to bytes...). ok is false for a unit llem does not
// know; an empty unit means the one nvidia-smi prints.
func unitScale(q quantity, unit string) (scale float64, ok bool) {
	switch q {
	case qPower:
		switch unit {
		case "", "W":
			return 1000, true
		case "mW":
			return 1, true
		case "kW":
			return 1e6, true
		}
	case qClock:
		switch unit {
		case "", "MHz":
			return 1, true
		case "GHz":
			return 1000, true
		case "kHz":
			return 1e-3, true
		}
	case qMemory:
		switch unit {
		case "", "MiB":
			return 1 << 20, true
		case "KiB":
			return 1 << 10, true
		case "GiB":
			return 1 << 30, true
		case "B":
			return 1, true
		}
	case qPercent:
		return 1, unit == "" || unit == "%"
	case qTemperature:
		return 1, unit == "" || unit == "C"
	default:
		return 1, unit == ""
	}
	return 0, false
}

// splitHeader splits a header cell such as "power.draw [W]" into the
// field's name, lower case, and its unit.
func splitHeader(cell string) (name, unit string) {
	cell = strings.TrimSpace(cell)
	if strings.HasSuffix(cell, "]") {
		if i := strings.LastIndexByte(cell, '['); i > 0 {
			return strings.ToLower(strings.TrimSpace(cell[:i])), strings.TrimSpace(cell[i+1 : len(cell)-1])
		}
	}
	return strings.ToLower(cell), ""
}
