package analyze

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/llem/llem/trace"
)

// Data gaps. A span with no rows of a table (a lost segment, a break in an
// imported log: trace.Run.Gaps) or an unexplained hole in a power series
// is not integrated across: nothing says what the power was there. The
// energy counter is cumulative, so a window whose reads lie on both sides
// of a gap still has its energy from the counter.

// sampleGapMin is the shortest hole in a power series taken for a gap:
// ten of its update periods, and at least a second (a 1 Hz wall meter
// skipping a reading is not a gap).
func sampleGapMin(periodNs float64) int64 {
	return max(int64(10*periodNs), 1_000_000_000)
}

// powerGap finds what keeps the power of GPU g, from the table its
// integrated energy comes from, from being integrated over [start, end]:
// a gap of the run that concerns that table and GPU, else the longest
// hole between consecutive samples that is a gap. ok is false when there
// is none.
func (c *runCtx) powerGap(gi int, start, end int64) (gap trace.Gap, ok bool) {
	g, p := c.d.GPUs[gi], c.pts[gi]
	table := trace.TableDriverPower
	if p.name != "driver_power" {
		table = trace.TableState
	}
	for _, x := range c.gaps {
		if (x.Table == "" || x.Table == table) && (x.GPU == nil || *x.GPU == g.Index) && x.StartNs < end && x.EndNs > start {
			return x, true
		}
	}
	// Holes in the series: samples either side of start..end count too.
	minGap := sampleGapMin(c.periodNs(p.name))
	var worst trace.Gap
	p.eachStep(p.Index(start)-1, p.Index(end)+1, minGap, func(prev, t int64) {
		if d := t - prev; d >= minGap && d > worst.EndNs-worst.StartNs && prev < end && t > start {
			worst = trace.Gap{Table: table, StartNs: prev, EndNs: t, Code: "sample_gap",
				Message: fmt.Sprintf("no %s sample for %.1f s", p.name, float64(d)/1e9)}
		}
	})
	return worst, worst.Code != ""
}

// periodNs is the update period of a power source in ns, as measured on
// the run (100 ms when unknown).
func (c *runCtx) periodNs(name string) float64 {
	ms := c.updateMs
	if name == "driver_power" {
		ms = c.driverMs
	}
	if !(ms > 0) {
		ms = 100
	}
	return ms * 1e6
}

func searchT(t []int64, x int64) int {
	i, _ := slices.BinarySearch(t, x)
	return i
}

// cutOpen ends each window that never ended (a killed run) where every
// GPU's power samples still cover it, rather than at the last row of any
// table: the driver buffer is drained every half second and a state row
// may follow its last drain, so the last moments have no power to
// integrate, and a window reaching into them would have no energy at all.
func (c *runCtx) cutOpen(ws []Window) {
	end := int64(math.MaxInt64)
	for _, p := range c.pts {
		if p.Len() == 0 {
			return
		}
		last, _ := p.Last()
		end = min(end, last)
	}
	for i := range ws {
		if ws[i].Open && ws[i].EndNs > end && end > ws[i].StartNs {
			ws[i].EndNs = end
			ws[i].cutAtPower = true
		}
	}
}

// minResamples is the fewest bootstrap resamples whose BCa bounds are
// stable enough to call a confidence interval (Efron and Tibshirani,
// 1993, ch. 14: 1,000 or more for percentile-based intervals).
const minResamples = 1000

