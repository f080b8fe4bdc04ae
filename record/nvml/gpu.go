//go:build cgo

package nvml

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

// lostAfterUnknown is how many ERROR_UNKNOWN results in a row, with no
// successful call between them, mark a GPU lost. One can be a transient
// driver hiccup; a run of them is how a wedged GPU shows itself.
const lostAfterUnknown = 3

// procRoot is where process names are read from; tests point it elsewhere.
var procRoot = "/proc"

// GPU is one NVML device. It is safe for concurrent use: NVML itself is
// thread-safe, and the GPU's own bookkeeping is behind mu.
type GPU struct {
	b        *Backend
	index    int
	dev      nvml.Device
	readings []reading // what State reads, in order

	mu          sync.Mutex
	unsupported []string // columns found unsupported, in the order found
	errors      map[string]int64
	unknownRun  int   // ERROR_UNKNOWN results since the last success
	lostErr     error // set once the GPU is lost; every later call returns it
	streams     []*stateStream
}

var _ record.GPU = (*GPU)(nil)

// reading is one NVML call made by State, filling cols of the row. The
// call and the filling are apart so that the same filling serves the
// calls go-nvml makes (State) and those of the C state thread (stateStream).
type reading struct {
	call   string // name in Errors
	symbol string // C symbol the call needs
	cols   []string
	kind   int // its call in the C poll (kindInstant, ...)
	// read makes the call through go-nvml into raw.
	read func(d nvml.Device, raw *rawState) nvml.Return
	// fill sets the row's fields from raw after the call succeeded; it
	// may still fail (a field value whose own result is an error).
	fill func(raw *rawState, st *trace.DeviceState) nvml.Return
}

// rawState is what one state poll's calls returned, before it is a row.
type rawState struct {
	ret                     [kindCount]nvml.Return
	instant                 nvml.FieldValue
	averageMw, temperatureC uint32
	smMHz, memMHz           uint32
	pstate                  nvml.Pstates
	util                    nvml.Utilization
	reasons                 uint64
	memoryUsed              uint64
}

func newGPU(b *Backend, index int, dev nvml.Device) *GPU {
	g := &GPU{b: b, index: index, dev: dev, errors: make(map[string]int64)}
	g.readings = stateReadings(b)
	for _, r := range g.readings {
		// A symbol the driver's library lacks cannot be called at all.
		if !b.has(r.symbol) {
			g.check(r.call, nvml.ERROR_FUNCTION_NOT_FOUND, r.cols...)
		}
	}
	for _, r := range []struct{ call, symbol, col string }{
		{"GetTotalEnergyConsumption", "nvmlDeviceGetTotalEnergyConsumption", ColEnergy},
		{"GetSamples", "nvmlDeviceGetSamples", ColDriverPower},
	} {
		if !b.has(r.symbol) {
			g.check(r.call, nvml.ERROR_FUNCTION_NOT_FOUND, r.col)
		}
	}
	return g
}

