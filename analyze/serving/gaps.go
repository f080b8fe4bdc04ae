package serving

import (
	"cmp"
	"math"
	"slices"

	"github.com/llem/llem/internal/order"
)

// Gaps are the inter-token latencies (ITL) of a set of requests, one value
// per output token, without holding them: a long serving run has tens of
// millions, 8 bytes each. Every value is recomputed from the token log
// when asked for, and Quantiles selects the exact order statistics in a few
// passes over it, holding a histogram and the values near the ranks asked
// for, not all of them (see Quantiles).
type Gaps struct {
	s     *Set
	times []int32 // per request, how many of the pooled windows it started in: its values count that often
	n     int
	// The finite values, made with n by the pass that makes the Latency:
	// up to collectMax of them kept as they are (few), beyond that
	// counted by the top 20 bits of their keys (finite; Quantiles).
	few    []float64
	finite []int64
	nf     int64
}

// add counts a value, k times, when the pass that makes the Latency meets it.
func (g *Gaps) add(v float64, k int64) {
	g.n += int(k)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	g.nf += k
	if g.finite == nil && g.nf <= collectMax {
		for range k {
			g.few = append(g.few, v)
		}
		return
	}
	if g.finite == nil { // too many to keep: count them, those kept too
		g.finite = make([]int64, 1<<firstBits)
		for _, x := range g.few {
			g.finite[key(x)>>(64-firstBits)]++
		}
		g.few = nil
	}
	g.finite[key(v)>>(64-firstBits)] += k
}

// Len is the number of values.
func (g *Gaps) Len() int {
	if g == nil {
		return 0
	}
	return g.n
}

// each calls fn with every gap and how many values it stands for: for
// each token event of a request with times > 0, the time since the
// request's previous token event (its first_token for the first), over
// the tokens it brings, once per token and per window; requests whose
// token events all carry client stamps use those. req is the request's
// index, span the gap's whole length in seconds (the tokens' sum) and
// count the tokens the event brings.
func (g *Gaps) each(fn func(req int32, v, span float64, count, k int64)) {
	s := g.s
	// What each token needs of its request, in arrays of their own: the
	// requests are packed to be read in order, and read at random, token
	// after token, even unpacked ones were most of this pass's time.
	prev := make([]int64, s.n)
	allClient := make([]bool, s.n)
	for i, r := range s.Requests() {
		prev[i], allClient[i] = r.FirstTokenNs, r.allClient
		if r.allClient {
			prev[i] = r.ClientFirstTokenNs
		}
	}
	c := s.tokens.All()
	for tk, ok := c.Next(); ok; tk, ok = c.Next() {
		i := s.request(tk)
		if g.times[i] == 0 || prev[i] == 0 || tk.Count <= 0 {
			continue
		}
		t := tk.TimestampNs
		if allClient[i] {
			t = tk.ClientTimestampNs
		}
		fn(i, float64(t-prev[i])/1e9/float64(tk.Count), float64(t-prev[i])/1e9, int64(tk.Count), int64(tk.Count)*int64(g.times[i]))
		prev[i] = t
	}
}

// Values are every value (for a figure of their distribution; their order
// is not the tokens').
func (g *Gaps) Values() []float64 {
	if g.Len() == 0 {
		return nil
	}
	out := make([]float64, 0, g.n)
	g.each(func(_ int32, v, _ float64, _, k int64) {
		for range k {
			out = append(out, v)
		}
	})
	return out
}

// Quantiles are the q-quantiles of the finite values, each the number
// order.QuantileSelect gives on all of them (linear between the order
// statistics around rank q*(n-1)); NaN when there are none.
//
// The order statistics are found by narrowing, exactly: values map to
// keys whose order is the values' (their IEEE bits, the sign flipped), a
// first pass counts keys by their top 20 bits (8 MB of counts) and finds
// the bucket of each rank wanted, and the next pass either collects the
// values of that bucket (a bucket spans 1/256 of a power of two; up to
// collectBudget values, 16 MB, in all the buckets of a pass) and selects
// among them, or, for buckets of more, counts them by their next 16 bits.
// The first count is made with the Latency; each later pass recomputes
// the gaps from the token log, and one is most often enough.
func (g *Gaps) Quantiles(qs ...float64) []float64 {
	out := make([]float64, len(qs))
	// n counts the finite values (the gaps of int64 stamps over a positive
	// count are all finite, but the rule is latencyOf's).
	n := int64(0)
	if g != nil {
		n = g.nf
	}
	if n == 0 {
		for i := range out {
			out[i] = math.NaN()
		}
		return out
	}
	var ranks []int64
	for _, q := range qs {
		lo := int64(math.Floor(q * float64(n-1)))
		ranks = append(ranks, lo)
		if lo < n-1 {
			ranks = append(ranks, lo+1)
		}
	}
	slices.Sort(ranks)
	ranks = slices.Compact(ranks)
	var vals map[int64]float64
	if g.finite == nil { // few enough to have been kept
		vals = map[int64]float64{}
		for _, r := range ranks {
			vals[r] = order.SelectKth(g.few, int(r))
		}
	} else {
		vals = g.orderStats(ranks)
	}
	for i, q := range qs {
		h := q * float64(n-1)
		lo := int64(math.Floor(h))
		a := vals[lo]
		if lo >= n-1 {
			out[i] = a
			continue
		}
		b := vals[lo+1]
		out[i] = a + (h-float64(lo))*(b-a)
	}
	return out
}

