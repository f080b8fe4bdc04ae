package sim

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/llem/llem/record"
)

// fakeClock lets the sim run on simulated time, with no sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 123_456_789)} }

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

func (c *fakeClock) Ns() int64 { return c.Now().UnixNano() }

func newSim(t *testing.T, o Options) (*Backend, *fakeClock, record.GPU) {
	t.Helper()
	c := newFakeClock()
	o.Now = c.Now
	b := New(o)
	return b, c, b.GPUs()[0]
}

func TestIdleBeforeBusy(t *testing.T) {
	b, c, g := newSim(t, Options{Seed: 1, CalibrationW: -1})
	c.Advance(3 * time.Second)
	st, err := g.State()
	if err != nil {
		t.Fatal(err)
	}
	if *st.InstantPowerMw != 75000 || *st.AveragePowerMw != 75000 {
		t.Errorf("idle instant/average = %d/%d mW, want 75000", *st.InstantPowerMw, *st.AveragePowerMw)
	}
	if *st.ClockEventReasons != reasonGpuIdle || *st.SMClockMHz != idleSMClockMHz || *st.PState != 0 {
		t.Errorf("idle state: reasons %#x, SM %d MHz, P%d", *st.ClockEventReasons, *st.SMClockMHz, *st.PState)
	}
	samples, _ := g.DriverPowerSamples(0)
	for _, s := range samples {
		if s.PowerMw != 75000 {
			t.Fatalf("idle driver sample %d mW", s.PowerMw)
		}
	}
	tr := b.Truth(b.epoch, c.Ns())
	if want := 75 * float64(c.Ns()-b.epoch) / 1e9; math.Abs(tr.EnergyJ-want) > 1e-9 {
		t.Errorf("idle truth %.9f J, want %.9f", tr.EnergyJ, want)
	}
	if tr.SteadyStartS != 0 || tr.SteadyMeanPowerW != 0 {
		t.Errorf("no busy period, but steady start %g s, mean %g W", tr.SteadyStartS, tr.SteadyMeanPowerW)
	}
}

// The counter changes only on the 100 ms sensor grid and holds the true
// integral up to CounterDelay before its last update: it lags the truth by
// that delay to one update more.
func TestEnergyCounterQuantised(t *testing.T) {
	b, c, g := newSim(t, Options{Seed: 2, CalibrationW: -1})
	sg := g.(*simGPU)
	c.Advance(500 * time.Millisecond)
	b.SetBusy(true, c.Ns())
	var last uint64
	var lastChange int64
	changes := 0
	for range 8000 { // 8 s in 1 ms steps: ramp and steady state
		c.Advance(time.Millisecond)
		mj, _ := g.EnergyMj()
		if mj < last {
			t.Fatalf("counter went back: %d -> %d", last, mj)
		}
		if mj != last && last != 0 {
			if gap := c.Ns() - lastChange; lastChange != 0 && gap != sensorPeriod {
				t.Fatalf("counter changed %v after the previous change, want 100ms", time.Duration(gap))
			}
			lastChange = c.Ns()
			changes++
		}
		last = mj
		truthJ := b.Truth(b.epoch, c.Ns()).EnergyJ
		lagJ := truthJ - float64(mj-sg.offsetMj)/1000
		if maxLag := 700*0.11 + 0.001; lagJ < 0 || lagJ > maxLag {
			t.Fatalf("at %v counter lags truth by %.4f J, want within [0, %g]", time.Duration(c.Ns()-b.epoch), lagJ, maxLag)
		}
	}
	if changes < 79 || changes > 80 {
		t.Errorf("%d counter updates in 8 s, want 80", changes)
	}
}

// Every sensor carries the GPU's one calibration error, within +/-
// CalibrationW, seeded: the counter's rate and every power reading.
func TestCalibrationError(t *testing.T) {
	seen := map[float64]bool{}
	for seed := int64(1); seed <= 20; seed++ {
		b, c, g := newSim(t, Options{Seed: seed})
		cal := g.(*simGPU).calW
		if math.Abs(cal) > 5 || seen[cal] {
			t.Fatalf("seed %d: calibration error %g W (seen before: %v)", seed, cal, seen[cal])
		}
		seen[cal] = true
		e0, _ := g.EnergyMj()
		c.Advance(10 * time.Second)
		e1, _ := g.EnergyMj()
		st, _ := g.State()
		truth := b.Truth(b.epoch, c.Ns()).EnergyJ / (float64(c.Ns()-b.epoch) / 1e9) // idle: 75 W
		if got := float64(*st.InstantPowerMw) / 1000; math.Abs(got-(truth+cal)) > 0.001 {
			t.Errorf("seed %d: instant %g W, truth %g W + calibration %g W", seed, got, truth, cal)
		}
		if rate := float64(e1-e0) / 1000 / 10; math.Abs(rate-(75+cal)) > 0.01 {
			t.Errorf("seed %d: counter rate %g W, want %g W", seed, rate, 75+cal)
		}
	}
}

