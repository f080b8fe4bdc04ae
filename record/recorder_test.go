package record_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// failingBackend wraps the simulated device; GPU 1 is lost after a few
// state polls, and GPU 0's energy counter is reset once.
type failingBackend struct {
	*sim.Backend
	gpus []record.GPU
}

type lostAfter struct {
	record.GPU
	polls atomic.Int64
	after int64
}

func (g *lostAfter) State() (trace.DeviceState, error) {
	if g.polls.Add(1) > g.after {
		return trace.DeviceState{}, fmt.Errorf("nvmlDeviceGetPowerUsage: %w", record.ErrGPULost)
	}
	return g.GPU.State()
}

func (g *lostAfter) EnergyMj() (uint64, error) {
	if g.polls.Load() > g.after {
		return 0, fmt.Errorf("nvmlDeviceGetTotalEnergyConsumption: %w", record.ErrGPULost)
	}
	return g.GPU.EnergyMj()
}

type resetOnce struct {
	record.GPU
	reads atomic.Int64
}

func (g *resetOnce) EnergyMj() (uint64, error) {
	v, err := g.GPU.EnergyMj()
	if g.reads.Add(1) >= 3 { // from the third read on, the driver "reloaded"
		return v / 1000, err
	}
	return v, err
}

func (b *failingBackend) GPUs() []record.GPU { return b.gpus }

func TestLostGPUIsMarkedAndTheCommandRunsOn(t *testing.T) {
	s := sim.New(sim.Options{GPUs: 2, Seed: 1})
	gs := s.GPUs()
	b := &failingBackend{Backend: s, gpus: []record.GPU{&resetOnce{GPU: gs[0]}, &lostAfter{GPU: gs[1], after: 5}}}
	dir := filepath.Join(t.TempDir(), "run")
	var log bytes.Buffer
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "2"}, Backend: b,
		EnergyInterval: 200 * time.Millisecond, RotateInterval: 500 * time.Millisecond,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.Meta.Command.ExitCode == nil || *res.Meta.Command.ExitCode != 0 {
		t.Fatalf("the command must finish normally: exit %d", res.ExitCode)
	}
	if !res.Meta.GPUs[1].Lost || res.Meta.GPUs[0].Lost {
		t.Errorf("lost flags: %v %v", res.Meta.GPUs[0].Lost, res.Meta.GPUs[1].Lost)
	}
	if res.Meta.GPUs[1].Errors["device_state"] == 0 {
		t.Errorf("errors of GPU 1 not counted: %v", res.Meta.GPUs[1].Errors)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := trace.ReadTable[trace.Event](run, trace.TableEvents)
	kinds := map[string]int32{}
	for _, e := range evs {
		if e.Source == "recorder" {
			kinds[e.Kind] = e.GPU
		}
	}
	if g, ok := kinds["gpu_lost"]; !ok || g != 1 {
		t.Errorf("no gpu_lost event for GPU 1: %v", kinds)
	}
	if g, ok := kinds["energy_reset"]; !ok || g != 0 {
		t.Errorf("no energy_reset event for GPU 0: %v", kinds)
	}
	// GPU 0 kept being sampled for the whole run.
	st, _ := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	var n0, n1 int
	for _, r := range st {
		if r.GPU == 0 {
			n0++
		} else {
			n1++
		}
	}
	if n1 != 5 || n0 < 15 {
		t.Errorf("state rows: GPU 0 %d (want >= 15), GPU 1 %d (want 5)", n0, n1)
	}
	if !bytes.Contains(log.Bytes(), []byte("GPU 1 lost")) {
		t.Errorf("the user must be told: %q", log.String())
	}
}

// The counter is read at every boundary the recorder makes, so the
// windows it knows of need no interpolation across a change of load.
func TestCounterIsReadAtEveryPhaseAndCycleBoundary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	_, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "0.3"}, Backend: sim.New(sim.Options{Seed: 2}),
		IdleBefore: 300 * time.Millisecond, IdleAfter: 300 * time.Millisecond, Cycles: 2, Cooldown: 300 * time.Millisecond,
		EnergyInterval: time.Minute, // no scheduled read during the run
		Stdout:         &bytes.Buffer{}, Stderr: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := trace.Open(dir)
	reads, _ := trace.ReadTable[trace.EnergyRead](run, trace.TableEnergy)
	evs, _ := trace.ReadTable[trace.Event](run, trace.TableEvents)
	boundaries := 0
	for _, e := range evs {
		switch e.Kind {
		case "phase_start", "phase_end", "cycle_start", "cycle_end":
			boundaries++
			near := false
			for _, r := range reads {
				if d := e.TimestampNs - r.TimestampNs; d > -50e6 && d < 50e6 {
					near = true
				}
			}
			if !near {
				t.Errorf("no counter read within 50 ms of %s %s", e.Kind, e.Name)
			}
		}
	}
	if boundaries != 10 { // idle_before, cooldown, idle_after: 6; two cycles: 4
		t.Errorf("%d boundary events, want 10", boundaries)
	}
}

// overflowOnce loses the oldest 200 ms of what its third drain finds, as
// an overflow of the driver's buffer would.
type overflowOnce struct {
	record.GPU
	drains atomic.Int64
}

func (g *overflowOnce) DriverPowerSamples(sinceUs uint64) ([]record.PowerSample, error) {
	s, err := g.GPU.DriverPowerSamples(sinceUs)
	if g.drains.Add(1) == 3 && len(s) > 10 {
		s = s[10:]
	}
	return s, err
}

// A drain that finds samples missing since the last one it saw (the
// driver's buffer overflowed) marks the gap in the trace, and only then.
func TestDriverBufferOverflowIsMarked(t *testing.T) {
	s := sim.New(sim.Options{GPUs: 2, Seed: 1})
	gs := s.GPUs()
	b := &failingBackend{Backend: s, gpus: []record.GPU{gs[0], &overflowOnce{GPU: gs[1]}}}
	dir := filepath.Join(t.TempDir(), "run")
	_, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "2"}, Backend: b, DriverPowerInterval: 300 * time.Millisecond,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := trace.ReadTable[trace.Event](run, trace.TableEvents)
	var gaps []trace.Event
	for _, e := range evs {
		if e.Kind == "driver_power_gap" {
			gaps = append(gaps, e)
		}
	}
	if len(gaps) != 1 || gaps[0].GPU != 1 || gaps[0].Source != "recorder" {
		t.Fatalf("want one driver_power_gap event for GPU 1, got %+v", gaps)
	}
	t.Log(gaps[0].Attrs)
}
