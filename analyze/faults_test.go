package analyze

import (
	"testing"
)

// A real H100 run whose recorder was killed (kill -9, bench/gpu/faults.sh):
// its counter reads stop at the start, its driver power runs 9 s. The run
// window must not be cut to the 0.02 s the counter covers (it was), nor
// left without energy: it spans what the power covers, with integrated
// energy, as its cycle does.
func TestKilledRecorderRunWindow(t *testing.T) {
	runs, err := Open([]string{"../testdata/faults/h100-kill9"}, DefaultSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := runs[0].Result
	if r.Complete {
		t.Error("a killed recorder's run reads as complete")
	}
	var run, cycle *WindowResult
	for i := range r.Windows {
		switch w := &r.Windows[i]; w.Kind {
		case KindRun:
			run = w
		case KindCycle:
			cycle = w
		}
	}
	if run == nil || cycle == nil {
		t.Fatalf("windows: %+v", r.Windows)
	}
	if run.DurationS < 0.9*cycle.DurationS || run.DurationS < 8 {
		t.Errorf("run window %.2f s, its cycle %.2f s: the run was cut to the counter's reads", run.DurationS, cycle.DurationS)
	}
	if !run.EnergyIntegratedJ.Valid() || float64(run.EnergyIntegratedJ) < float64(cycle.EnergyIntegratedJ) {
		t.Errorf("run window integrated energy %v J, its cycle %v J", run.EnergyIntegratedJ, cycle.EnergyIntegratedJ)
	}
	for _, w := range run.Warnings {
		if w.Code == "no_energy" {
			t.Errorf("run window: %s", w.Message)
		}
	}
}
