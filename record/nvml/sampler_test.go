//go:build cgo

package nvml

import (
	"errors"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/llem/llem/record"
)

// The state thread's tests run it over fake NVML calls written in C
// (sampler_fake.go); the GPU around it is go-nvml's mock, for the
// bookkeeping (unsupported columns, errors, loss) the thread shares with
// State. They are not parallel: the fakes are global.

func fakeStreamGPU(t *testing.T) *GPU {
	t.Helper()
	s, _ := fakeH100(t)
	return gpu(t, openFake(t, s, Options{GPUs: []int{0}}), 0)
}

// startFake starts g's state thread over the fake calls, closed when the
// test ends.
func startFake(t *testing.T, g *GPU, first time.Time, every time.Duration) *stateStream {
	t.Helper()
	ss, err := streamFake(g, first, every)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	return ss
}

// takeAfter waits d and takes what the thread polled meanwhile.
func takeAfter(ss *stateStream, d time.Duration) []record.StatePoll {
	time.Sleep(d)
	return ss.Take(nil)
}

func TestCLayoutMatchesNVML(t *testing.T) {
	size, valueOff, util, mem := cLayout()
	var fv nvml.FieldValue
	if size != unsafe.Sizeof(fv) || valueOff != unsafe.Offsetof(fv.Value) {
		t.Errorf("nvmlFieldValue_t: C size %d, value at %d; go-nvml %d, %d", size, valueOff, unsafe.Sizeof(fv), unsafe.Offsetof(fv.Value))
	}
	if util != unsafe.Sizeof(nvml.Utilization{}) || mem != unsafe.Sizeof(nvml.Memory{}) {
		t.Errorf("utilization %d / memory %d bytes in C, go-nvml %d / %d", util, mem, unsafe.Sizeof(nvml.Utilization{}), unsafe.Sizeof(nvml.Memory{}))
	}
}

func TestReadingKindsInOrder(t *testing.T) {
	g := fakeStreamGPU(t)
	for i, r := range g.readings {
		if r.kind != i {
			t.Errorf("reading %d (%s) has kind %d: the C poll makes its calls in kind order", i, r.call, r.kind)
		}
	}
	if len(g.readings) != kindCount {
		t.Errorf("%d readings, %d kinds", len(g.readings), kindCount)
	}
}

func TestStreamPollsOnSchedule(t *testing.T) {
	var fake fakeNVML
	fake.reset(0)
	g := fakeStreamGPU(t)
	const every = 10 * time.Millisecond
	start := time.Now()
	ss := startFake(t, g, start.Add(every), every)
	polls := takeAfter(ss, 205*time.Millisecond)
	polls = append(polls, takeAfter(ss, 100*time.Millisecond)...)
	ss.Stop()
	elapsed := time.Since(start)
	polls = ss.Take(polls) // what it polled before stopping
	var missed int64
	for _, p := range polls {
		missed += p.Missed
	}
	// Every deadline up to Stop was polled or counted missed (the last
	// one's count may reach past Stop).
	if due := int64(elapsed / every); int64(len(polls))+missed < due-2 || int64(len(polls)) > due+1 {
		t.Fatalf("%d polls and %d missed deadlines in %v at 10 ms", len(polls), missed, elapsed)
	}
	deadline := start.Add(every)
	for i, p := range polls {
		if p.Err != nil {
			t.Fatalf("poll %d: %v", i, p.Err)
		}
		// Each poll ends after its deadline, the deadlines 10 ms apart
		// from the first (those a slow poll overran skipped).
		if p.At.Before(deadline) || p.At.Sub(deadline) > 50*time.Millisecond+p.Late {
			t.Errorf("poll %d at %v, deadline %v (late %v)", i, p.At.Sub(start), deadline.Sub(start), p.Late)
		}
		deadline = deadline.Add(time.Duration(1+p.Missed) * every)
		st := p.State
		if st.InstantPowerMw == nil || *st.InstantPowerMw != int64(75_001+i) {
			t.Errorf("poll %d instant power %v, want %d", i, deref(st.InstantPowerMw), 75_001+i)
		}
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"AveragePowerMw", deref(st.AveragePowerMw), int64(74_000)},
			{"TemperatureC", deref(st.TemperatureC), int32(41)},
			{"SMClockMHz", deref(st.SMClockMHz), int32(1980)},
			{"MemClockMHz", deref(st.MemClockMHz), int32(2619)},
			{"PState", deref(st.PState), int32(0)},
			{"GPUUtilPct", deref(st.GPUUtilPct), int32(97)},
			{"MemUtilPct", deref(st.MemUtilPct), int32(40)},
			{"ClockEventReasons", deref(st.ClockEventReasons), int64(4)},
			{"MemoryUsedBytes", deref(st.MemoryUsedBytes), int64(1 << 33)},
		} {
			if f.got != f.want {
				t.Errorf("poll %d %s = %v, want %v", i, f.name, f.got, f.want)
			}
		}
	}
	// Stopped means stopped.
	before := fake.calls(kindTemperature)
	time.Sleep(30 * time.Millisecond)
	if fake.calls(kindTemperature) != before || len(ss.Take(nil)) != 0 {
		t.Error("the thread polled after Stop")
	}
}