// stateReadings lists State's calls, in the order of their kinds. All are
// cheap: the driver caches these values, and each call takes under a
// microsecond on an H100.
func stateReadings(b *Backend) []reading {
	// nvmlDeviceGetCurrentClocksEventReasons replaced the throttle-reasons
	// call in driver R535; older drivers only have the old name.
	reasons := reading{
		call:   "GetCurrentClocksEventReasons",
		symbol: "nvmlDeviceGetCurrentClocksEventReasons",
		cols:   []string{ColClockEventReasons},
		kind:   kindReasons,
		read: func(d nvml.Device, raw *rawState) (ret nvml.Return) {
			raw.reasons, ret = d.GetCurrentClocksEventReasons()
			return ret
		},
		fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
			st.ClockEventReasons = ptr(int64(raw.reasons))
			return nvml.SUCCESS
		},
	}
	if !b.has(reasons.symbol) && b.has("nvmlDeviceGetCurrentClocksThrottleReasons") {
		reasons.call = "GetCurrentClocksThrottleReasons"
		reasons.symbol = "nvmlDeviceGetCurrentClocksThrottleReasons"
		reasons.read = func(d nvml.Device, raw *rawState) (ret nvml.Return) {
			raw.reasons, ret = d.GetCurrentClocksThrottleReasons()
			return ret
		}
	}

	clock := func(col string, ct nvml.ClockType, name string, kind int, v func(*rawState) *uint32, dst func(*trace.DeviceState) **int32) reading {
		return reading{
			call:   "GetClockInfo(" + name + ")",
			symbol: "nvmlDeviceGetClockInfo",
			cols:   []string{col},
			kind:   kind,
			read: func(d nvml.Device, raw *rawState) (ret nvml.Return) {
				*v(raw), ret = d.GetClockInfo(ct)
				return ret
			},
			fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
				*dst(st) = ptr(int32(*v(raw)))
				return nvml.SUCCESS
			},
		}
	}

	return []reading{
		{
			call:   "GetFieldValues(POWER_INSTANT)",
			symbol: "nvmlDeviceGetFieldValues",
			cols:   []string{ColInstantPower},
			kind:   kindInstant,
			read: func(d nvml.Device, raw *rawState) nvml.Return {
				fv := []nvml.FieldValue{{FieldId: nvml.FI_DEV_POWER_INSTANT, ScopeId: 0}}
				ret := d.GetFieldValues(fv)
				raw.instant = fv[0]
				return ret
			},
			fill: fillInstantPower,
		},
		{
			// A 1 s moving average on Ampere and newer, not instant power.
			call:   "GetPowerUsage",
			symbol: "nvmlDeviceGetPowerUsage",
			cols:   []string{ColAveragePower},
			kind:   kindAverage,
			read: func(d nvml.Device, raw *rawState) (ret nvml.Return) {
				raw.averageMw, ret = d.GetPowerUsage()
				return ret
			},
			fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
				st.AveragePowerMw = ptr(int64(raw.averageMw))
				return nvml.SUCCESS
			},
		},
		{
			// GetTemperature is deprecated for GetTemperatureV, which only
			// recent drivers have; the old call works on all of them.
			call:   "GetTemperature",
			symbol: "nvmlDeviceGetTemperature",
			cols:   []string{ColTemperature},
			kind:   kindTemperature,
			read: func(d nvml.Device, raw *rawState) (ret nvml.Return) {
				raw.temperatureC, ret = d.GetTemperature(nvml.TEMPERATURE_GPU)
				return ret
			},
			fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
				st.TemperatureC = ptr(int32(raw.temperatureC))
				return nvml.SUCCESS
			},
		},
		clock(ColSMClock, nvml.CLOCK_SM, "SM", kindSMClock,
			func(raw *rawState) *uint32 { return &raw.smMHz }, func(st *trace.DeviceState) **int32 { return &st.SMClockMHz }),
		clock(ColMemClock, nvml.CLOCK_MEM, "MEM", kindMemClock,
			func(raw *rawState) *uint32 { return &raw.memMHz }, func(st *trace.DeviceState) **int32 { return &st.MemClockMHz }),
		{
			call:   "GetPerformanceState",
			symbol: "nvmlDeviceGetPerformanceState",
			cols:   []string{ColPState},
			kind:   kindPState,
			read: func(d nvml.Device, raw *rawState) (ret nvml.Return) {
				raw.pstate, ret = d.GetPerformanceState()
				return ret
			},
			fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
				st.PState = pstate(raw.pstate)
				return nvml.SUCCESS
			},
		},
		{
			call:   "GetUtilizationRates",
			symbol: "nvmlDeviceGetUtilizationRates",
			cols:   []string{ColGPUUtil, ColMemUtil},
			kind:   kindUtilization,
			read: func(d nvml.Device, raw *rawState) (ret nvml.Return) {
				raw.util, ret = d.GetUtilizationRates()
				return ret
			},
			fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
				st.GPUUtilPct = ptr(int32(raw.util.Gpu))
				st.MemUtilPct = ptr(int32(raw.util.Memory))
				return nvml.SUCCESS
			},
		},
		reasons,
		{
			call:   "GetMemoryInfo",
			symbol: "nvmlDeviceGetMemoryInfo",
			cols:   []string{ColMemoryUsed},
			kind:   kindMemory,
			read: func(d nvml.Device, raw *rawState) nvml.Return {
				v, ret := d.GetMemoryInfo()
				raw.memoryUsed = v.Used
				return ret
			},
			fill: func(raw *rawState, st *trace.DeviceState) nvml.Return {
				st.MemoryUsedBytes = ptr(int64(raw.memoryUsed))
				return nvml.SUCCESS
			},
		},
	}
}

