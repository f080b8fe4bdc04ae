//go:build cgo

package nvml

import (
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/llem/llem/record"
)

// These tests run go-nvml's mock of a DGX H100 (8 GPUs) with the readings
// filled in below; they need neither a GPU nor libnvidia-ml.

func u32(v uint32) [8]byte {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return b
}

// fakeH100 returns a mock DGX H100 whose GPUs answer every call llem makes,
// with the values an idle H100 gives (GPU i adds i to some of them).
func fakeH100(t *testing.T) (*server.Server, []*server.Device) {
	t.Helper()
	s := dgxh100.New()
	var devs []*server.Device
	for i, nd := range s.Devices {
		d := nd.(*server.Device)
		devs = append(devs, d)
		d.MemoryInfo.Used = 512 << 20
		d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 123_456_789 + uint64(i), nvml.SUCCESS }
		d.GetSamplesFunc = func(st nvml.SamplingType, since uint64) (nvml.ValueType, []nvml.Sample, nvml.Return) {
			if st != nvml.TOTAL_POWER_SAMPLES {
				t.Errorf("GetSamples type %v", st)
			}
			all := []nvml.Sample{
				// Out of order on purpose, plus an empty slot.
				{TimeStamp: 1_700_000_000_040_000, SampleValue: u32(75_300)},
				{TimeStamp: 0, SampleValue: u32(0)},
				{TimeStamp: 1_700_000_000_000_000, SampleValue: u32(75_100)},
				{TimeStamp: 1_700_000_000_020_000, SampleValue: u32(75_200)},
			}
			var out []nvml.Sample
			for _, s := range all {
				if s.TimeStamp > since {
					out = append(out, s)
				}
			}
			if len(out) == 0 {
				return nvml.VALUE_TYPE_UNSIGNED_INT, nil, nvml.ERROR_NOT_FOUND
			}
			return nvml.VALUE_TYPE_UNSIGNED_INT, out, nvml.SUCCESS
		}
		d.GetFieldValuesFunc = func(fv []nvml.FieldValue) nvml.Return {
			for k := range fv {
				if fv[k].FieldId != nvml.FI_DEV_POWER_INSTANT || fv[k].ScopeId != 0 {
					t.Errorf("field %d scope %d", fv[k].FieldId, fv[k].ScopeId)
				}
				fv[k].ValueType = uint32(nvml.VALUE_TYPE_UNSIGNED_INT)
				fv[k].Value = u32(312_345)
				fv[k].NvmlReturn = uint32(nvml.SUCCESS)
			}
			return nvml.SUCCESS
		}
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 300_000, nvml.SUCCESS }
		d.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
			if s != nvml.TEMPERATURE_GPU {
				t.Errorf("temperature sensor %v", s)
			}
			return 36, nvml.SUCCESS
		}
		d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
			switch c {
			case nvml.CLOCK_SM:
				return 1980, nvml.SUCCESS
			case nvml.CLOCK_MEM:
				return 2619, nvml.SUCCESS
			}
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		d.GetMaxClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
			if c == nvml.CLOCK_SM {
				return 1980, nvml.SUCCESS
			}
			return 2619, nvml.SUCCESS
		}
		d.GetPerformanceStateFunc = func() (nvml.Pstates, nvml.Return) { return nvml.PSTATE_0, nvml.SUCCESS }
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 87, Memory: 40}, nvml.SUCCESS
		}
		d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0x1, nvml.SUCCESS }
		d.GetSerialFunc = func() (string, nvml.Return) { return "165432100000" + string(rune('0'+i)), nvml.SUCCESS }
		d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for k, c := range d.PciBusID {
				p.BusId[k] = int8(c)
			}
			return p, nvml.SUCCESS
		}
		d.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		d.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) { return 650_000, nvml.SUCCESS }
		d.GetPowerManagementDefaultLimitFunc = func() (uint32, nvml.Return) { return 700_000, nvml.SUCCESS }
		d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
			return nvml.FEATURE_ENABLED, nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		d.GetComputeModeFunc = func() (nvml.ComputeMode, nvml.Return) { return nvml.COMPUTEMODE_DEFAULT, nvml.SUCCESS }
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return []nvml.ProcessInfo{
				{Pid: 4242, UsedGpuMemory: 1 << 30},
				{Pid: 4343, UsedGpuMemory: ^uint64(0)}, // not available, no /proc entry
			}, nvml.SUCCESS
		}
	}
	return s, devs
}

