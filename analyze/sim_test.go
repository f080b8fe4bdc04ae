package analyze_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
)

// TestRecoversSimTruth records a simulated GPU (known true power) through
// the real recorder and checks that the analysis recovers the truth: the
// energy of every window within its stated uncertainty of the truth the
// sim wrote (sim_truth), the run's and the cycle's within 2% (the sim's
// calibration error is at most 5 W a GPU), and the start of the steady
// state within 2 s.
func TestRecoversSimTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("records for ~16 s")
	}
	for _, gpus := range []int{1, 2} {
		t.Run(fmt.Sprintf("%dgpu", gpus), func(t *testing.T) {
			t.Parallel()
			recoverTruth(t, gpus)
		})
	}
}

func recoverTruth(t *testing.T, gpus int) {
	{
		backend := sim.New(sim.Options{GPUs: gpus, Seed: 11})
		dir := filepath.Join(t.TempDir(), "run")
		res, err := record.Record(context.Background(), record.Config{
			OutDir: dir, Argv: []string{"sleep", "12"}, Backend: backend,
			IdleBefore: 6 * time.Second, IdleAfter: 6 * time.Second, Cycles: 1,
			Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &bytes.Buffer{},
		})
		if err != nil {
			t.Fatal(err)
		}
		d, err := analyze.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		rr := analyze.New(d, dir, analyze.DefaultSettings()).Result
		abs := func(s float64) int64 { return d.Origin + int64(math.Round(s*1e9)) }

		var checked int
		for _, w := range rr.Windows {
			if w.SimTruthEnergyJ == nil {
				t.Fatalf("%d GPU(s), %s window: no sim_truth_energy_j", gpus, w.Name)
			}
			truth := float64(*w.SimTruthEnergyJ)
			if meta := backend.Truth(abs(w.StartS), abs(w.EndS)).EnergyJ; math.Abs(meta-truth) > 0.01*truth {
				t.Errorf("%d GPU(s), %s window: the sim_truth table gives %.3f J, the sim %.3f J", gpus, w.Name, truth, meta)
			}
			for _, e := range []struct {
				name     string
				v, bound analyze.Num
			}{{"counter", w.EnergyJ, w.UncertaintyPct}, {"integrated", w.EnergyIntegratedJ, w.IntegratedUncertaintyPct}} {
				if !e.v.Valid() {
					t.Errorf("%d GPU(s), %s window: no %s energy", gpus, w.Name, e.name)
					continue
				}
				rel := math.Abs(float64(e.v)-truth) / truth * 100
				if rel > float64(e.bound) {
					t.Errorf("%d GPU(s), %s window: %s energy %.1f J, truth %.1f J: %.2f%% off, stated +/-%.2f%%",
						gpus, w.Name, e.name, float64(e.v), truth, rel, float64(e.bound))
				}
				if (w.Kind == analyze.KindRun || w.Kind == analyze.KindCycle) && rel > 2 {
					t.Errorf("%d GPU(s), %s window: %s energy %.2f%% off the truth", gpus, w.Name, e.name, rel)
				}
			}
			if w.Kind == analyze.KindRun || w.Kind == analyze.KindCycle {
				checked++
			}
		}
		if checked != 2 {
			t.Fatalf("%d GPU(s): expected a run and a cycle window, checked %d", gpus, checked)
		}

		// The cycle is the measured window; its steady state starts after
		// the sim's 3 s ramp.
		st := rr.SteadyState
		if st == nil || !st.StartS.Valid() {
			t.Fatalf("%d GPU(s): no steady state: %+v", gpus, st)
		}
		cyc := res.Meta.Command.Cycles[0]
		wantStart := float64(cyc.StartNs-d.Origin)/1e9 + 3
		if got := float64(st.StartS); math.Abs(got-wantStart) > 2 {
			t.Errorf("%d GPU(s): steady state starts at %.2f s, truth %.2f s", gpus, got, wantStart)
		}
		if st.Class != "warmup" {
			t.Errorf("%d GPU(s): class %q, want warmup (a ramp up to steady power)", gpus, st.Class)
		}
		// The idle phases give the sim's idle power, within its
		// calibration error.
		// 6 s phases: the baseline needs P0MinUpdates (30) settled
		// updates after P0SettleS, and with 4 s phases a loaded CI
		// machine once left it none.
		if b := rr.Baseline.Idle; b == nil || math.Abs(b.MedianW.Estimate-75*float64(gpus)) > 5*float64(gpus) {
			var phases []string
			for _, w := range rr.Windows {
				if w.Kind == analyze.KindPhase {
					phases = append(phases, fmt.Sprintf("%s %.2f-%.2f s", w.Name, float64(w.StartS), float64(w.EndS)))
				}
			}
			t.Errorf("%d GPU(s): idle baseline %+v, want %d W (phases: %v; warnings: %v)", gpus, b, 75*gpus, phases, rr.Warnings)
		}
	}
}
