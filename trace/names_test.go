package trace

import (
	"reflect"
	"strings"
	"testing"
)

// columnsOf lists the Parquet column names of a row type from its tags.
func columnsOf(row any) map[string]bool {
	cols := map[string]bool{}
	t := reflect.TypeOf(row)
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		cols[name] = true
	}
	return cols
}

// Every column-name constant names a column of its table, and every
// column of every table has a constant: a renamed tag fails here rather
// than in a reader that finds the column null.
func TestColumnNamesMatchSchema(t *testing.T) {
	tables := map[string]map[string]bool{
		TableDriverPower: columnsOf(DriverPowerSample{}),
		TableEnergy:      columnsOf(EnergyRead{}),
		TableState:       columnsOf(DeviceState{}),
		TableEvents:      columnsOf(Event{}),
		TableBadEvents:   columnsOf(BadEvent{}),
		TableSimTruth:    columnsOf(SimTruthEnergy{}),
		TableHostEnergy:  columnsOf(HostEnergyRead{}),
	}
	named := map[string][]string{
		TableDriverPower: {ColGPU, ColTimestampNs, ColDriverPowerMw},
		TableEnergy:      {ColGPU, ColTimestampNs, ColEnergyMj, ColReadDurationNs},
		TableState: {ColGPU, ColTimestampNs, ColInstantPowerMw, ColAveragePowerMw, ColTemperatureC, ColSMClockMHz,
			ColMemClockMHz, ColPState, ColGPUUtilPct, ColMemUtilPct, ColClockEventReasons, ColMemoryUsedBytes},
		TableEvents: {ColTimestampNs, ColGPU, ColKind, ColName, ColRequestID, ColClientTimestampNs, ColCount,
			ColInputTokens, ColOutputTokens, ColCycle, ColSource, ColAttrs, ColTask},
		TableBadEvents:  {ColTimestampNs, ColReason, ColRaw},
		TableSimTruth:   {ColGPU, ColTimestampNs, ColEnergyUj},
		TableHostEnergy: {ColTimestampNs, ColZone, ColName, ColEnergyUj},
	}
	// format 2's driver_power layout, under a key of its own
	tables["driver_power v2"] = columnsOf(driverPowerRow{})
	named["driver_power v2"] = []string{ColGPU, ColTimestampUs, ColDriverPowerMw}
	for table, cols := range tables {
		seen := map[string]bool{}
		for _, c := range named[table] {
			if !cols[c] {
				t.Errorf("%s: constant %q is not a column (columns: %v)", table, c, cols)
			}
			seen[c] = true
		}
		for c := range cols {
			if !seen[c] {
				t.Errorf("%s: column %q has no constant in names.go", table, c)
			}
		}
	}
}