func openFake(t *testing.T, s *server.Server, opts Options) *Backend {
	t.Helper()
	b, err := openWith(s, opts, DefaultLibrary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func gpu(t *testing.T, b *Backend, i int) *GPU {
	t.Helper()
	return b.GPUs()[i].(*GPU)
}

func TestOpenAllAndSome(t *testing.T) {
	s, _ := fakeH100(t)
	b := openFake(t, s, Options{})
	if b.Name() != "nvml" {
		t.Errorf("Name %q", b.Name())
	}
	if n := len(b.GPUs()); n != 8 {
		t.Fatalf("%d GPUs, want 8", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if n := len(s.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times", n)
	}

	b = openFake(t, s, Options{GPUs: []int{5, 2}})
	var idx []int
	for _, g := range b.GPUs() {
		idx = append(idx, g.Index())
	}
	if !slices.Equal(idx, []int{2, 5}) {
		t.Errorf("indices %v, want [2 5]", idx)
	}

	for _, bad := range [][]int{{8}, {-1}, {1, 1}} {
		before := len(s.ShutdownCalls())
		if _, err := openWith(s, Options{GPUs: bad}, DefaultLibrary); err == nil {
			t.Errorf("GPUs %v: no error", bad)
		} else if len(s.ShutdownCalls()) != before+1 {
			t.Errorf("GPUs %v: NVML not shut down after the error", bad)
		}
	}
}

func TestInfo(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "4242"), 0o755)
	os.WriteFile(filepath.Join(dir, "4242", "comm"), []byte("python3\n"), 0o644)
	old := procRoot
	procRoot = dir
	t.Cleanup(func() { procRoot = old })

	s, devs := fakeH100(t)
	b := openFake(t, s, Options{GPUs: []int{3}})
	info, err := gpu(t, b, 0).Info()
	if err != nil {
		t.Fatal(err)
	}
	d := devs[3]
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Index", info.Index, 3)
	check("Name", info.Name, d.Config.Name)
	check("UUID", info.UUID, d.UUID)
	check("Serial", info.Serial, "1654321000003")
	check("PCIBusID", info.PCIBusID, "0000:03:00.0")
	check("DriverVersion", info.DriverVersion, "550.54.15")
	check("NVMLVersion", info.NVMLVersion, "12.550.54.15")
	check("CUDAVersion", info.CUDAVersion, "12.4")
	check("PersistenceMode", *info.PersistenceMode, true)
	check("PowerLimitMw", *info.PowerLimitMw, int64(650_000))
	check("DefaultPowerLimitMw", *info.DefaultPowerLimitMw, int64(700_000))
	check("ECCEnabled", *info.ECCEnabled, true)
	check("MIGEnabled", *info.MIGEnabled, false)
	check("ComputeMode", info.ComputeMode, "Default")
	check("MaxSMClockMHz", *info.MaxSMClockMHz, int32(1980))
	check("MaxMemClockMHz", *info.MaxMemClockMHz, int32(2619))
	check("PStateAtStart", *info.PStateAtStart, int32(0))
	if len(info.Processes) != 2 {
		t.Fatalf("processes %+v", info.Processes)
	}
	check("process 0", info.Processes[0].Name, "python3")
	check("process 0 memory", info.Processes[0].UsedMemoryBytes, uint64(1<<30))
	check("process 1", info.Processes[1].Name, "")
	check("process 1 memory", info.Processes[1].UsedMemoryBytes, uint64(0))
	if info.Unsupported != nil || info.Errors != nil {
		t.Errorf("unsupported %v errors %v", info.Unsupported, info.Errors)
	}
}

func TestInfoGetterFailures(t *testing.T) {
	s, devs := fakeH100(t)
	d := devs[0]
	d.GetSerialFunc = func() (string, nvml.Return) { return "", nvml.ERROR_NOT_SUPPORTED }
	d.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NO_PERMISSION }
	d.GetMigModeFunc = nil // must not be called: symbol missing below
	s.LookupSymbolFunc = func(sym string) error {
		if sym == "nvmlDeviceGetMigMode" {
			return errors.New("undefined symbol")
		}
		return nil
	}
	b := openFake(t, s, Options{GPUs: []int{0}})
	info, err := gpu(t, b, 0).Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Serial != "" || info.PowerLimitMw != nil || info.MIGEnabled != nil {
		t.Errorf("failed getters filled: serial %q limit %v mig %v", info.Serial, info.PowerLimitMw, info.MIGEnabled)
	}
	if info.Name == "" || info.DefaultPowerLimitMw == nil {
		t.Error("a failed getter emptied the others")
	}
	// NOT_SUPPORTED is not an error; NO_PERMISSION is.
	if want := map[string]int64{"GetPowerManagementLimit": 1}; !maps.Equal(info.Errors, want) {
		t.Errorf("errors %v, want %v", info.Errors, want)
	}
}

func TestReadingsAndUnits(t *testing.T) {
	s, _ := fakeH100(t)
	b := openFake(t, s, Options{GPUs: []int{1}})
	g := gpu(t, b, 0)

	e, err := g.EnergyMj()
	if err != nil || e != 123_456_790 {
		t.Errorf("EnergyMj = %d, %v", e, err)
	}

	ps, err := g.DriverPowerSamples(0)
	if err != nil {
		t.Fatal(err)
	}
	want := []record.PowerSample{
		{TimestampUs: 1_700_000_000_000_000, PowerMw: 75_100},
		{TimestampUs: 1_700_000_000_020_000, PowerMw: 75_200},
		{TimestampUs: 1_700_000_000_040_000, PowerMw: 75_300},
	}
	if !slices.Equal(ps, want) {
		t.Errorf("samples %v, want %v (oldest first, empty slot dropped)", ps, want)
	}
	ps, err = g.DriverPowerSamples(1_700_000_000_020_000)
	if err != nil || !slices.Equal(ps, want[2:]) {
		t.Errorf("samples since: %v, %v", ps, err)
	}
	// ERROR_NOT_FOUND: nothing new, which is not an error.
	ps, err = g.DriverPowerSamples(1_700_000_000_040_000)
	if err != nil || len(ps) != 0 {
		t.Errorf("no new samples: %v, %v", ps, err)
	}

	st, err := g.State()
	if err != nil {
		t.Fatal(err)
	}
	type field struct {
		name string
		got  any
		want any
	}
	for _, f := range []field{
		{"InstantPowerMw", st.InstantPowerMw, int64(312_345)},
		{"AveragePowerMw", st.AveragePowerMw, int64(300_000)},
		{"TemperatureC", st.TemperatureC, int32(36)},
		{"SMClockMHz", st.SMClockMHz, int32(1980)},
		{"MemClockMHz", st.MemClockMHz, int32(2619)},
		{"PState", st.PState, int32(0)},
		{"GPUUtilPct", st.GPUUtilPct, int32(87)},
		{"MemUtilPct", st.MemUtilPct, int32(40)},
		{"ClockEventReasons", st.ClockEventReasons, int64(1)},
		{"MemoryUsedBytes", st.MemoryUsedBytes, int64(512 << 20)},
	} {
		if got := deref(f.got); got != f.want {
			t.Errorf("%s = %v, want %v", f.name, got, f.want)
		}
	}
	if g.Errors() != nil || g.Unsupported() != nil {
		t.Errorf("errors %v unsupported %v", g.Errors(), g.Unsupported())
	}
}

func deref(p any) any {
	switch v := p.(type) {
	case *int64:
		if v != nil {
			return *v
		}
	case *int32:
		if v != nil {
			return *v
		}
	}
	return nil
}

func TestNotSupported(t *testing.T) {
	s, devs := fakeH100(t)
	d := devs[0]
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	// The call succeeds but the field does not.
	d.GetFieldValuesFunc = func(fv []nvml.FieldValue) nvml.Return {
		fv[0].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
		return nvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	b := openFake(t, s, Options{GPUs: []int{0}})
	g := gpu(t, b, 0)

	for range 3 {
		st, err := g.State()
		if err != nil {
			t.Fatal(err)
		}
		if st.TemperatureC != nil || st.InstantPowerMw != nil || st.GPUUtilPct != nil || st.MemUtilPct != nil {
			t.Fatalf("unsupported fields set: %+v", st)
		}
		if st.AveragePowerMw == nil || st.SMClockMHz == nil {
			t.Fatal("supported fields missing")
		}
		if _, err := g.EnergyMj(); !errors.Is(err, record.ErrNotSupported) {
			t.Fatalf("EnergyMj: %v", err)
		}
	}
	if n := len(d.GetTemperatureCalls()); n != 1 {
		t.Errorf("GetTemperature called %d times; an unsupported field must be read once", n)
	}
	if n := len(d.GetFieldValuesCalls()); n != 1 {
		t.Errorf("GetFieldValues called %d times", n)
	}
	if n := len(d.GetTotalEnergyConsumptionCalls()); n != 1 {
		t.Errorf("GetTotalEnergyConsumption called %d times", n)
	}
	want := []string{ColInstantPower, ColTemperature, ColGPUUtil, ColMemUtil, ColEnergy}
	if got := g.Unsupported(); !slices.Equal(got, want) {
		t.Errorf("Unsupported = %v, want %v", got, want)
	}
	info, _ := g.Info()
	if !slices.Equal(info.Unsupported, want) {
		t.Errorf("Info().Unsupported = %v", info.Unsupported)
	}
	if g.Errors() != nil {
		t.Errorf("unsupported counted as errors: %v", g.Errors())
	}
}

func TestMissingSymbols(t *testing.T) {
	s, devs := fakeH100(t)
	missing := map[string]bool{"nvmlDeviceGetCurrentClocksEventReasons": true}
	s.LookupSymbolFunc = func(sym string) error {
		if missing[sym] {
			return errors.New("undefined symbol " + sym)
		}
		return nil
	}
	// An older driver: the throttle-reasons call stands in.
	devs[0].GetCurrentClocksEventReasonsFunc = nil
	devs[0].GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return 0x4, nvml.SUCCESS }
	b := openFake(t, s, Options{GPUs: []int{0}})
	st, err := gpu(t, b, 0).State()
	if err != nil || st.ClockEventReasons == nil || *st.ClockEventReasons != 4 {
		t.Fatalf("throttle-reasons fallback: %v %v", st.ClockEventReasons, err)
	}

	// Neither symbol, nor GetSamples: unsupported, never called (the nil
	// mock funcs would panic if they were).
	missing["nvmlDeviceGetCurrentClocksThrottleReasons"] = true
	missing["nvmlDeviceGetSamples"] = true
	devs[1].GetCurrentClocksEventReasonsFunc = nil
	devs[1].GetSamplesFunc = nil
	b = openFake(t, s, Options{GPUs: []int{1}})
	g := gpu(t, b, 0)
	st, err = g.State()
	if err != nil || st.ClockEventReasons != nil {
		t.Fatalf("no reasons symbol: %v %v", st.ClockEventReasons, err)
	}
	if _, err := g.DriverPowerSamples(0); !errors.Is(err, record.ErrNotSupported) {
		t.Errorf("DriverPowerSamples without the symbol: %v", err)
	}
	want := []string{ColClockEventReasons, ColDriverPower}
	if got := g.Unsupported(); !slices.Equal(got, want) {
		t.Errorf("Unsupported = %v, want %v", got, want)
	}
}

func TestGPULost(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_GPU_IS_LOST, nvml.ERROR_TIMEOUT, nvml.ERROR_RESET_REQUIRED} {
		t.Run(ret.Error(), func(t *testing.T) {
			s, devs := fakeH100(t)
			devs[0].GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, ret }
			b := openFake(t, s, Options{GPUs: []int{0, 1}})
			g := gpu(t, b, 0)
			_, err := g.EnergyMj()
			if !errors.Is(err, record.ErrGPULost) {
				t.Fatalf("EnergyMj: %v, want ErrGPULost", err)
			}
			// Every later call answers at once without touching NVML.
			calls := len(devs[0].GetPowerUsageCalls())
			if _, err := g.State(); !errors.Is(err, record.ErrGPULost) {
				t.Errorf("State after loss: %v", err)
			}
			if _, err := g.DriverPowerSamples(0); !errors.Is(err, record.ErrGPULost) {
				t.Errorf("DriverPowerSamples after loss: %v", err)
			}
			if len(devs[0].GetPowerUsageCalls()) != calls || len(devs[0].GetSamplesCalls()) != 0 {
				t.Error("a lost GPU was still called")
			}
			if _, err := g.Info(); !errors.Is(err, record.ErrGPULost) {
				t.Errorf("Info after loss: %v", err)
			}
			// The other GPU carries on.
			if _, err := gpu(t, b, 1).EnergyMj(); err != nil {
				t.Errorf("other GPU: %v", err)
			}
		})
	}
}

