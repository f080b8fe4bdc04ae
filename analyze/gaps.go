package analyze

import (
	"fmt"
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
	s := p.Series
	i := max(searchT(s.T, start)-1, 0)
	j := min(searchT(s.T, end)+1, s.Len())
	minGap := sampleGapMin(c.periodNs(p.name))
	var worst trace.Gap
	for k := i + 1; k < j; k++ {
		if d := s.T[k] - s.T[k-1]; d >= minGap && d > worst.EndNs-worst.StartNs && s.T[k-1] < end && s.T[k] > start {
			worst = trace.Gap{Table: table, StartNs: s.T[k-1], EndNs: s.T[k], Code: "sample_gap",
				Message: fmt.Sprintf("no %s sample for %.1f s", p.name, float64(d)/1e9)}
		}
	}
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

// gapWarnings are the run's damage and gaps as warnings: every damaged
// file, and every span of missing rows with its time in the run.
func (c *runCtx) gapWarnings() []Warning {
	var ws []Warning
	for _, d := range c.d.Run.Damage() {
		ws = append(ws, Warning{Code: "damaged_" + d.Code, Message: d.String()})
	}
	for _, g := range c.d.Run.Meta.Gaps {
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