// fillInstantPower reads FI_DEV_POWER_INSTANT, the power the board reports
// about every 100 ms, unlike GetPowerUsage's 1 s average. ScopeId 0 selects
// the whole GPU (other scopes are the module and memory rails). The call
// can succeed while the field itself fails, so both results are checked.
func fillInstantPower(raw *rawState, st *trace.DeviceState) nvml.Return {
	fv := raw.instant
	if ret := nvml.Return(fv.NvmlReturn); ret != nvml.SUCCESS {
		return ret
	}
	v, ok := valueInt64(nvml.ValueType(fv.ValueType), fv.Value)
	if !ok {
		// A value type this code cannot decode is as good as no value.
		return nvml.ERROR_NOT_SUPPORTED
	}
	st.InstantPowerMw = ptr(v)
	return nvml.SUCCESS
}

// Index is the driver's index of the GPU.
func (g *GPU) Index() int { return g.index }

// EnergyMj reads the energy counter: millijoules since the driver loaded.
// The call takes about 3 ms on an H100. Resets are left to the caller.
func (g *GPU) EnergyMj() (uint64, error) {
	if err := g.skip(ColEnergy); err != nil {
		return 0, err
	}
	v, ret := g.dev.GetTotalEnergyConsumption()
	if err := g.check("GetTotalEnergyConsumption", ret, ColEnergy); err != nil {
		return 0, err
	}
	return v, nil
}

// DriverPowerSamples returns the driver's power samples (a resampled series
// on a ~20 ms grid, about 2.4 s deep) newer than sinceUs, oldest first.
func (g *GPU) DriverPowerSamples(sinceUs uint64) ([]record.PowerSample, error) {
	if err := g.skip(ColDriverPower); err != nil {
		return nil, err
	}
	vt, samples, ret := g.dev.GetSamples(nvml.TOTAL_POWER_SAMPLES, sinceUs)
	if ret == nvml.ERROR_NOT_FOUND {
		// NVML's way of saying there is no sample newer than sinceUs.
		ret = nvml.SUCCESS
	}
	if err := g.check("GetSamples", ret, ColDriverPower); err != nil {
		return nil, err
	}
	out := make([]record.PowerSample, 0, len(samples))
	for _, s := range samples {
		// The driver filters by sinceUs itself; this also drops the
		// zero-timestamp slots of a buffer that is not yet full.
		if s.TimeStamp <= sinceUs {
			continue
		}
		v, ok := valueInt64(vt, s.SampleValue)
		if !ok || v < 0 || v > math.MaxUint32 {
			continue
		}
		out = append(out, record.PowerSample{TimestampUs: s.TimeStamp, PowerMw: uint32(v)})
	}
	slices.SortFunc(out, func(a, b record.PowerSample) int {
		return cmp.Compare(a.TimestampUs, b.TimestampUs)
	})
	return out, nil
}

// State reads the driver-cached fields. A field the GPU does not support is
// nil and is not read again; a field whose read failed is nil and counted
// in Errors. State returns an error only when the GPU is lost (wrapping
// record.ErrGPULost) or when every read it tried failed.
func (g *GPU) State() (trace.DeviceState, error) {
	var raw rawState
	return g.applyRaw(&raw, g.dev)
}

