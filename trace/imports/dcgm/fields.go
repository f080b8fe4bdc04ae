package dcgm

import "github.com/llem/llem/trace"

// target is where a column's values go.
type target int

const (
	tNone target = iota
	// GPU description (meta.json gpus[]): the first value of each GPU.
	tName
	tUUID
	// The energy table.
	tEnergy
	// device_state columns, one value per row.
	tAvgPower
	tInstantPower
	tTemperature
	tSMClock
	tMemClock
	tGPUUtil
	tMemUtil
	tMemUsed
	tPState
	tReasons
)

// isState reports whether t is a device_state column.
func (t target) isState() bool { return t >= tAvgPower }

// field is one DCGM field that llem imports from dcgmi dmon's output.
//
// The short names are the column names dcgmi dmon prints (the shortName
// of the field's formatting in DCGM's dcgmlib/src/dcgm_fields.cpp,
// unchanged from DCGM 2.0 to 4.x; dcgmi dmon -l lists them), the ids
// those of dcgm_fields.h (DCGM_FI_DEV_*), which dcgmi dmon -e takes:
// https://docs.nvidia.com/datacenter/dcgm/latest/reference/field-identifiers.html
// and .../command-line-reference/dcgmi/dcgmi-dmon.html.
type field struct {
	short  string  // the column name dcgmi dmon prints
	id     int     // the DCGM field id
	symbol string  // DCGM's name for it
	target target  //
	scale  float64 // from dmon's unit to llem's
	column string  // the llem column or meta.json field it is stored as
	what   string  // what it is, for meta.json's source.unknown when absent
}

var fields = []field{
	{short: "DVNAM", id: 50, symbol: "DCGM_FI_DEV_NAME", target: tName, column: "gpus[].name", what: "GPU name (DVNAM, field 50)"},
	{short: "UUID#", id: 54, symbol: "DCGM_FI_DEV_UUID", target: tUUID, column: "gpus[].uuid"},
	// DCGM reads field 155 with nvmlDeviceGetPowerUsage (DcgmCacheManager.cpp):
	// the driver's 1 s moving average on Ampere and newer, as nvidia-smi's
	// power.draw. Field 157 is NVML_FI_DEV_POWER_INSTANT.
	{short: "POWER", id: 155, symbol: "DCGM_FI_DEV_POWER_USAGE", target: tAvgPower, scale: 1000, column: trace.ColAveragePowerMw,
		what: "average power (POWER, field 155)"},
	{short: "POWINST", id: 157, symbol: "DCGM_FI_DEV_POWER_USAGE_INSTANT", target: tInstantPower, scale: 1000, column: trace.ColInstantPowerMw,
		what: "instant power (POWINST, field 157)"},
	// Field 156: "Total energy consumption for the GPU in mJ since the
	// driver was last reloaded" (dcgm_fields.h): nvmlDeviceGetTotalEnergyConsumption.
	{short: "TOTEC", id: 156, symbol: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", target: tEnergy, scale: 1, column: trace.TableEnergy + "." + trace.ColEnergyMj,
		what: "energy counter (TOTEC, field 156)"},
	{short: "TMPTR", id: 150, symbol: "DCGM_FI_DEV_GPU_TEMP", target: tTemperature, scale: 1, column: trace.ColTemperatureC,
		what: "GPU temperature (TMPTR, field 150)"},
	{short: "SMCLK", id: 100, symbol: "DCGM_FI_DEV_SM_CLOCK", target: tSMClock, scale: 1, column: trace.ColSMClockMHz,
		what: "SM clock (SMCLK, field 100)"},
	{short: "MMCLK", id: 101, symbol: "DCGM_FI_DEV_MEM_CLOCK", target: tMemClock, scale: 1, column: trace.ColMemClockMHz,
		what: "memory clock (MMCLK, field 101)"},
	{short: "GPUTL", id: 203, symbol: "DCGM_FI_DEV_GPU_UTIL", target: tGPUUtil, scale: 1, column: trace.ColGPUUtilPct,
		what: "GPU utilisation (GPUTL, field 203)"},
	{short: "MCUTL", id: 204, symbol: "DCGM_FI_DEV_MEM_COPY_UTIL", target: tMemUtil, scale: 1, column: trace.ColMemUtilPct},
	// "Used Frame Buffer in MB" (dcgm_fields.h): MiB, as NVML's bytes / 2^20.
	{short: "FBUSD", id: 252, symbol: "DCGM_FI_DEV_FB_USED", target: tMemUsed, scale: 1 << 20, column: trace.ColMemoryUsedBytes},
	{short: "PSTAT", id: 190, symbol: "DCGM_FI_DEV_PSTATE", target: tPState, scale: 1, column: trace.ColPState},
	{short: "DVCCTR", id: 112, symbol: "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", target: tReasons, scale: 1, column: trace.ColClockEventReasons},
}

var byShort = func() map[string]*field {
	m := map[string]*field{}
	for i := range fields {
		m[fields[i].short] = &fields[i]
	}
	return m
}()
