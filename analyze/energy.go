// Package analyze holds llem's methodology: everything that turns a trace
// into measured numbers. Sub-packages hold the statistics (bootstrap,
// steady, trend); this package holds the energy arithmetic on windows.
package analyze

import (
	"sort"

	"github.com/llem/llem/trace"
)

// CounterEnergyJ is the energy of one GPU over [startNs, endNs] from its
// cumulative counter reads (sorted by time). The counter value at each
// window edge is interpolated linearly between the reads around it; a
// decrease between two reads is a reset, and the interval across it
// contributes nothing rather than negative energy. ok is false when the
// reads do not cover the window.
func CounterEnergyJ(reads []trace.EnergyRead, startNs, endNs int64) (joules float64, ok bool) {
	j, _, ok := counterJ(reads, startNs, endNs)
	return j, ok
}

// counterJ is CounterEnergyJ that also counts the resets inside the
// window.
func counterJ(reads []trace.EnergyRead, startNs, endNs int64) (joules float64, resets int, ok bool) {
	if len(reads) < 2 || endNs <= startNs || reads[0].TimestampNs > startNs || reads[len(reads)-1].TimestampNs < endNs {
		return 0, 0, false
	}
	var mj float64
	for i := 1; i < len(reads); i++ {
		a, b := reads[i-1], reads[i]
		lo, hi := max(a.TimestampNs, startNs), min(b.TimestampNs, endNs)
		if hi <= lo || b.TimestampNs == a.TimestampNs {
			continue
		}
		if b.EnergyMj < a.EnergyMj {
			resets++
			continue
		}
		frac := float64(hi-lo) / float64(b.TimestampNs-a.TimestampNs)
		mj += frac * float64(b.EnergyMj-a.EnergyMj)
	}
	return mj / 1000, resets, true
}

// PowerPoint is one power reading in W at a time in ns.
type PowerPoint struct {
	TimestampNs int64
	Watts       float64
}

// IntegrateJ integrates a power series (sorted by time) over [startNs,
// endNs] by trapezoids, interpolating linearly at the window edges.
// ok is false when the series does not cover the window.
func IntegrateJ(p []PowerPoint, startNs, endNs int64) (joules float64, ok bool) {
	s := Series{T: make([]int64, len(p)), V: make([]float64, len(p))}
	for i, x := range p {
		s.T[i], s.V[i] = x.TimestampNs, x.Watts
	}
	return s.Integrate(startNs, endNs)
}

// Integrate is IntegrateJ on a Series of watts.
func (s Series) Integrate(startNs, endNs int64) (joules float64, ok bool) {
	t, v := s.T, s.V
	n := len(t)
	if n < 2 || endNs <= startNs || t[0] > startNs || t[n-1] < endNs {
		return 0, false
	}
	at := func(i int, x int64) float64 { // linear between samples i-1 and i
		if t[i] == t[i-1] {
			return v[i]
		}
		return v[i-1] + (v[i]-v[i-1])*float64(x-t[i-1])/float64(t[i]-t[i-1])
	}
	first := sort.Search(n, func(i int) bool { return t[i] > startNs })
	var e float64
	for i := max(first, 1); i < n; i++ {
		lo, hi := max(t[i-1], startNs), min(t[i], endNs)
		if hi <= lo {
			if t[i-1] >= endNs {
				break
			}
			continue
		}
		e += (at(i, lo) + at(i, hi)) / 2 * float64(hi-lo) / 1e9
	}
	return e, true
}

// CounterEnergyShapedJ is CounterEnergyJ with a better split of the two
// read intervals the window edges fall in. Reads are ~1 s apart, and
// splitting an interval linearly in time assumes constant power across
// it; a window edge at a load step (the start of a phase) would then move
// energy across the edge. Here the counter's energy of an edge interval
// is split in proportion to the integral of p (the ~50 Hz driver power)
// on each side of the edge: the counter still fixes how much energy there
// was, the power samples only say when. Where p does not cover the
// interval, the split is linear in time as in CounterEnergyJ.
func CounterEnergyShapedJ(reads []trace.EnergyRead, p Series, startNs, endNs int64) (joules float64, ok bool) {
	if len(reads) < 2 || endNs <= startNs || reads[0].TimestampNs > startNs || reads[len(reads)-1].TimestampNs < endNs {
		return 0, false
	}
	i0 := sort.Search(len(reads), func(i int) bool { return reads[i].TimestampNs > startNs })
	var mj float64
	for i := max(i0, 1); i < len(reads); i++ {
		a, b := reads[i-1], reads[i]
		if a.TimestampNs >= endNs {
			break
		}
		lo, hi := max(a.TimestampNs, startNs), min(b.TimestampNs, endNs)
		if hi <= lo || b.EnergyMj < a.EnergyMj || b.TimestampNs == a.TimestampNs {
			continue
		}
		delta := float64(b.EnergyMj - a.EnergyMj)
		if lo == a.TimestampNs && hi == b.TimestampNs {
			mj += delta
			continue
		}
		frac := float64(hi-lo) / float64(b.TimestampNs-a.TimestampNs)
		if part, ok1 := p.Integrate(lo, hi); ok1 {
			if whole, ok2 := p.Integrate(a.TimestampNs, b.TimestampNs); ok2 && whole > 0 {
				frac = part / whole
			}
		}
		mj += frac * delta
	}
	return mj / 1000, true
}

// EdgeHoldNs is how far a window may reach past the first or last sample
// of a series and still be measured: the recorder's first and last
// counter reads and power samples are a few ms apart, so the whole-run
// window would otherwise have no energy. The uncovered sliver is
// integrated at the nearest power sample's value.
const EdgeHoldNs = 100_000_000

// integrateHeld is IntegrateJ with the edges held for up to EdgeHoldNs.
func integrateHeld(p Series, startNs, endNs int64) (float64, bool) {
	n := p.Len()
	if n < 2 || endNs <= startNs {
		return 0, false
	}
	lo, hi := max(startNs, p.T[0]), min(endNs, p.T[n-1])
	if lo-startNs > EdgeHoldNs || endNs-hi > EdgeHoldNs || hi <= lo {
		return 0, false
	}
	e, ok := p.Integrate(lo, hi)
	if !ok {
		return 0, false
	}
	e += p.V[0]*float64(lo-startNs)/1e9 + p.V[n-1]*float64(endNs-hi)/1e9
	return e, true
}

// counterHeld is CounterEnergyShapedJ with a window that reaches at most
// EdgeHoldNs past the first or last read: the counter gives the covered
// part and integrated power the slivers.
func counterHeld(reads []trace.EnergyRead, p Series, startNs, endNs int64) (float64, bool) {
	if len(reads) < 2 || endNs <= startNs {
		return 0, false
	}
	lo, hi := max(startNs, reads[0].TimestampNs), min(endNs, reads[len(reads)-1].TimestampNs)
	if lo-startNs > EdgeHoldNs || endNs-hi > EdgeHoldNs || hi <= lo {
		return 0, false
	}
	e, ok := CounterEnergyShapedJ(reads, p, lo, hi)
	if !ok {
		return 0, false
	}
	for _, sliver := range [][2]int64{{startNs, lo}, {hi, endNs}} {
		if sliver[1] > sliver[0] {
			s, ok := integrateHeld(p, sliver[0], sliver[1])
			if !ok {
				return 0, false
			}
			e += s
		}
	}
	return e, true
}