func TestUnknownRepeatedIsLost(t *testing.T) {
	s, devs := fakeH100(t)
	var mu sync.Mutex
	next := []nvml.Return{nvml.ERROR_UNKNOWN, nvml.ERROR_UNKNOWN, nvml.SUCCESS, nvml.ERROR_UNKNOWN, nvml.ERROR_UNKNOWN, nvml.ERROR_UNKNOWN}
	devs[0].GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
		mu.Lock()
		defer mu.Unlock()
		r := next[0]
		next = next[1:]
		return 1000, r
	}
	b := openFake(t, s, Options{GPUs: []int{0}})
	g := gpu(t, b, 0)
	for i, wantLost := range []bool{false, false, false, false, false, true} {
		_, err := g.EnergyMj()
		if errors.Is(err, record.ErrGPULost) != wantLost {
			t.Fatalf("read %d: %v, lost want %v", i, err, wantLost)
		}
	}
	if got := g.Errors()["GetTotalEnergyConsumption"]; got != 5 {
		t.Errorf("errors counted %d, want 5", got)
	}
}

func TestErrorCounting(t *testing.T) {
	s, devs := fakeH100(t)
	d := devs[0]
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NO_PERMISSION }
	d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		if c == nvml.CLOCK_MEM {
			return 0, nvml.ERROR_UNKNOWN
		}
		return 1980, nvml.SUCCESS
	}
	d.GetSamplesFunc = func(nvml.SamplingType, uint64) (nvml.ValueType, []nvml.Sample, nvml.Return) {
		return 0, nil, nvml.ERROR_INSUFFICIENT_SIZE
	}
	b := openFake(t, s, Options{GPUs: []int{0}})
	g := gpu(t, b, 0)
	for range 4 {
		st, err := g.State()
		if err != nil {
			t.Fatalf("State with some failed reads: %v", err)
		}
		if st.AveragePowerMw != nil || st.MemClockMHz != nil || st.SMClockMHz == nil {
			t.Fatalf("state %+v", st)
		}
		if _, err := g.DriverPowerSamples(0); err == nil || errors.Is(err, record.ErrGPULost) {
			t.Fatalf("GetSamples error: %v", err)
		}
	}
	want := map[string]int64{"GetPowerUsage": 4, "GetClockInfo(MEM)": 4, "GetSamples": 4}
	if got := g.Errors(); !maps.Equal(got, want) {
		t.Errorf("Errors = %v, want %v", got, want)
	}
	// ERROR_UNKNOWN between successes of other calls does not mount up.
	if err := g.lost(); err != nil {
		t.Error("lost:", err)
	}
	if g.Unsupported() != nil {
		t.Errorf("failures listed as unsupported: %v", g.Unsupported())
	}
}