// runFacts are warnings about how the run went that change what its
// numbers mean: a GPU lost during it, a command or a cycle that failed,
// a replay at a speed other than real time.
func runFacts(d *Data) []Warning {
	m := d.Run.Meta
	var ws []Warning
	for _, g := range m.GPUs {
		if g.Lost {
			idx := g.Index
			at := "during the run"
			if g.LostNs != 0 {
				at = fmt.Sprintf("at %.1f s", d.seconds(g.LostNs))
			}
			ws = append(ws, Warning{Code: "gpu_lost", GPU: &idx, Message: fmt.Sprintf(
				"GPU %d stopped answering %s: it has no samples after that, and windows after it lack its energy", idx, at)})
		}
	}
	if c := m.Command; c != nil {
		for _, cy := range c.Cycles {
			if cy.ExitCode != 0 {
				ws = append(ws, Warning{Code: "command_failed", Message: fmt.Sprintf(
					"the command exited with status %d in cycle %d: the work measured may not be the work intended", cy.ExitCode, cy.Cycle)})
			}
		}
		if len(c.Cycles) == 0 && c.ExitCode != nil && *c.ExitCode != 0 {
			ws = append(ws, Warning{Code: "command_failed", Message: fmt.Sprintf(
				"the command exited with status %d: the work measured may not be the work intended", *c.ExitCode)})
		}
	}
	if sp := m.Settings.ReplaySpeed; sp != 0 && sp != 1 {
		ws = append(ws, Warning{Code: "replay_speed", Message: fmt.Sprintf(
			"the run was recorded from a replay at %gx real time: its clock is compressed, so powers and rates are %gx what the hardware did; use it to test a pipeline, not to measure", sp, sp)})
	}
	return ws
}

// driverGaps are the spans the recorder found missing from the driver's
// power buffer (a drain too late: the buffer had overflowed), from its
// driver_power_gap events; each is warned about too (gapWarnings).
func driverGaps(d *Data) []trace.Gap {
	// A recorder that finished also put these gaps in meta.json: an event
	// counts only where meta.json lacks its gap (a killed recorder's run).
	inMeta := map[[2]int64]bool{}
	for _, g := range d.Run.Meta.Gaps {
		if g.Table == trace.TableDriverPower && g.GPU != nil {
			inMeta[[2]int64{int64(*g.GPU), g.StartNs}] = true
		}
	}
	var gaps []trace.Gap
	for _, e := range d.Events {
		if e.Kind != "driver_power_gap" || e.Source != "recorder" {
			continue
		}
		var a struct {
			LastUs int64 `json:"last_us"`
			NextUs int64 `json:"next_us"`
		}
		if json.Unmarshal([]byte(e.Attrs), &a) != nil || a.NextUs <= a.LastUs {
			continue
		}
		gpu := int(e.GPU)
		if inMeta[[2]int64{int64(gpu), a.LastUs * 1000}] {
			continue
		}
		gaps = append(gaps, trace.Gap{Table: trace.TableDriverPower, GPU: &gpu, StartNs: a.LastUs * 1000, EndNs: a.NextUs * 1000,
			Code: "driver_power_gap", Message: fmt.Sprintf("the driver's power buffer overflowed before it was drained: GPU %d's samples are missing", gpu)})
	}
	return gaps
}

// gapWarnings are the run's damage and gaps as warnings: every damaged
// file, and every span of missing rows (an import's, the driver buffer's)
// with its time in the run. Lost segments' spans are in the damage.
func (c *runCtx) gapWarnings() []Warning {
	var ws []Warning
	for _, d := range c.d.Run.Damage() {
		ws = append(ws, Warning{Code: "damaged_" + d.Code, Message: d.String()})
	}
	for _, g := range append(slices.Clone(c.d.Run.Meta.Gaps), driverGaps(c.d)...) {
		ws = append(ws, Warning{Code: g.Code, GPU: g.GPU, Message: fmt.Sprintf("%s to %s s: %s",
			num1(c.d.seconds(g.StartNs)), num1(c.d.seconds(g.EndNs)), g.Message)})
	}
	return ws
}

func num1(v float64) string { return fmt.Sprintf("%.1f", v) }

// counterNote says where a window's energy comes from when integrated
// power cannot give it.
func counterNote(counter Num) string {
	if counter.Valid() {
		return "; energy_j comes from the energy counter, read on both sides"
	}
	return "; the counter does not cover the window either"
}
