// Package analyze holds llem's methodology: everything that turns a trace
// into measured numbers. Sub-packages hold the statistics (bootstrap,
// steady, trend); this package holds the energy arithmetic on windows.
package analyze

import (
	"math"
	"sort"

	"github.com/llem/llem/trace"
)

// CounterEnergyJ is the energy of one GPU over [startNs, endNs] from its
// cumulative counter reads (sorted by time), taken at face value: the
// counter value at each window edge is interpolated linearly between the
// reads around it; a decrease between two reads is a reset, and the
// interval across it contributes nothing rather than negative energy. ok
// is false when the reads do not cover the window. The analysis itself
// uses a timing model of the counter (counterWindow); this is the plain
// rule other tools apply, kept for comparisons.
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
	if endNs <= startNs || !s.covers(startNs, endNs) {
		return 0, false
	}
	t := s.T
	return s.integrateFrom(sort.Search(len(t), func(i int) bool { return t[i] > startNs }), startNs, endNs), true
}

// covers reports whether s has two samples or more and spans [startNs,
// endNs]: what Integrate needs.
func (s Series) covers(startNs, endNs int64) bool {
	t := s.T
	return len(t) >= 2 && t[0] <= startNs && t[len(t)-1] >= endNs
}

// integrateFrom is Integrate's sum, given first, the index of the first
// sample after startNs, over a span that s covers (Integrate's checks).
func (s Series) integrateFrom(first int, startNs, endNs int64) float64 {
	t, v := s.T, s.V
	n := len(t)
	at := func(i int, x int64) float64 { // linear between samples i-1 and i
		if t[i] == t[i-1] {
			return v[i]
		}
		return v[i-1] + (v[i]-v[i-1])*float64(x-t[i-1])/float64(t[i]-t[i-1])
	}
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
	return e
}

// maxIn is the largest value of s in [startNs, endNs], with the samples
// on either side (a window between two samples sees both); NaN when s has
// none there.
func (s Series) maxIn(startNs, endNs int64) float64 {
	i, j := s.Span(startNs, endNs)
	i, j = max(i-1, 0), min(j+1, s.Len())
	m := math.NaN()
	for _, v := range s.V[i:j] {
		if !(v <= m) { // NaN-safe max
			m = v
		}
	}
	return m
}

// Timing says when a reading is of: a reading stamped t reports the
// truth at about t - Lag, within +/- Half of it (uniformly).
type Timing struct {
	LagNs, HalfNs int64
}

// EdgeHoldNs is how far a window may reach past the first or last sample
// of a series and still be measured: the recorder's first and last
// counter reads and power samples are a few ms apart, so the whole-run
// window would otherwise have no energy. The uncovered sliver is
// integrated at the nearest power sample's value.
const EdgeHoldNs = 100_000_000

// CounterSliverNs is how far a window may reach past the first or last
// counter read and still have a counter energy: the sliver comes from the
// power samples, with their accuracy. A window opened just before the
// recorder's first read (which loop fires first is chance), or cut where
// a killed recorder's power samples end, keeps its counter energy.
const CounterSliverNs = 1_000_000_000

// timedPower is a power series integrated for energy, with its timing.
type timedPower struct {
	*Samples
	name      string // driver_power, instant_power, average_power
	timing    Timing
	accuracyW float64 // the sensor's accuracy (NVML: +/-5 W), 0 if unknown
}

// integrate is the energy of [startNs, endNs] from the power series,
// read at its timing: the series is shifted back by its lag, and a window
// may reach EdgeHoldNs past its samples (held at the nearest sample).
// terms are the half-widths (J) of the errors the timing leaves at the
// window's two edges: the power there times the spread of the timing.
func (p timedPower) integrate(startNs, endNs int64) (joules float64, terms []float64, ok bool) {
	n := p.Len()
	if n < 2 || endNs <= startNs {
		return 0, nil, false
	}
	// The series at t reports the truth at t - lag: the truth over
	// [start, end] is the series over [start + lag, end + lag]. Past the
	// last sample (a lagging series ends before the truth it reports
	// does) the last value is held, and the held sliver counts as an
	// error of its whole energy.
	a, b := startNs+p.timing.LagNs, endNs+p.timing.LagNs
	first, firstV := p.First()
	last, lastV := p.Last()
	if first-a > EdgeHoldNs || b-last > EdgeHoldNs+p.timing.LagNs || a >= last+EdgeHoldNs+p.timing.LagNs || b <= first-EdgeHoldNs {
		return 0, nil, false
	}
	// The covered part, then the held parts before the first sample and
	// after the last.
	lo, hi := min(max(a, first), last), max(min(b, last), first)
	var e float64
	if hi > lo {
		var ok bool
		if e, ok = p.Integrate(lo, hi); !ok {
			return 0, nil, false
		}
	}
	head := firstV * float64(max(min(b, first)-a, 0)) / 1e9
	tail := lastV * float64(max(b-max(a, last), 0)) / 1e9
	e += head + tail
	if tail > lastV*float64(EdgeHoldNs)/1e9 {
		terms = append(terms, tail)
	}
	half := p.timing.HalfNs
	for _, t := range []int64{a, b} {
		if m := p.maxIn(t-half, t+half); !math.IsNaN(m) {
			terms = append(terms, m*float64(half)/1e9)
		}
	}
	return e, terms, true
}