// Polled every 0.5 s with the last seen timestamp, the buffer yields every
// 20 ms sample; polled every 5 s, only the last 120 survive.
func TestDriverBuffer(t *testing.T) {
	b, c, g := newSim(t, Options{Seed: 3})
	b.SetBusy(true, c.Ns())
	var seen []record.PowerSample
	var since uint64
	for i := range 20 { // 10 s
		c.Advance(500 * time.Millisecond)
		s, _ := g.DriverPowerSamples(since)
		// The first poll gets the whole buffer (older samples included, as
		// on a real GPU); each later one the 25 samples of its 0.5 s.
		if want := 25; i == 0 && len(s) != driverBuffer || i > 0 && len(s) != want {
			t.Fatalf("poll %d: %d samples", i, len(s))
		}
		since = s[len(s)-1].TimestampUs
		seen = append(seen, s...)
	}
	for i := 1; i < len(seen); i++ {
		if d := seen[i].TimestampUs - seen[i-1].TimestampUs; d != 20_000 {
			t.Fatalf("sample %d: %d us after the previous, want 20000", i, d)
		}
	}

	c.Advance(5 * time.Second)
	s, _ := g.DriverPowerSamples(since)
	if len(s) != driverBuffer {
		t.Fatalf("after 5 s, %d samples, want the buffer's %d", len(s), driverBuffer)
	}
	if gap := s[0].TimestampUs - since; gap <= 20_000 {
		t.Errorf("polled too rarely, but no samples lost (gap %d us)", gap)
	}
	if newest := s[len(s)-1].TimestampUs; int64(newest)*1000 > c.Ns() || c.Ns()-int64(newest)*1000 >= driverPeriod {
		t.Errorf("newest sample at %d us, now %d ns", newest, c.Ns())
	}
}

// The spec's check: a 1 s boxcar rises 10->90% in 800 ms after a step,
// while the instant field reaches 90% on its first update.
func TestAveragePowerStepResponse(t *testing.T) {
	b, c, g := newSim(t, Options{Seed: 4, Ramp: -1, NoiseSdW: -1, DriftFrac: -1})
	c.Advance(2 * time.Second)
	step := c.Ns()
	b.SetBusy(true, step)
	const lo, hi = 75.0, 600.0
	level := func(mw int64) float64 { return (float64(mw)/1000 - lo) / (hi - lo) }
	var t10, t90, tInstant90 int64
	for t10 == 0 || t90 == 0 || tInstant90 == 0 {
		c.Advance(time.Millisecond)
		if c.Ns()-step > int64(3*time.Second) {
			t.Fatal("no rise within 3 s")
		}
		st, _ := g.State()
		if f := level(*st.AveragePowerMw); t10 == 0 && f >= 0.1 {
			t10 = c.Ns()
		}
		if f := level(*st.AveragePowerMw); t90 == 0 && f >= 0.9 {
			t90 = c.Ns()
		}
		if f := level(*st.InstantPowerMw); tInstant90 == 0 && f >= 0.9 {
			tInstant90 = c.Ns()
		}
	}
	if rise := time.Duration(t90 - t10); rise < 700*time.Millisecond || rise > 900*time.Millisecond {
		t.Errorf("average power rose 10->90%% in %v, want ~800ms", rise)
	}
	if d := time.Duration(tInstant90 - step); d > 100*time.Millisecond+time.Millisecond {
		t.Errorf("instant power reached 90%% after %v, want within one update", d)
	}
}

// Truth integrates the ticks exactly, edges included, and reports the
// steady state as modelled.
func TestTruthIsSumOfTicks(t *testing.T) {
	b, c, _ := newSim(t, Options{Seed: 5, GPUs: 2, PulsePeriod: 150 * time.Millisecond})
	c.Advance(1234567 * time.Microsecond)
	busyStart := c.Ns()
	b.SetBusy(true, busyStart)
	c.Advance(47*time.Second + 3*time.Millisecond)
	b.SetBusy(false, c.Ns())
	c.Advance(2*time.Second + 7*time.Microsecond)

	start, end := b.epoch+3_333_333, c.Ns()
	tr := b.Truth(start, end)
	tick := int64(b.opts.Tick)
	var want float64
	for gi := range 2 {
		var per float64
		for k := int64(0); b.epoch+k*tick < end; k++ {
			a, z := max(b.epoch+k*tick, start), min(b.epoch+(k+1)*tick, end)
			if z > a {
				per += b.tickPower(gi, k) * float64(z-a) / 1e9
			}
		}
		if math.Abs(tr.PerGPUEnergyJ[gi]-per) > 1e-6 {
			t.Errorf("GPU %d truth %.9f J, sum of ticks %.9f J", gi, tr.PerGPUEnergyJ[gi], per)
		}
		want += per
	}
	if math.Abs(tr.EnergyJ-want) > 1e-6 {
		t.Errorf("truth %.9f J, sum of ticks %.9f J", tr.EnergyJ, want)
	}
	if want := float64(busyStart+int64(3*time.Second)-start) / 1e9; math.Abs(tr.SteadyStartS-want) > 1e-9 {
		t.Errorf("steady start %.9f s, want %.9f", tr.SteadyStartS, want)
	}
	// Two GPUs at 600 W plus 100 W pulses over 8 of every 15 ticks (the
	// first 75 ms of each 150 ms), plus noise and a 0.2% drift: ~653 W each.
	if tr.SteadyMeanPowerW < 2*640 || tr.SteadyMeanPowerW > 2*665 {
		t.Errorf("steady mean %.1f W for two GPUs, want about 2*650", tr.SteadyMeanPowerW)
	}
	if tr.IdlePowerW != 150 || tr.Seed != 5 || tr.Model == "" {
		t.Errorf("truth header: idle %g W, seed %d, model %q", tr.IdlePowerW, tr.Seed, tr.Model)
	}
}