func TestStateAllFailed(t *testing.T) {
	s, devs := fakeH100(t)
	s.LookupSymbolFunc = func(sym string) error {
		if sym == "nvmlDeviceGetPowerUsage" {
			return nil
		}
		return errors.New("missing")
	}
	devs[0].GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NO_PERMISSION }
	b := openFake(t, s, Options{GPUs: []int{0}})
	if _, err := gpu(t, b, 0).State(); err == nil || errors.Is(err, record.ErrGPULost) {
		t.Errorf("State with every read failing: %v, want an error", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, devs := fakeH100(t)
	devs[0].GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NO_PERMISSION }
	b := openFake(t, s, Options{GPUs: []int{0}})
	g := gpu(t, b, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				g.State()
				g.EnergyMj()
				g.DriverPowerSamples(0)
				g.Errors()
			}
		})
	}
	wg.Wait()
	if got := g.Errors()["GetPowerUsage"]; got != 800 {
		t.Errorf("counted %d errors, want 800", got)
	}
}

func TestNoDriver(t *testing.T) {
	check := func(t *testing.T, err error, lib string) {
		t.Helper()
		if !errors.Is(err, ErrNoDriver) {
			t.Fatalf("error %v does not wrap ErrNoDriver", err)
		}
		for _, s := range []string{lib} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	}
	t.Run("mock", func(t *testing.T) {
		s, _ := fakeH100(t)
		s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
		_, err := openWith(s, Options{}, DefaultLibrary)
		check(t, err, "libnvidia-ml.so.1")
	})
	t.Run("panic", func(t *testing.T) {
		s, _ := fakeH100(t)
		s.InitFunc = func() nvml.Return { panic("dlopen blew up") }
		_, err := openWith(s, Options{}, DefaultLibrary)
		check(t, err, "libnvidia-ml.so.1")
	})
	t.Run("driver not loaded", func(t *testing.T) {
		s, _ := fakeH100(t)
		s.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
		_, err := openWith(s, Options{}, DefaultLibrary)
		check(t, err, "libnvidia-ml.so.1")
	})
	t.Run("real dlopen", func(t *testing.T) {
		// The real go-nvml loader, pointed at a library that exists nowhere.
		lib := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
		_, err := Open(Options{LibraryPath: lib})
		check(t, err, lib)
	})
}