// counterWindow is one GPU's energy over [startNs, endNs] from its counter
// reads, each taken as the truth at its stamp minus the counter's lag,
// within +/- half of it (Timing). Where a window edge falls between two
// reads, the counter's energy of that interval is split in proportion to
// the integral of p (the ~50 Hz driver power) on each side of the edge:
// the counter fixes how much energy there was, the power samples only say
// when. A decrease between two reads is a reset: the interval across it
// contributes nothing. The window may reach EdgeHoldNs past the first or
// last read; p gives the sliver.
//
// terms are the half-widths (J) of the errors of the reads the energy
// depends on: each read's coefficient in the energy times the power
// around its time times the timing's spread. ok is false when the reads
// do not cover the window.
func counterWindow(reads []trace.EnergyRead, p timedPower, tm Timing, startNs, endNs int64) (joules float64, terms []float64, ok bool) {
	if len(reads) < 2 || endNs <= startNs {
		return 0, nil, false
	}
	at := func(i int) int64 { return reads[i].TimestampNs - tm.LagNs }
	lo, hi := max(startNs, at(0)), min(endNs, at(len(reads)-1))
	if lo-startNs > CounterSliverNs || endNs-hi > CounterSliverNs || hi <= lo {
		return 0, nil, false
	}
	coef := map[int]float64{}
	i0 := sort.Search(len(reads), func(i int) bool { return at(i) > lo })
	var mj float64
	for i := max(i0, 1); i < len(reads); i++ {
		a, b := at(i-1), at(i)
		if a >= hi {
			break
		}
		x, y := max(a, lo), min(b, hi)
		if y <= x || reads[i].EnergyMj < reads[i-1].EnergyMj || b == a {
			continue
		}
		frac := 1.0
		if x != a || y != b {
			frac = float64(y-x) / float64(b-a)
			if part, _, ok1 := p.integrate(x, y); ok1 {
				if whole, _, ok2 := p.integrate(a, b); ok2 && whole > 0 {
					frac = part / whole
				}
			}
		}
		mj += frac * float64(reads[i].EnergyMj-reads[i-1].EnergyMj)
		coef[i-1] -= frac
		coef[i] += frac
	}
	joules = mj / 1000
	for _, sliver := range [][2]int64{{startNs, lo}, {hi, endNs}} {
		if d := sliver[1] - sliver[0]; d > 0 {
			s, t, ok := p.integrate(sliver[0], sliver[1])
			if !ok {
				return 0, nil, false
			}
			joules += s
			terms = append(terms, t...)
			if d > EdgeHoldNs {
				// Beyond the counter's own edge: the sliver's energy is
				// the power sensor's, with its accuracy.
				terms = append(terms, p.accuracyW*float64(d)/1e9)
			}
		}
	}
	for i := range reads {
		c := coef[i]
		if math.Abs(c) < 1e-12 {
			continue
		}
		// The power around the read's time, from the shifted power series.
		m := p.maxIn(at(i)+p.timing.LagNs-tm.HalfNs, at(i)+p.timing.LagNs+tm.HalfNs)
		if math.IsNaN(m) {
			continue
		}
		terms = append(terms, math.Abs(c)*m*float64(tm.HalfNs)/1e9)
	}
	return joules, terms, true
}

// q95 is the 95% bound of a sum of independent errors, each uniform
// within +/- its half-width a[k]: the normal approximation (1.96 standard
// deviations, a uniform's being a/sqrt(3)), never more than the sum of
// the half-widths, which bounds it.
func q95(a []float64) float64 {
	var sum, sq float64
	for _, x := range a {
		sum += math.Abs(x)
		sq += x * x
	}
	return min(sum, 1.96*math.Sqrt(sq/3))
}