// applyRaw makes the row of a poll's results, calling check for each as
// the poll goes. With d, it makes each call through go-nvml first (State);
// without, raw holds the results of a poll already made (the C thread),
// where a call not made has the result notCalled.
func (g *GPU) applyRaw(raw *rawState, d nvml.Device) (trace.DeviceState, error) {
	var st trace.DeviceState
	if err := g.lost(); err != nil {
		return st, err
	}
	var good int
	var firstErr error
	for _, r := range g.readings {
		if g.allUnsupported(r.cols) {
			continue
		}
		ret := raw.ret[r.kind]
		if d != nil {
			ret = r.read(d, raw)
		} else if ret == notCalled {
			continue // after a result that lost the GPU, or turned off
		}
		if ret == nvml.SUCCESS {
			ret = r.fill(raw, &st)
		}
		err := g.check(r.call, ret, r.cols...)
		switch {
		case err == nil:
			good++
		case errors.Is(err, record.ErrGPULost):
			return trace.DeviceState{}, err
		case errors.Is(err, record.ErrNotSupported):
			// Remembered by check: the column stays nil from now on.
		case firstErr == nil:
			firstErr = err
		}
	}
	if good == 0 && firstErr != nil {
		return st, firstErr
	}
	return st, nil
}

// notCalled is the C thread's result for a call it did not make.
const notCalled = nvml.Return(-1)

