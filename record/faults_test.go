package record_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// Faults injected through the simulated device (issue 17): a GPU lost
// mid-run, failing and slow driver calls, a counter that resets or goes
// back, and a drain so late that the driver's buffer overflowed. The
// command and the other GPU carry on, and every loss is a gap in
// meta.json, never interpolated.
func TestFaultsInjectedThroughTheSim(t *testing.T) {
	s := sim.New(sim.Options{GPUs: 2, Seed: 5, Faults: []sim.Fault{
		{GPU: 0, Kind: sim.FaultFail, Call: "state", At: 500 * time.Millisecond, For: 300 * time.Millisecond},
		{GPU: 0, Kind: sim.FaultSlow, Call: "driver_power", At: 1200 * time.Millisecond, For: 200 * time.Millisecond, Delay: 3 * time.Second},
		{GPU: 0, Kind: sim.FaultCounterReset, At: 4500 * time.Millisecond},
		{GPU: 1, Kind: sim.FaultCounterBack, Back: 100_000, At: 700 * time.Millisecond},
		{GPU: 1, Kind: sim.FaultLost, At: 2 * time.Second},
	}})
	dir := filepath.Join(t.TempDir(), "run")
	log := &syncLog{}
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "6"}, Backend: s,
		EnergyInterval: 200 * time.Millisecond, DriverPowerInterval: 300 * time.Millisecond, RotateInterval: time.Second,
		Stdout: io.Discard, Stderr: io.Discard, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Meta
	if res.ExitCode != 0 || m.Status != trace.StatusComplete {
		t.Fatalf("exit %d status %s", res.ExitCode, m.Status)
	}
	start := m.Clock.WallStartNs

	// The lost GPU: marked, said, and a gap from then on; GPU 0 goes on.
	if !m.GPUs[1].Lost || m.GPUs[0].Lost || !strings.Contains(log.String(), "GPU 1 lost") {
		t.Errorf("lost: %v %v; log %s", m.GPUs[0].Lost, m.GPUs[1].Lost, log)
	}
	gaps := map[string][]trace.Gap{}
	for _, g := range m.Gaps {
		gaps[g.Code] = append(gaps[g.Code], g)
	}
	if g := gaps["gpu_lost"]; len(g) != 1 || *g[0].GPU != 1 || g[0].StartNs != m.GPUs[1].LostNs || g[0].EndNs < m.Command.EndNs {
		t.Errorf("gpu_lost gap %+v", g)
	}
	// Failed calls are counted, and the GPU is not lost for them.
	if m.GPUs[0].Errors["device_state"] < 2 {
		t.Errorf("GPU 0 errors %v", m.GPUs[0].Errors)
	}
	// The 3 s drain let the 2.4 s buffer overflow: one gap on GPU 0, with
	// no driver sample inside it.
	ov := gaps["driver_power_gap"]
	if len(ov) != 1 || *ov[0].GPU != 0 || ov[0].Table != trace.TableDriverPower {
		t.Fatalf("overflow gaps %+v (all gaps %+v)", ov, m.Gaps)
	}
	if d := time.Duration(ov[0].EndNs - ov[0].StartNs); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("overflow gap of %v after a 3 s drain of a 2.4 s buffer", d)
	}
	if !hasWarn(m.Warnings, "driver_power_gap") || m.Recorder.Loops["driver_power"].MissedDeadlines == 0 {
		t.Errorf("warnings %+v, loops %+v", m.Warnings, m.Recorder.Loops)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	dp, _ := trace.ReadTable[trace.DriverPowerSample](run, trace.TableDriverPower)
	var last0 int64
	for _, r := range dp {
		if r.GPU != 0 {
			continue
		}
		if r.TimestampNs > ov[0].StartNs && r.TimestampNs < ov[0].EndNs {
			t.Errorf("a driver sample inside the overflow gap: %d", r.TimestampNs)
		}
		last0 = max(last0, r.TimestampNs)
	}
	if time.Duration(last0-start) < 5*time.Second {
		t.Errorf("GPU 0's driver samples stop at %v", time.Duration(last0-start))
	}
	// Both counter faults are marked as resets, with the values either side.
	evs, _ := trace.ReadTable[trace.Event](run, trace.TableEvents)
	resets := map[int32]int{}
	for _, e := range evs {
		if e.Kind == "energy_reset" {
			resets[e.GPU]++
		}
	}
	if resets[0] != 1 || resets[1] != 1 {
		t.Errorf("energy_reset events per GPU %v, want one each", resets)
	}
}

func hasWarn(ws []trace.Warning, code string) bool {
	for _, w := range ws {
		if w.Code == code {
			return true
		}
	}
	return false
}
