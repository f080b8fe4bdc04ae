package serving

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llem/llem/internal/order"
	"github.com/llem/llem/trace"
)

// gappySet has requests whose tokens come with gaps from spread, some
// several to an event, some on whole milliseconds (ties).
func gappySet(r *rand.Rand, reqs int, spread func() int64) (*Set, int64) {
	var evs []trace.Event
	var toks []Token
	var ids []string
	ts := t0
	for k := range reqs {
		id := fmt.Sprintf("q%d", k)
		ids = append(ids, id)
		ts += 1 + r.Int64N(ms)
		evs = append(evs, trace.Event{TimestampNs: ts, Kind: "request_start", RequestID: id})
		at := ts + 1 + r.Int64N(ms)
		evs = append(evs, trace.Event{TimestampNs: at, Kind: "first_token", RequestID: id})
		for range 1 + r.IntN(60) {
			at += spread()
			toks = append(toks, Token{TimestampNs: at, Req: int32(k), Count: int32(1 + r.IntN(3)/2)})
		}
		evs = append(evs, trace.Event{TimestampNs: at + 1, Kind: "request_end", RequestID: id})
	}
	return Build(sortEvents(evs), stableSorted(toks), ids), ts
}

// Gaps.Quantiles is order.QuantileSelect over every value, bit for bit:
// with buckets collected at once and, with a small collectMax, narrowed
// over several passes, or some collected within the budget and others
// narrowed; with requests counted in two pooled windows.
func TestGapsQuantilesAreExact(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	spreads := map[string]func() int64{
		"smooth":    func() int64 { return 20*ms + r.Int64N(10*ms) },
		"whole ms":  func() int64 { return (20 + r.Int64N(3)) * ms },
		"one value": func() int64 { return 25 * ms },
		"tails":     func() int64 { return int64(float64(ms) * math.Exp(3*r.NormFloat64())) },
	}
	defer func(c, b int64) { collectMax, collectBudget = c, b }(collectMax, collectBudget)
	for name, spread := range spreads {
		for _, cm := range [][2]int64{{1 << 16, 1 << 21}, {50, 50}, {50, 1500}} {
			collectMax, collectBudget = cm[0], cm[1]
			s, end := gappySet(r, 300, spread)
			mid := t0 + (end-t0)/2
			l := s.PooledLatency([][2]int64{{t0, end + 1}, {t0, mid}}) // the first half twice
			vals := l.ITL.Values()
			if len(vals) != l.ITL.Len() || len(vals) < 1000 {
				t.Fatalf("%s: %d values, Len %d", name, len(vals), l.ITL.Len())
			}
			qs := []float64{0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1}
			got := l.ITL.Quantiles(qs...)
			for i, q := range qs {
				if want := order.QuantileSelect(vals, q); math.Float64bits(got[i]) != math.Float64bits(want) {
					t.Errorf("%s, collect %d: q=%v: %v, QuantileSelect %v", name, cm, q, got[i], want)
				}
			}
		}
	}
}

func TestGapsWithoutValues(t *testing.T) {
	var g *Gaps
	if g.Len() != 0 {
		t.Error("nil Gaps has values")
	}
	s := Build(nil, nil, nil)
	l := s.PooledLatency([][2]int64{{0, 1}})
	if q := l.ITL.Quantiles(0.5); l.ITL.Len() != 0 || !math.IsNaN(q[0]) {
		t.Errorf("no tokens: Len %d, median %v", l.ITL.Len(), q[0])
	}
}