func TestSteadyNoiseAndDrift(t *testing.T) {
	b, c, _ := newSim(t, Options{Seed: 6})
	b.SetBusy(true, c.Ns())
	c.Advance(10*time.Minute + 3*time.Second)
	early := b.Truth(c.Ns()-int64(10*time.Minute), c.Ns()-int64(10*time.Minute-10*time.Second))
	late := b.Truth(c.Ns()-int64(10*time.Second), c.Ns())
	if got := late.EnergyJ / early.EnergyJ; math.Abs(got-(1+0.02*598/600)/(1+0.02*8/600)) > 0.002 {
		t.Errorf("drift over 10 min: ratio %.4f, want about 1.02", got)
	}
	// Noise: the sd of tick powers over steady state.
	var sum, sq float64
	n := 0
	for k := int64(400); k < 10400; k++ {
		p := b.tickPower(0, k)
		sum += p
		sq += p * p
		n++
	}
	mean := sum / float64(n)
	if sd := math.Sqrt(sq/float64(n) - mean*mean); sd < 14 || sd > 16.5 {
		t.Errorf("steady noise sd %.2f W, want about 15 (drift adds a little)", sd)
	}
	temp := b.temperature(c.Ns())
	if temp < 63 || temp > 65 {
		t.Errorf("temperature after 10 min busy %.1f C, want near 65", temp)
	}
}

func TestDeterministicUnderSeed(t *testing.T) {
	run := func(seed int64) []uint64 {
		b, c, g := newSim(t, Options{Seed: seed})
		var out []uint64
		for i := range 100 {
			if i == 10 {
				b.SetBusy(true, c.Ns())
			}
			c.Advance(77 * time.Millisecond)
			mj, _ := g.EnergyMj()
			s, _ := g.DriverPowerSamples(0)
			out = append(out, mj, uint64(s[len(s)-1].PowerMw))
		}
		info, _ := g.Info()
		out = append(out, uint64(len(info.UUID)))
		return out
	}
	a, a2, other := run(42), run(42), run(43)
	same := 0
	for i := range a {
		if a[i] != a2[i] {
			t.Fatalf("reading %d differs under the same seed: %d vs %d", i, a[i], a2[i])
		}
		if a[i] == other[i] {
			same++
		}
	}
	if same > len(a)/2 {
		t.Errorf("seeds 42 and 43 agree on %d of %d readings", same, len(a))
	}
}

func TestInfo(t *testing.T) {
	b := New(Options{Seed: 7, GPUs: 3})
	seen := map[string]bool{}
	for i, g := range b.GPUs() {
		info, err := g.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Index != i || g.Index() != i || info.Name != "llem simulated GPU" || *info.PowerLimitMw != 700000 || !*info.PersistenceMode || *info.MIGEnabled {
			t.Errorf("GPU %d info %+v", i, info)
		}
		if len(info.UUID) != len("GPU-12345678-1234-1234-1234-123456789012") || seen[info.UUID] {
			t.Errorf("GPU %d UUID %q (length or repeat)", i, info.UUID)
		}
		seen[info.UUID] = true
	}
}

// Several goroutines read every sensor while the clock moves and the load
// switches; run with -race.
func TestConcurrentReads(t *testing.T) {
	b, c, _ := newSim(t, Options{Seed: 8, GPUs: 2})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, g := range b.GPUs() {
		for kind := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var since uint64
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
						if s, _ := g.DriverPowerSamples(since); len(s) > 0 {
							since = s[len(s)-1].TimestampUs
						}
					case 2:
						g.State()
					}
				}
			}()
		}
	}
	for i := range 2000 {
		c.Advance(5 * time.Millisecond)
		if i%500 == 0 {
			b.SetBusy(i%1000 == 0, c.Ns())
		}
	}
	close(stop)
	wg.Wait()
	b.Truth(b.epoch, c.Ns())
}