// Info takes the GPU's environment snapshot. A getter that fails leaves its
// field empty; Info fails only if the GPU is lost, and then returns what it
// had read with an error wrapping record.ErrGPULost.
func (g *GPU) Info() (trace.GPUInfo, error) {
	info := trace.GPUInfo{Index: g.index, Processes: []trace.GPUProcess{}}
	d, lib := g.dev, g.b.lib
	lostErr := g.lost()
	// get makes one getter call unless the GPU is lost or the library
	// lacks the symbol; f fills info on success only.
	get := func(call, symbol string, f func() nvml.Return) {
		if lostErr != nil || !g.b.has(symbol) {
			return
		}
		if err := g.check(call, f()); errors.Is(err, record.ErrGPULost) {
			lostErr = err
		}
	}

	get("GetName", "nvmlDeviceGetName", func() (ret nvml.Return) {
		info.Name, ret = d.GetName()
		return ret
	})
	get("GetUUID", "nvmlDeviceGetUUID", func() (ret nvml.Return) {
		info.UUID, ret = d.GetUUID()
		return ret
	})
	get("GetSerial", "nvmlDeviceGetSerial", func() (ret nvml.Return) {
		info.Serial, ret = d.GetSerial()
		return ret
	})
	get("GetPciInfo", "nvmlDeviceGetPciInfo", func() nvml.Return {
		v, ret := d.GetPciInfo()
		if ret == nvml.SUCCESS {
			info.PCIBusID = cString(v.BusId[:])
		}
		return ret
	})
	get("SystemGetDriverVersion", "nvmlSystemGetDriverVersion", func() (ret nvml.Return) {
		info.DriverVersion, ret = lib.SystemGetDriverVersion()
		return ret
	})
	get("SystemGetNVMLVersion", "nvmlSystemGetNVMLVersion", func() (ret nvml.Return) {
		info.NVMLVersion, ret = lib.SystemGetNVMLVersion()
		return ret
	})
	get("SystemGetCudaDriverVersion", "nvmlSystemGetCudaDriverVersion", func() nvml.Return {
		v, ret := lib.SystemGetCudaDriverVersion()
		if ret == nvml.SUCCESS {
			info.CUDAVersion = cudaVersion(v)
		}
		return ret
	})
	get("GetPersistenceMode", "nvmlDeviceGetPersistenceMode", func() nvml.Return {
		v, ret := d.GetPersistenceMode()
		if ret == nvml.SUCCESS {
			info.PersistenceMode = ptr(v == nvml.FEATURE_ENABLED)
		}
		return ret
	})
	get("GetPowerManagementLimit", "nvmlDeviceGetPowerManagementLimit", func() nvml.Return {
		v, ret := d.GetPowerManagementLimit()
		if ret == nvml.SUCCESS {
			info.PowerLimitMw = ptr(int64(v))
		}
		return ret
	})
	get("GetPowerManagementDefaultLimit", "nvmlDeviceGetPowerManagementDefaultLimit", func() nvml.Return {
		v, ret := d.GetPowerManagementDefaultLimit()
		if ret == nvml.SUCCESS {
			info.DefaultPowerLimitMw = ptr(int64(v))
		}
		return ret
	})
	get("GetEccMode", "nvmlDeviceGetEccMode", func() nvml.Return {
		current, _, ret := d.GetEccMode()
		if ret == nvml.SUCCESS {
			info.ECCEnabled = ptr(current == nvml.FEATURE_ENABLED)
		}
		return ret
	})
	get("GetMigMode", "nvmlDeviceGetMigMode", func() nvml.Return {
		current, _, ret := d.GetMigMode()
		if ret == nvml.SUCCESS {
			info.MIGEnabled = ptr(current == nvml.DEVICE_MIG_ENABLE)
		}
		return ret
	})
	get("GetComputeMode", "nvmlDeviceGetComputeMode", func() nvml.Return {
		v, ret := d.GetComputeMode()
		if ret == nvml.SUCCESS {
			info.ComputeMode = computeMode(v)
		}
		return ret
	})
	get("GetMaxClockInfo(SM)", "nvmlDeviceGetMaxClockInfo", func() nvml.Return {
		v, ret := d.GetMaxClockInfo(nvml.CLOCK_SM)
		if ret == nvml.SUCCESS {
			info.MaxSMClockMHz = ptr(int32(v))
		}
		return ret
	})
	get("GetMaxClockInfo(MEM)", "nvmlDeviceGetMaxClockInfo", func() nvml.Return {
		v, ret := d.GetMaxClockInfo(nvml.CLOCK_MEM)
		if ret == nvml.SUCCESS {
			info.MaxMemClockMHz = ptr(int32(v))
		}
		return ret
	})
	get("GetPerformanceState", "nvmlDeviceGetPerformanceState", func() nvml.Return {
		v, ret := d.GetPerformanceState()
		if ret == nvml.SUCCESS {
			info.PStateAtStart = pstate(v)
		}
		return ret
	})
	get("GetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses", func() nvml.Return {
		procs, ret := d.GetComputeRunningProcesses()
		for _, p := range procs {
			gp := trace.GPUProcess{PID: p.Pid, Name: processName(p.Pid)}
			// NVML reports NVML_VALUE_NOT_AVAILABLE (all ones) when it
			// cannot see a process's memory, e.g. without permission.
			if p.UsedGpuMemory != math.MaxUint64 {
				gp.UsedMemoryBytes = p.UsedGpuMemory
			}
			info.Processes = append(info.Processes, gp)
		}
		return ret
	})

	info.Unsupported = g.Unsupported()
	info.Errors = g.Errors()
	return info, lostErr
}

// Errors returns how many calls failed, by call name (GetPowerUsage,
// GetClockInfo(SM), ...), since Open. Unsupported readings are not errors.
func (g *GPU) Errors() map[string]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errors) == 0 {
		return nil
	}
	out := make(map[string]int64, len(g.errors))
	for k, v := range g.errors {
		out[k] = v
	}
	return out
}

// Unsupported returns the table columns this GPU does not report, in the
// order they were found out; each is listed once and never read again.
func (g *GPU) Unsupported() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.unsupported)
}

