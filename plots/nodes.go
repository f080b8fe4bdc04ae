package plots

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"

	"github.com/llem/llem/analyze"
)

// nodesFig draws a multi-node job's power per node over time (each node's
// GPUs summed, as analyze's NodePower gives it), its measured windows
// shaded, and how far the nodes' clocks may misalign those windows.
func nodesFig(st *style, r *Run) (*Figure, error) {
	traces := r.NodePower()
	if r.Result.Job == nil || len(traces) == 0 {
		return nil, fmt.Errorf("nodes: %s is a run of one machine, not a multi-node job (a job directory of llem record under Slurm)", r.Dir)
	}
	p := st.newPlot("Time (s)", "Power per node (W)")
	p.X.Min, p.X.Max = 0, float64(r.Data.End-r.Data.Origin)/1e9
	p.Y.Min = 0
	lg := &legend{st: st}
	fill := tint(green, 0.28)
	var shades xSpans
	for _, w := range r.Result.Windows {
		if w.Measured {
			shades = append(shades, xSpan{w.StartS, w.EndS, fill})
		}
	}
	p.Add(shades)
	for i, nt := range traces {
		ls := st.seriesStyle(i)
		p.Add(line(xyOf(nt.Power), ls, plotter.NoStep))
		text := fmt.Sprintf("%s (%d GPUs)", nt.Node, nt.GPUs)
		if m := nodeMeasured(r.Result.Job, nt.Node); m != nil && m.MeanPowerW.Valid() {
			text = fmt.Sprintf("%s (%d GPUs, %.0f W measured)", nt.Node, nt.GPUs, float64(m.MeanPowerW))
		}
		lg.add(text, lineThumb(ls))
	}
	if len(shades) > 0 {
		text := "measured (node alignment unknown)"
		if b := r.Result.Job.Clock.MisalignmentBoundMs; b.Valid() {
			text = fmt.Sprintf("measured (nodes aligned within %.3g ms)", float64(b))
		}
		lg.add(text, swatchThumb(fill, fill))
	}
	f := compose(st, Nodes, lg, heightFor(2.2), func(c draw.Canvas) { p.Draw(c) })
	return f, nil
}

// nodeMeasured is a node's share of the measured windows.
func nodeMeasured(j *analyze.JobResult, node string) *analyze.NodeTotals {
	for _, n := range j.Nodes {
		if n.Node == node {
			return n.Measured
		}
	}
	return nil
}
