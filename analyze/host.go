package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/llem/llem/trace"
)

// HostDomain is one of the host's RAPL energy domains (the host_energy
// table): CPU package, DRAM, core... Its energy is the host's, never a
// GPU's: results keep it in host_energy_j, beside energy_j, never in it.
type HostDomain struct {
	Name string // "package-0", "package-0/dram"
	Zone string // "intel-rapl:0:0"
	// Energy is the cumulative energy (J) from the first read, wraps
	// unwrapped, linear between reads.
	Energy Series
	// Unknown are the spans between two reads whose decrease no wrap
	// explains: the energy of a window across one is unknown.
	Unknown [][2]int64
	Wraps   int
	// edgeNs is how far before the first read or after the last a window
	// may reach (one read interval): its energy there is extrapolated at
	// the power of the nearest interval between reads.
	edgeNs int64
}

// hostRead is one row of host_energy as loaded.
type hostRead struct {
	t, uj int64
}

// hostEnergy reads the host_energy table into d.Host: one domain per
// name, in meta.json's order (then any other name the table holds).
func (l *loader) hostEnergy() error {
	meta := l.d.Run.Meta
	maxUj := map[string]int64{}
	var order []string
	edge := int64(time.Second)
	if meta.HostEnergy != nil && meta.HostEnergy.IntervalMs > 0 {
		edge = int64(meta.HostEnergy.IntervalMs * 1e6)
	}
	if meta.HostEnergy != nil {
		for _, dom := range meta.HostEnergy.Domains {
			maxUj[dom.Name] = dom.MaxEnergyRangeUj
			order = append(order, dom.Name)
		}
	}
	reads := map[string][]hostRead{}
	zones := map[string]string{}
	cols := []string{trace.ColTimestampNs, trace.ColZone, trace.ColName, trace.ColEnergyUj}
	err := trace.ScanColumns(l.d.Run, trace.TableHostEnergy, cols, batchRows, func(c *trace.Columns) error {
		for i := 0; i < c.Len(); i++ {
			t, okT := c.Int(0, i)
			uj, okE := c.Int(3, i)
			if !okT || !okE {
				continue
			}
			name := string(c.Bytes(2, i))
			if _, seen := reads[name]; !seen {
				zones[name] = string(c.Bytes(1, i))
				if !slices.Contains(order, name) {
					order = append(order, name)
				}
			}
			reads[name] = append(reads[name], hostRead{t, uj})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range order {
		rs := reads[name]
		if len(rs) == 0 {
			continue
		}
		if !slices.IsSortedFunc(rs, func(a, b hostRead) int { return cmp.Compare(a.t, b.t) }) {
			slices.SortStableFunc(rs, func(a, b hostRead) int { return cmp.Compare(a.t, b.t) })
			l.d.note("unsorted_rows", fmt.Sprintf("host energy %s: rows were out of time order and were sorted", name))
		}
		h := &HostDomain{Name: name, Zone: zones[name], edgeNs: edge}
		cum := 0.0
		h.Energy.add(rs[0].t, 0)
		for k := 1; k < len(rs); k++ {
			delta, wrapped, ok := trace.HostEnergyDeltaUj(rs[k-1].uj, rs[k].uj, maxUj[name])
			switch {
			case !ok:
				h.Unknown = append(h.Unknown, [2]int64{rs[k-1].t, rs[k].t})
			case wrapped:
				h.Wraps++
			}
			cum += float64(delta) / 1e6
			h.Energy.add(rs[k].t, cum)
		}
		if n := len(h.Unknown); n > 0 {
			l.d.note("host_energy_decrease", fmt.Sprintf(
				"host energy %s: the counter went down %d time(s) where no wrap explains it (its range is unknown or exceeded): windows across those reads have no host energy",
				name, n))
		}
		l.d.Host = append(l.d.Host, h)
	}
	return nil
}

// hostEnergy is the energy of each host domain over w (J), from its
// counter reads, linear between them; NaN (null) where the reads do not
// cover w or a decrease no wrap explains lies inside it. nil when the run
// has no host energy, so that such a run's results are as before.
func (c *runCtx) hostEnergy(w Window) map[string]Num {
	if len(c.d.Host) == 0 {
		return nil
	}
	out := make(map[string]Num, len(c.d.Host))
	for _, h := range c.d.Host {
		out[h.Name] = h.window(w.StartNs, w.EndNs)
	}
	return out
}

// window is the domain's energy over [start, end] (J), NaN if unknown.
func (h *HostDomain) window(start, end int64) Num {
	a, okA := h.at(start)
	b, okB := h.at(end)
	if !okA || !okB {
		return NaN
	}
	for _, u := range h.Unknown {
		if u[0] < end && u[1] > start {
			return NaN
		}
	}
	e := b - a
	if math.Abs(e) < 1e-12 {
		e = 0
	}
	return Num(e)
}

// at is the cumulative energy at t: linear between reads, and within
// edgeNs outside them extrapolated along the first or last interval. A
// run's whole window starts at its first GPU sample, which the driver's
// buffer may date a few tens of ms before the host's first read.
func (h *HostDomain) at(t int64) (float64, bool) {
	if v, ok := h.Energy.At(t); ok {
		return v, true
	}
	s, n := h.Energy, h.Energy.Len()
	if n < 2 {
		return 0, false
	}
	slope := func(i, j int) float64 { return (s.V[j] - s.V[i]) / float64(s.T[j]-s.T[i]) }
	switch {
	case t < s.T[0] && s.T[0]-t <= h.edgeNs && s.T[1] > s.T[0]:
		return s.V[0] - slope(0, 1)*float64(s.T[0]-t), true
	case t > s.T[n-1] && t-s.T[n-1] <= h.edgeNs && s.T[n-1] > s.T[n-2]:
		return s.V[n-1] + slope(n-2, n-1)*float64(t-s.T[n-1]), true
	}
	return 0, false
}
