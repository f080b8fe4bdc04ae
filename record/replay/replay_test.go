package replay

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The recorded run: 10 s from recStart, one GPU.
const (
	recStart  = int64(1_700_000_000_000_000_000)
	recLength = 10 * time.Second
	nDriver   = 500 // one per 20 ms
)

// driverMw gives every recorded driver sample a distinct value, so order
// and duplicates show.
func driverMw(i int) int64 { return 300_000 + int64(i) }

func writeTable[T any](t *testing.T, dir, table string, rows []T) {
	t.Helper()
	w, err := trace.NewTableWriter[T](dir, table, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(rows...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func writeMeta(t *testing.T, dir string, gpus ...trace.GPUInfo) {
	t.Helper()
	m := &trace.Meta{SchemaVersion: trace.SchemaVersion, RunID: "test", Status: trace.StatusComplete,
		Complete: true, Device: "sim", Clock: trace.ClockAnchor{WallStartNs: recStart}, GPUs: gpus}
	if err := trace.WriteMeta(dir, m); err != nil {
		t.Fatal(err)
	}
}

// writeFullRun writes a run as the recorder does: driver samples every
// 20 ms, a 300 W counter read every 500 ms, state every 100 ms.
func writeFullRun(t *testing.T) string {
	dir := t.TempDir()
	writeMeta(t, dir, trace.GPUInfo{Index: 0, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-x"})
	var driver []trace.DriverPowerSample
	for i := range nDriver {
		driver = append(driver, trace.DriverPowerSample{GPU: 0, TimestampNs: recStart + int64(i)*20e6, DriverPowerMw: driverMw(i)})
	}
	var energy []trace.EnergyRead
	for i := range 21 {
		energy = append(energy, trace.EnergyRead{GPU: 0, TimestampNs: recStart + int64(i)*500e6, EnergyMj: 5_000_000 + int64(i)*150_000})
	}
	var states []trace.DeviceState
	for i := range 100 {
		temp := int32(40 + i)
		states = append(states, trace.DeviceState{GPU: 0, TimestampNs: recStart + int64(i)*100e6, TemperatureC: &temp})
	}
	writeTable(t, dir, trace.TableDriverPower, driver)
	writeTable(t, dir, trace.TableEnergy, energy)
	writeTable(t, dir, trace.TableState, states)
	return dir
}

func openAt(t *testing.T, dir string, speed float64) (*Backend, *fakeClock, record.GPU) {
	t.Helper()
	c := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	b, err := Open(dir, Options{Speed: speed, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return b, c, b.GPUs()[0]
}

// At 10x, polled every 50 ms (0.5 recorded s), every sample arrives once,
// in order, with its timestamp shifted and compressed onto the replay clock.
func TestDriverSamplesShiftedInOrder(t *testing.T) {
	dir := writeFullRun(t)
	b, c, g := openAt(t, dir, 10)
	originUs := uint64(c.Now().UnixNano() / 1000)
	// 10 recorded seconds (the last energy read) at 10x.
	if b.Name() != "replay:"+dir || b.Duration() != time.Second {
		t.Errorf("name %q, duration %v", b.Name(), b.Duration())
	}
	var got []record.PowerSample
	var since uint64
	for !b.Done() {
		c.Advance(50 * time.Millisecond)
		s, err := g.DriverPowerSamples(since)
		if err != nil {
			t.Fatal(err)
		}
		nowUs := uint64(c.Now().UnixNano() / 1000)
		for _, p := range s {
			if p.TimestampUs <= since || p.TimestampUs > nowUs {
				t.Fatalf("sample at %d us outside (since %d, now %d]", p.TimestampUs, since, nowUs)
			}
		}
		if len(s) > 0 {
			since = s[len(s)-1].TimestampUs
		}
		got = append(got, s...)
	}
	if len(got) != nDriver {
		t.Fatalf("%d samples replayed, want %d", len(got), nDriver)
	}
	for i, p := range got {
		if int64(p.PowerMw) != driverMw(i) {
			t.Fatalf("sample %d has %d mW, want %d (order or duplicate)", i, p.PowerMw, driverMw(i))
		}
		if want := originUs + uint64(i)*2000; p.TimestampUs != want { // 20 ms / 10
			t.Fatalf("sample %d at %d us, want %d", i, p.TimestampUs, want)
		}
	}
	// Finished: holds, nothing new.
	c.Advance(time.Second)
	if s, _ := g.DriverPowerSamples(since); len(s) != 0 {
		t.Errorf("%d samples after the end", len(s))
	}
}

func TestDriverBufferCapped(t *testing.T) {
	_, c, g := openAt(t, writeFullRun(t), 1)
	c.Advance(5 * time.Second)
	s, _ := g.DriverPowerSamples(0)
	if len(s) != 120 || int64(s[len(s)-1].PowerMw) != driverMw(250) {
		t.Errorf("after 5 s got %d samples ending at %d mW; want the last 120 ending with sample 250", len(s), s[len(s)-1].PowerMw)
	}
}

func TestEnergyCounterInterpolated(t *testing.T) {
	b, c, g := openAt(t, writeFullRun(t), 10)
	read := func() uint64 {
		mj, err := g.EnergyMj()
		if err != nil {
			t.Fatal(err)
		}
		return mj
	}
	if mj := read(); mj != 5_000_000 {
		t.Errorf("at start %d mJ, want the first read", mj)
	}
	c.Advance(100 * time.Millisecond) // recorded 1 s: exactly read 2
	if mj := read(); mj != 5_300_000 {
		t.Errorf("at 1 s %d mJ, want 5300000", mj)
	}
	c.Advance(25 * time.Millisecond) // recorded 1.25 s: half way to read 3
	if mj := read(); mj != 5_375_000 {
		t.Errorf("at 1.25 s %d mJ, want 5375000", mj)
	}
	prev := read()
	for !b.Done() {
		c.Advance(3 * time.Millisecond)
		mj := read()
		if mj < prev {
			t.Fatalf("counter went back: %d -> %d", prev, mj)
		}
		prev = mj
	}
	c.Advance(time.Hour)
	if mj := read(); mj != 5_000_000+20*150_000 {
		t.Errorf("after the end %d mJ, want the last read", mj)
	}
	st, _ := g.State()
	if *st.TemperatureC != 40+99 {
		t.Errorf("after the end, state temperature %d, want the last row's", *st.TemperatureC)
	}
}

func TestStateAtOrBefore(t *testing.T) {
	_, c, g := openAt(t, writeFullRun(t), 1)
	c.Advance(1234 * time.Millisecond)
	st, err := g.State()
	if err != nil {
		t.Fatal(err)
	}
	if *st.TemperatureC != 40+12 || st.TimestampNs != 0 || st.GPU != 0 {
		t.Errorf("state at 1.234 s: %+v (temperature %d), want row 12 with time left to the caller", st, *st.TemperatureC)
	}
	*st.TemperatureC = -1 // must not reach the recording
	if st2, _ := g.State(); *st2.TemperatureC != 52 {
		t.Error("State returned a pointer into the recording")
	}
	info, _ := g.Info()
	if !strings.Contains(info.Name, "replayed") || info.UUID != "GPU-x" {
		t.Errorf("info %+v", info)
	}
}

// An imported run with only average power: the counter integrates it.
func TestImportedAveragePowerOnly(t *testing.T) {
	dir := t.TempDir()
	writeMeta(t, dir) // no GPUs in meta: taken from the data
	var states []trace.DeviceState
	for i := range 10 { // 200 W at 1 Hz for 9 s
		mw := int64(200_000)
		states = append(states, trace.DeviceState{GPU: 0, TimestampNs: recStart + int64(i)*1e9, AveragePowerMw: &mw})
	}
	writeTable(t, dir, trace.TableState, states)
	b, c, g := openAt(t, dir, 100)
	c.Advance(45 * time.Millisecond) // 4.5 recorded s
	if mj, _ := g.EnergyMj(); mj != 900_000 {
		t.Errorf("at 4.5 s %d mJ, want 900000 (200 W)", mj)
	}
	c.Advance(time.Second)
	if mj, _ := g.EnergyMj(); !b.Done() || mj != 1_800_000 {
		t.Errorf("at the end %d mJ (done %v), want 1800000", mj, b.Done())
	}
	if s, _ := g.DriverPowerSamples(0); len(s) != 0 {
		t.Errorf("%d driver samples from a run with none", len(s))
	}
}

func TestNoPowerData(t *testing.T) {
	dir := t.TempDir()
	writeMeta(t, dir, trace.GPUInfo{Index: 0})
	temp := int32(50)
	writeTable(t, dir, trace.TableState, []trace.DeviceState{{GPU: 0, TimestampNs: recStart, TemperatureC: &temp}})
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "no energy reads and no power data") {
		t.Errorf("err = %v, want one naming the run and the missing data", err)
	}
}

func TestCounterResetAndLostGPU(t *testing.T) {
	dir := t.TempDir()
	writeMeta(t, dir, trace.GPUInfo{Index: 0, Lost: true, LostNs: recStart + 3e9})
	writeTable(t, dir, trace.TableEnergy, []trace.EnergyRead{
		{TimestampNs: recStart, EnergyMj: 9000},
		{TimestampNs: recStart + 1e9, EnergyMj: 10000},
		{TimestampNs: recStart + 2e9, EnergyMj: 500}, // driver reloaded
	})
	_, c, g := openAt(t, dir, 1)
	c.Advance(1500 * time.Millisecond)
	if mj, _ := g.EnergyMj(); mj != 10000 {
		t.Errorf("before a reset %d mJ, want the earlier value held", mj)
	}
	c.Advance(time.Second)
	if mj, _ := g.EnergyMj(); mj != 500 {
		t.Errorf("after the reset %d mJ, want 500", mj)
	}
	c.Advance(time.Second)
	if _, err := g.EnergyMj(); !errors.Is(err, record.ErrGPULost) {
		t.Errorf("after the recorded loss err = %v, want ErrGPULost", err)
	}
}

// Readers on several goroutines while the clock moves and the replay
// restarts; run with -race.
func TestConcurrentReads(t *testing.T) {
	b, c, g := openAt(t, writeFullRun(t), 10)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for kind := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch kind {
				case 0:
					g.EnergyMj()
				case 1:
					g.DriverPowerSamples(0)
				case 2:
					g.State()
				}
			}
		}()
	}
	for i := range 300 {
		c.Advance(5 * time.Millisecond)
		if i == 150 {
			b.Start()
		}
	}
	close(stop)
	wg.Wait()
}
