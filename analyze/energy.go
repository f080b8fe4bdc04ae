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
	if len(reads) < 2 || endNs <= startNs || reads[0].TimestampNs > startNs || reads[len(reads)-1].TimestampNs < endNs {
		return 0, false
	}
	var mj float64
	for i := 1; i < len(reads); i++ {
		a, b := reads[i-1], reads[i]
		lo, hi := max(a.TimestampNs, startNs), min(b.TimestampNs, endNs)
		if hi <= lo || b.EnergyMj < a.EnergyMj || b.TimestampNs == a.TimestampNs {
			continue
		}
		frac := float64(hi-lo) / float64(b.TimestampNs-a.TimestampNs)
		mj += frac * float64(b.EnergyMj-a.EnergyMj)
	}
	return mj / 1000, true
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
	if len(p) < 2 || endNs <= startNs || p[0].TimestampNs > startNs || p[len(p)-1].TimestampNs < endNs {
		return 0, false
	}
	at := func(i int, t int64) float64 { // linear between p[i-1] and p[i]
		a, b := p[i-1], p[i]
		if b.TimestampNs == a.TimestampNs {
			return b.Watts
		}
		return a.Watts + (b.Watts-a.Watts)*float64(t-a.TimestampNs)/float64(b.TimestampNs-a.TimestampNs)
	}
	first := sort.Search(len(p), func(i int) bool { return p[i].TimestampNs > startNs })
	var e float64
	for i := max(first, 1); i < len(p); i++ {
		lo, hi := max(p[i-1].TimestampNs, startNs), min(p[i].TimestampNs, endNs)
		if hi <= lo {
			if p[i-1].TimestampNs >= endNs {
				break
			}
			continue
		}
		e += (at(i, lo) + at(i, hi)) / 2 * float64(hi-lo) / 1e9
	}
	return e, true
}