// check turns a call's result into an error and does the bookkeeping:
// unsupported columns are remembered, failures counted by call, and the GPU
// marked lost on the errors that mean it is gone.
func (g *GPU) check(call string, ret nvml.Return, cols ...string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ret == nvml.SUCCESS {
		g.unknownRun = 0
		return nil
	}
	if ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.ERROR_FUNCTION_NOT_FOUND {
		for _, c := range cols {
			if !slices.Contains(g.unsupported, c) {
				g.unsupported = append(g.unsupported, c)
			}
		}
		return fmt.Errorf("nvml: GPU %d: %s: %w", g.index, call, record.ErrNotSupported)
	}
	g.errors[call]++
	lost := false
	switch ret {
	case nvml.ERROR_GPU_IS_LOST, nvml.ERROR_TIMEOUT, nvml.ERROR_RESET_REQUIRED: // also the state thread's (startStream)
		// The GPU fell off the bus, stopped answering, or needs a reset
		// before it answers again: nothing more will come from it this run.
		lost = true
	case nvml.ERROR_UNKNOWN:
		g.unknownRun++
		lost = g.unknownRun >= lostAfterUnknown
	}
	if lost {
		if g.lostErr == nil {
			g.lostErr = fmt.Errorf("nvml: GPU %d: %s: %v: %w", g.index, call, ret, record.ErrGPULost)
		}
		return g.lostErr
	}
	return fmt.Errorf("nvml: GPU %d: %s: %v", g.index, call, ret)
}

// lost returns the error that marked the GPU lost, or nil.
func (g *GPU) lost() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lostErr
}

// skip returns why col must not be read: the GPU is lost, or does not
// support it. Nil means read it.
func (g *GPU) skip(col string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lostErr != nil {
		return g.lostErr
	}
	if slices.Contains(g.unsupported, col) {
		return fmt.Errorf("nvml: GPU %d: %s: %w", g.index, col, record.ErrNotSupported)
	}
	return nil
}

func (g *GPU) allUnsupported(cols []string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cols {
		if !slices.Contains(g.unsupported, c) {
			return false
		}
	}
	return true
}

// valueInt64 decodes an NVML value union (nvmlValue_t) of type t.
func valueInt64(t nvml.ValueType, v [8]byte) (int64, bool) {
	ne := binary.NativeEndian
	switch t {
	case nvml.VALUE_TYPE_UNSIGNED_INT:
		return int64(ne.Uint32(v[:4])), true
	case nvml.VALUE_TYPE_UNSIGNED_LONG, nvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		// C unsigned long is 64 bits on the 64-bit Linux NVML runs on.
		u := ne.Uint64(v[:])
		return int64(u), u <= math.MaxInt64
	case nvml.VALUE_TYPE_SIGNED_LONG_LONG:
		return int64(ne.Uint64(v[:])), true
	case nvml.VALUE_TYPE_SIGNED_INT:
		return int64(int32(ne.Uint32(v[:4]))), true
	case nvml.VALUE_TYPE_UNSIGNED_SHORT:
		return int64(ne.Uint16(v[:2])), true
	case nvml.VALUE_TYPE_DOUBLE:
		f := math.Float64frombits(ne.Uint64(v[:]))
		if math.IsNaN(f) || math.Abs(f) > math.MaxInt64 {
			return 0, false
		}
		return int64(math.Round(f)), true
	}
	return 0, false
}

// pstate maps NVML's P-state to its number; PSTATE_UNKNOWN is nil.
func pstate(p nvml.Pstates) *int32 {
	if p < nvml.PSTATE_0 || p > nvml.PSTATE_15 {
		return nil
	}
	return ptr(int32(p))
}

// cudaVersion formats NVML's CUDA driver version (12040) as "12.4".
func cudaVersion(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// computeMode names a compute mode as nvidia-smi does.
func computeMode(m nvml.ComputeMode) string {
	switch m {
	case nvml.COMPUTEMODE_DEFAULT:
		return "Default"
	case nvml.COMPUTEMODE_EXCLUSIVE_THREAD:
		return "Exclusive_Thread"
	case nvml.COMPUTEMODE_PROHIBITED:
		return "Prohibited"
	case nvml.COMPUTEMODE_EXCLUSIVE_PROCESS:
		return "Exclusive_Process"
	}
	return strconv.Itoa(int(m))
}

// processName reads a process's command name. It is "" when /proc hides it
// (another user under hidepid, or a PID from another PID namespace: NVML
// reports host PIDs, which inside a container may name nothing or the
// wrong process).
func processName(pid uint32) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// cString converts a NUL-terminated C char array.
func cString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func ptr[T any](v T) *T { return &v }