func TestStreamStopsAtOnce(t *testing.T) {
	var fake fakeNVML
	fake.reset(0)
	g := fakeStreamGPU(t)
	ss, err := streamFake(g, time.Now().Add(time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ss.Close()
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v: it must wake the sleeping thread", d)
	}
	ss.Close() // twice is fine
	if len(ss.Take(nil)) != 0 {
		t.Error("polls after Close")
	}
}

func TestStreamCountsMissedDeadlines(t *testing.T) {
	var fake fakeNVML
	fake.reset(25 * time.Millisecond) // each poll takes 25 ms
	g := fakeStreamGPU(t)
	const every = 10 * time.Millisecond
	start := time.Now()
	ss := startFake(t, g, start, every)
	polls := takeAfter(ss, 300*time.Millisecond)
	ss.Stop()
	elapsed := time.Since(start)
	polls = ss.Take(polls)
	var missed int64
	for _, p := range polls {
		missed += p.Missed
	}
	// A poll of 25 ms or more overruns at least two 10 ms deadlines;
	// they are skipped, not run back to back, so there are at most as
	// many polls as 25 ms fit in the time.
	if n := int64(len(polls)); n < 3 || n > int64(elapsed/(25*time.Millisecond))+1 || missed < 2*n-2 {
		t.Errorf("%d polls, %d missed deadlines in %v of 25 ms polls every 10 ms", n, missed, elapsed)
	}
}

func TestStreamUnsupportedTurnedOff(t *testing.T) {
	var fake fakeNVML
	fake.reset(0)
	fake.setRet(kindAverage, nvml.ERROR_NOT_SUPPORTED)
	g := fakeStreamGPU(t)
	const every = 5 * time.Millisecond
	ss := startFake(t, g, time.Now(), every)
	polls := takeAfter(ss, 50*time.Millisecond)
	if len(polls) == 0 || polls[0].Err != nil || polls[0].State.AveragePowerMw != nil || polls[0].State.TemperatureC == nil {
		t.Fatalf("first polls %+v", polls)
	}
	if got := g.Unsupported(); !slices.Equal(got, []string{ColAveragePower}) {
		t.Errorf("Unsupported %v", got)
	}
	calls := fake.calls(kindAverage)
	polls = takeAfter(ss, 50*time.Millisecond)
	if len(polls) == 0 {
		t.Fatal("no polls")
	}
	if fake.calls(kindAverage) > calls+1 { // one poll may have been under way
		t.Errorf("an unsupported call made %d more times after Take turned it off", fake.calls(kindAverage)-calls)
	}
	if g.Errors() != nil {
		t.Errorf("errors %v", g.Errors())
	}
}

func TestStreamGPULost(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_GPU_IS_LOST, nvml.ERROR_TIMEOUT, nvml.ERROR_RESET_REQUIRED} {
		t.Run(ret.Error(), func(t *testing.T) {
			var fake fakeNVML
			fake.reset(0)
			fake.setRet(kindTemperature, ret)
			g := fakeStreamGPU(t)
			ss := startFake(t, g, time.Now(), 5*time.Millisecond)
			polls := takeAfter(ss, 60*time.Millisecond)
			// The thread stops at the poll that lost the GPU, and makes
			// none of that poll's calls after the one that failed.
			if len(polls) != 1 || !errors.Is(polls[0].Err, record.ErrGPULost) {
				t.Fatalf("polls %+v, want one that lost the GPU", polls)
			}
			if fake.calls(kindTemperature) != 1 || fake.calls(kindSMClock) != 0 {
				t.Errorf("calls after the loss: temperature %d, SM clock %d", fake.calls(kindTemperature), fake.calls(kindSMClock))
			}
			if _, err := g.State(); !errors.Is(err, record.ErrGPULost) {
				t.Errorf("State after the thread lost the GPU: %v", err)
			}
		})
	}
}

func TestStreamUnknownRunIsLost(t *testing.T) {
	var fake fakeNVML
	fake.reset(0)
	for k := range kindCount {
		fake.setRet(k, nvml.ERROR_UNKNOWN)
	}
	g := fakeStreamGPU(t)
	ss := startFake(t, g, time.Now(), 5*time.Millisecond)
	polls := takeAfter(ss, 40*time.Millisecond)
	// Three ERROR_UNKNOWN in a row lose the GPU, within the first poll.
	if len(polls) == 0 || !errors.Is(polls[0].Err, record.ErrGPULost) {
		t.Fatalf("first poll %+v, want the GPU lost", polls)
	}
}

func TestStreamThreadOff(t *testing.T) {
	g := fakeStreamGPU(t)
	t.Setenv(StateThreadEnv, "0")
	if _, err := g.StreamStates(time.Now(), time.Second); err == nil {
		t.Error("StreamStates with the thread turned off")
	}
	t.Setenv(StateThreadEnv, "")
	// Over go-nvml's mock there is no library for the thread to call.
	if _, err := g.StreamStates(time.Now(), time.Second); err == nil {
		t.Error("StreamStates over the mock library")
	}
}
