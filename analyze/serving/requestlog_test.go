package serving

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRequestLogRoundTrip: every field of any request comes back exact,
// in memory and spilled to disk, whatever its stamps (missing, far apart,
// at the ends of int64, client clocks far off).
func TestRequestLogRoundTrip(t *testing.T) {
	defer func(v int) { SpillAfter = v }(SpillAfter)
	for _, spillAfter := range []int{1 << 30, 0} {
		SpillAfter = spillAfter
		r := rand.New(rand.NewPCG(3, uint64(spillAfter)))
		stamp := func() int64 {
			switch r.IntN(6) {
			case 0:
				return 0 // missing
			case 1:
				return []int64{math.MinInt64, math.MaxInt64, -1, 1}[r.IntN(4)]
			case 2:
				return r.Int64() - r.Int64()
			}
			return 1_700_000_000_000_000_000 + r.Int64N(1e12)
		}
		count := func() int64 {
			if r.IntN(4) == 0 {
				return []int64{-1, math.MinInt64, math.MaxInt64, 0}[r.IntN(4)]
			}
			return r.Int64N(5000)
		}
		var want []Request
		var l requestLog
		for range 50_000 {
			q := Request{StartNs: stamp(), FirstTokenNs: stamp(), LastTokenNs: stamp(), EndNs: stamp(),
				ClientStartNs: stamp(), ClientFirstTokenNs: stamp(), ClientLastTokenNs: stamp(), ClientEndNs: stamp(),
				InputTokens: count(), OutputTokens: count(), StreamedTokens: count(),
				id: r.Int32(), use: 1 + r.Int32N(3), err: r.Int32N(3), allClient: r.IntN(2) == 0}
			if r.IntN(50) == 0 {
				q.use, q.err, q.id = math.MaxInt32, math.MaxInt32, math.MaxInt32
			}
			l.add(&q)
			want = append(want, q)
		}
		if spillAfter == 0 && l.sp == nil {
			t.Fatal("SpillAfter 0: nothing was spilled")
		}
		n := 0
		for i, got := range l.all() {
			if i != n || *got != want[i] {
				t.Fatalf("spill after %d: request %d (index %d):\n got %+v\nwant %+v", spillAfter, n, i, *got, want[n])
			}
			n++
		}
		if n != len(want) || l.err() != nil {
			t.Fatalf("spill after %d: %d requests read back, want %d (err %v)", spillAfter, n, len(want), l.err())
		}
		for i := range l.all() { // a caller may stop early
			if i == 10 {
				break
			}
		}
	}
}

// TestRequestLogSize: a request of a closed-loop run packs to a few
// dozen bytes, not the 112 of a Request.
func TestRequestLogSize(t *testing.T) {
	s := closedLoop(10_000, 32)
	if per := float64(s.reqs.size) / float64(s.Len()); per > 24 {
		t.Errorf("%.1f bytes a request", per)
	}
}
