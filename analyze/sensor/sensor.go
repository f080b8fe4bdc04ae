package sensor

import (
	"encoding/json"
	"iter"
	"math"
	"sort"

	"github.com/llem/llem/internal/order"

	"github.com/llem/llem/analyze/internal/nullable"
)

// GapFactor: a gap between consecutive samples longer than GapFactor times
// the median sampling interval is a hole in the recording (see CoveragePct).
const GapFactor = 3.0

// Characterisation of one field's samples over a window. See the package
// documentation for the exact definitions.
type Characterisation struct {
	Samples        int     `json:"samples"`          // samples in the window
	Updates        int     `json:"updates"`          // value changes seen in the window (a change = value differs from the previous sample)
	UpdatePeriodMs float64 `json:"update_period_ms"` // median interval between consecutive value changes, ms; NaN when fewer than 2 changes
	SampleRateHz   float64 `json:"sample_rate_hz"`   // (Samples-1) / (last-first timestamp) ; NaN when <2 samples
	CoveragePct    float64 `json:"coverage_pct"`     // percent of [start,end] lying within gaps between consecutive samples no longer than GapFactor x the median sampling interval (i.e. time not inside a hole in the recording)
}

// Characterise characterises the samples (t[i], v[i]) with
// startNs <= t[i] <= endNs. t are timestamps in nanoseconds, sorted
// ascending; v the field's values. If t and v differ in length, the extra
// entries of the longer one are ignored.
func Characterise(t []int64, v []float64, startNs, endNs int64) Characterisation {
	n := min(len(t), len(v))
	// Room for the window's samples (t is sorted: a search finds them),
	// rather than growing by doubling: a day of 50 Hz samples is 4 million.
	room := max(0, sort.Search(n, func(i int) bool { return t[i] > endNs })-sort.Search(n, func(i int) bool { return t[i] >= startNs }))
	return CharacteriseSeq(func(yield func(int64, float64) bool) {
		for i := range n {
			if !yield(t[i], v[i]) {
				return
			}
		}
	}, room, startNs, endNs)
}

// CharacteriseSeq is Characterise of the samples samples yields (stamp,
// value), in time order, for a caller that does not hold them as slices;
// room is about how many lie in the window (it sizes the work arrays).
func CharacteriseSeq(samples iter.Seq2[int64, float64], room int, startNs, endNs int64) Characterisation {
	c := Characterisation{UpdatePeriodMs: math.NaN(), SampleRateHz: math.NaN(), CoveragePct: math.NaN()}
	var (
		first, last int64   // timestamps of the first and last sample in the window
		prev        float64 // value of the previous sample in the window
		lastChange  int64   // timestamp of the latest value change
		// The periods between consecutive value changes, and the
		// intervals between consecutive samples in the window: their
		// medians are selected in place, so each is the only copy (a
		// day's run is 4 million samples a GPU and field).
		periods   = newSpans(room)
		intervals = newSpans(room)
	)
	for ts, vi := range samples {
		if ts < startNs || ts > endNs {
			continue
		}
		if c.Samples == 0 {
			first = ts
		} else {
			intervals.add(ts - last)
			if vi != prev && !(math.IsNaN(vi) && math.IsNaN(prev)) {
				if c.Updates > 0 {
					periods.add(ts - lastChange)
				}
				lastChange = ts
				c.Updates++
			}
		}
		last, prev = ts, vi
		c.Samples++
	}
	if c.Updates >= 2 {
		c.UpdatePeriodMs = periods.medianInPlace() / 1e6
	}
	if c.Samples < 2 {
		return c
	}
	if span := last - first; span > 0 {
		c.SampleRateHz = float64(c.Samples-1) / (float64(span) / 1e9)
	}
	if endNs > startNs {
		c.CoveragePct = coverage(&intervals, first-startNs, endNs-last, endNs-startNs)
	}
	return c
}

// coverage returns the percentage of a window of length window covered by
// the sample intervals and the two edge stretches (lead: start to the first
// sample, tail: the last sample to end) that are no longer than GapFactor
// times the median interval.
//
// It reorders intervals (their median is selected in place): the sum is
// of whole nanoseconds, exact in any order below 2^53 ns (104 days).
func coverage(intervals *spans, lead, tail, window int64) float64 {
	limit := GapFactor * intervals.medianInPlace()
	covered := 0.0
	add := func(d int64) {
		// d <= 0 adds nothing: a repeated timestamp, or unsorted input.
		if d > 0 && float64(d) <= limit {
			covered += float64(d)
		}
	}
	add(lead)
	add(tail)
	for _, d := range intervals.small { // one of the two is empty
		add(int64(d))
	}
	for _, d := range intervals.wide {
		add(d)
	}
	return min(100, 100*covered/float64(window))
}

// spans are time differences in ns, held as int32 while every one fits
// (up to 2.1 s: a day's run has 4 million a GPU and field, two arrays of
// them for each of the series characterised side by side, which were a
// day's peak of memory as int64), and as int64 from the first that does
// not. Their median is the same either way (order.MedianInPlace).
type spans struct {
	small []int32
	wide  []int64 // nil until a span does not fit small
}

func newSpans(room int) spans { return spans{small: make([]int32, 0, room)} }

func (s *spans) add(d int64) {
	if s.wide == nil {
		if d == int64(int32(d)) {
			s.small = append(s.small, int32(d))
			return
		}
		s.wide = make([]int64, len(s.small), max(cap(s.small), len(s.small)+1))
		for i, v := range s.small {
			s.wide[i] = int64(v)
		}
		s.small = nil
	}
	s.wide = append(s.wide, d)
}

// medianInPlace is the spans' median; it reorders them.
func (s *spans) medianInPlace() float64 {
	if s.wide != nil {
		return order.MedianInPlace(s.wide)
	}
	return order.MedianInPlace(s.small)
}

// characterisationJSON is the wire form: pointers carry NaN as null, since
// JSON has no NaN and encoding/json refuses to write one.
type characterisationJSON struct {
	Samples        int      `json:"samples"`
	Updates        int      `json:"updates"`
	UpdatePeriodMs *float64 `json:"update_period_ms"`
	SampleRateHz   *float64 `json:"sample_rate_hz"`
	CoveragePct    *float64 `json:"coverage_pct"`
}

// MarshalJSON writes NaN (undefined) as null.
func (c Characterisation) MarshalJSON() ([]byte, error) {
	return json.Marshal(characterisationJSON{
		Samples: c.Samples, Updates: c.Updates,
		UpdatePeriodMs: nullable.Ptr(c.UpdatePeriodMs),
		SampleRateHz:   nullable.Ptr(c.SampleRateHz),
		CoveragePct:    nullable.Ptr(c.CoveragePct),
	})
}

// UnmarshalJSON reads null (or a missing field) back as NaN.
func (c *Characterisation) UnmarshalJSON(b []byte) error {
	var w characterisationJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Characterisation{
		Samples: w.Samples, Updates: w.Updates,
		UpdatePeriodMs: nullable.Value(w.UpdatePeriodMs),
		SampleRateHz:   nullable.Value(w.SampleRateHz),
		CoveragePct:    nullable.Value(w.CoveragePct),
	}
	return nil
}