// TestRealNVML runs on whatever this machine has: it skips where there is
// no driver (the usual case for CI) and reads every GPU where there is.
func TestRealNVML(t *testing.T) {
	b, err := Open(Options{})
	if errors.Is(err, ErrNoDriver) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, rg := range b.GPUs() {
		g := rg.(*GPU)
		info, err := g.Info()
		if err != nil {
			t.Fatal(err)
		}
		e, eerr := g.EnergyMj()
		ps, perr := g.DriverPowerSamples(0)
		st, serr := g.State()
		t.Logf("GPU %d %s driver %s CUDA %s: energy %d mJ (%v), %d power samples (%v), state %+v (%v), unsupported %v, errors %v",
			g.Index(), info.Name, info.DriverVersion, info.CUDAVersion, e, eerr, len(ps), perr, st, serr, g.Unsupported(), g.Errors())

		// The C state thread reads what State reads.
		ss, err := g.StreamStates(time.Now(), 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(210 * time.Millisecond)
		ss.Stop()
		polls := ss.Take(nil)
		ss.Close()
		if len(polls) < 8 {
			t.Fatalf("GPU %d: %d streamed polls in 210 ms at 20 ms", g.Index(), len(polls))
		}
		after, _ := g.State()
		for i, p := range polls {
			if p.Err != nil {
				t.Fatalf("GPU %d poll %d: %v", g.Index(), i, p.Err)
			}
			for _, f := range []struct {
				name      string
				got, want any
			}{
				{"SMClockMHz", deref(p.State.SMClockMHz) != nil, deref(after.SMClockMHz) != nil},
				{"MemClockMHz", deref(p.State.MemClockMHz), deref(after.MemClockMHz)},
				{"PState present", p.State.PState != nil, after.PState != nil},
				{"TemperatureC present", p.State.TemperatureC != nil, after.TemperatureC != nil},
				{"InstantPowerMw present", p.State.InstantPowerMw != nil, after.InstantPowerMw != nil},
				{"MemoryUsedBytes present", p.State.MemoryUsedBytes != nil, after.MemoryUsedBytes != nil},
			} {
				if f.got != f.want {
					t.Errorf("GPU %d poll %d: %s streamed %v, State %v", g.Index(), i, f.name, f.got, f.want)
				}
			}
		}
		t.Logf("GPU %d: %d streamed polls, first %+v, late %v", g.Index(), len(polls), polls[0].State, polls[0].Late)
	}
}