// collectMax: a bucket of at most this many values is collected.
// collectBudget: larger buckets are collected too, smallest first, while
// all the values one pass collects stay within this many (16 MB); the
// rest are counted by their next bits, and collected by a later pass. A
// pass over a day's tokens takes seconds, and the buckets of its median,
// p90 and p99 hold about a million values in all: collected at once, they
// need one pass, not two.
var (
	collectMax    int64 = 1 << 16 // variables for the tests
	collectBudget int64 = 1 << 21
)

// countLarge makes counted buckets of those of bs too large to collect.
func countLarge(bs []*bucket) {
	bySize := slices.SortedFunc(slices.Values(bs), func(a, b *bucket) int { return cmp.Compare(a.size, b.size) })
	var collected int64
	for _, b := range bySize {
		if b.size > collectMax && collected+b.size > collectBudget {
			b.counts = make([]int64, 1<<width(b.bits))
			continue
		}
		collected += b.size
	}
}

// key orders float64s as uint64s: negative values below positive ones.
func key(v float64) uint64 {
	b := math.Float64bits(v)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func unkey(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// target is an order statistic being narrowed: its key's top bits are
// prefix (bits of them), and it is the rank-th (0-based) of the count
// values with those bits.
type target struct {
	of     int64 // the rank among all values
	bits   int
	prefix uint64
	rank   int64
	count  int64
	in     *bucket // the bucket of this pass that holds it
}

// bucket is the values whose key's top bits are prefix, as one pass over
// the values sees them: counted by their next bits, or (counts nil)
// collected.
type bucket struct {
	bits   int
	prefix uint64
	size   int64 // how many values it holds
	counts []int64
	values []float64
}

func (b *bucket) holds(k uint64) bool { return k>>(64-b.bits) == b.prefix }

// orderStats are the values of the given ranks, ascending, among the
// finite values.
func (g *Gaps) orderStats(ranks []int64) map[int64]float64 {
	out := make(map[int64]float64, len(ranks))
	ts := make([]*target, len(ranks))
	for i, r := range ranks {
		ts[i] = &target{of: r, rank: r}
	}
	narrow(ts, g.finite, firstBits)
	for len(ts) > 0 {
		// One pass over the values: a bucket of at most collectMax values
		// is collected, a larger one counted by its next bits; the ranks in
		// one bucket share it (ts stays in order of rank).
		var bs []*bucket
		var open []*target
		for _, t := range ts {
			if t.bits == 64 { // one key: one value
				out[t.of] = unkey(t.prefix)
				continue
			}
			if n := len(bs); n > 0 && bs[n-1].bits == t.bits && bs[n-1].prefix == t.prefix {
				t.in = bs[n-1]
			} else {
				t.in = &bucket{bits: t.bits, prefix: t.prefix, size: t.count}
				bs = append(bs, t.in)
			}
			open = append(open, t)
		}
		if len(open) == 0 {
			break
		}
		countLarge(bs)
		g.each(func(_ int32, v, _ float64, _, k int64) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return
			}
			kv := key(v)
			for _, b := range bs {
				switch {
				case !b.holds(kv):
				case b.counts != nil:
					w := width(b.bits)
					b.counts[(kv>>(64-b.bits-w))&(1<<w-1)] += k
				default:
					for range k {
						b.values = append(b.values, v)
					}
				}
			}
		})
		ts = nil
		for i, t := range open {
			if t.in.counts == nil {
				out[t.of] = order.SelectKth(t.in.values, int(t.rank))
				continue
			}
			if i == 0 || open[i-1].in != t.in { // each bucket's ranks once, in order
				var same []*target
				for _, u := range open[i:] {
					if u.in == t.in {
						same = append(same, u)
					}
				}
				narrow(same, t.in.counts, width(t.bits))
			}
			ts = append(ts, t)
		}
	}
	return out
}

// narrow moves targets of one bucket, in order of rank, each into the
// bucket of its rank among counts (the values of their bucket counted by
// their next w bits), in one walk over counts (a million at first).
func narrow(ts []*target, counts []int64, w int) {
	var before int64
	i := 0
	for _, t := range ts {
		for ; i < len(counts); i++ {
			if t.rank < before+counts[i] {
				t.prefix, t.bits, t.rank, t.count = t.prefix<<w|uint64(i), t.bits+w, t.rank-before, counts[i]
				break
			}
			before += counts[i]
		}
	}
}

// firstBits: the first count of the values is by the top 20 bits of their
// keys (8 MB of counts).
const firstBits = 20

// width is how many more bits a bucket of bits known bits is counted by.
func width(bits int) int {
	return min(16, 64-bits)
}
