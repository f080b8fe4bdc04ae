package serving

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/llem/llem/trace"
)

// randomTokens are n tokens in arrival order: stamps mostly rising with
// jitter of up to jitterNs backwards, client stamps on another clock (or
// none), and a few extreme values.
func randomTokens(r *rand.Rand, n int, jitterNs int64) []Token {
	out := make([]Token, n)
	t := int64(1_767_603_600_000_000_000)
	for i := range out {
		t += r.Int64N(2_000_000)
		ts := t
		if jitterNs > 0 {
			ts -= r.Int64N(jitterNs)
		}
		tk := Token{TimestampNs: ts, Req: r.Int32N(5000), Count: 1}
		switch r.IntN(10) {
		case 0: // no client stamp
		case 1:
			tk.ClientTimestampNs = r.Int64() - r.Int64() // anything at all
		default:
			tk.ClientTimestampNs = ts - 3_600_000_000_000 + r.Int64N(200_000)
		}
		switch r.IntN(20) {
		case 0:
			tk.Count = r.Int32N(64)
		case 1:
			tk.Count = -r.Int32()
		case 2:
			tk.Count = math.MaxInt32
		}
		out[i] = tk
	}
	return out
}

func stableSorted(tokens []Token) []Token {
	s := slices.Clone(tokens)
	slices.SortStableFunc(s, func(a, b Token) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	return s
}

func unpacked(c *Cursor) []Token {
	var out []Token
	for t, ok := c.Next(); ok; t, ok = c.Next() {
		out = append(out, t)
	}
	return out
}

// Every field of every token comes back exactly, extremes included.
func TestTokenLogRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, logBlock - 1, logBlock, logBlock + 1, 10*logBlock + 17} {
		want := stableSorted(randomTokens(r, n, 0))
		if n > 3 { // stamps as far apart as int64 allows
			want[0].TimestampNs, want[n-1].TimestampNs = math.MinInt64, math.MaxInt64
			want[1].ClientTimestampNs, want[2].ClientTimestampNs = math.MaxInt64, math.MinInt64
		}
		l := NewTokenLog(want)
		if got := unpacked(l.All()); !slices.Equal(got, want) {
			t.Fatalf("n=%d: tokens differ after packing", n)
		}
		if l.Len() != n {
			t.Errorf("n=%d: Len %d", n, l.Len())
		}
	}
}

// Range returns exactly the tokens a linear filter keeps, at block edges
// and between equal stamps.
func TestTokenLogRange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tokens := stableSorted(randomTokens(r, 5*logBlock+3, 0))
	for i := range tokens { // runs of equal stamps across block edges
		if i%7 < 3 {
			tokens[i].TimestampNs = tokens[i/7*7].TimestampNs
		}
	}
	tokens = stableSorted(tokens)
	l := NewTokenLog(tokens)
	rangeIsAFilter(t, tokens, func(a, b int64) []Token { return unpacked(l.Range(a, b)) })
}

// rangeIsAFilter checks that rangeOf(a, b) reads exactly the records
// (sorted by stamp) that a linear filter keeps, for windows that begin and
// end at block edges, at stamps of records and beside them, and at the
// ends of int64.
func rangeIsAFilter[T interface {
	comparable
	stamp() int64
}](t *testing.T, records []T, rangeOf func(a, b int64) []T) {
	t.Helper()
	stamps := []int64{math.MinInt64, records[0].stamp() - 1, math.MaxInt64}
	for _, k := range []int{0, 1, logBlock - 1, logBlock, logBlock + 1, 2*logBlock + 5, len(records) - 1} {
		stamps = append(stamps, records[k].stamp(), records[k].stamp()+1, records[k].stamp()-1)
	}
	for _, a := range stamps {
		for _, b := range stamps {
			var want []T
			for _, r := range records {
				if r.stamp() >= a && r.stamp() <= b {
					want = append(want, r)
				}
			}
			if got := rangeOf(a, b); !slices.Equal(got, want) {
				t.Fatalf("Range(%d, %d): %d records, want %d", a, b, len(got), len(want))
			}
		}
	}
}

// The Sorter gives what a stable sort by stamp gives, for tokens nearly
// in order (the tail), far out of order (the fallback) and in order.
func TestSorterIsAStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		n      int
		jitter int64
	}{{3 * sorterTail, 0}, {5 * sorterTail, 30_000_000}, {3 * sorterTail, 1 << 40}, {100, 1 << 40}} {
		in := randomTokens(r, tc.n, tc.jitter)
		for i := range in { // equal stamps, whose order a stable sort keeps
			if i%5 == 1 {
				in[i].TimestampNs = in[i-1].TimestampNs
			}
		}
		var s Sorter
		for _, tk := range in {
			s.Add(tk)
		}
		if got := unpacked(s.Log().All()); !slices.Equal(got, stableSorted(in)) {
			t.Errorf("n=%d jitter=%d: the sorter's order is not the stable sort's", tc.n, tc.jitter)
		}
	}
}

// Tokens grouped by request (a table written in another order) are
// sorted as a stable sort does, and soon by the fallback rather than by
// inserting each deep in the tail.
func TestSorterByRequest(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	var in []Token
	for req := range int32(3000) {
		ts := int64(req) * 50_000_000
		for range 100 {
			ts += r.Int64N(40_000_000)
			in = append(in, Token{TimestampNs: ts, Req: req, Count: 1})
		}
	}
	var s Sorter
	for _, tk := range in {
		s.Add(tk)
	}
	if s.all == nil {
		t.Error("the sorter kept inserting tokens grouped by request into its tail")
	}
	if got := unpacked(s.Log().All()); !slices.Equal(got, stableSorted(in)) {
		t.Error("tokens grouped by request: the sorter's order is not the stable sort's")
	}
}

func TestTokenLogAppendOutOfOrderPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a token earlier than the last")
		}
	}()
	l := &TokenLog{}
	l.Append(Token{TimestampNs: 10})
	l.Append(Token{TimestampNs: 9})
}

// BenchmarkTokenLog reports the bytes a token takes packed, on tokens
// like a serving run's (a thousand a second, client stamps on).
func BenchmarkTokenLog(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	tokens := stableSorted(randomTokens(r, 1<<20, 0))
	b.ResetTimer()
	var l *TokenLog
	for range b.N {
		l = NewTokenLog(tokens)
	}
	b.ReportMetric(float64(l.Bytes())/float64(len(tokens)), "bytes/token")
}

// Ids used again after their request ended, and failed requests, over
// many blocks of the log: each window's output is what the generator
// knows its tokens to be (the failed requests' counting nothing), and the
// ITL has a value per token of the requests started in the window.
func TestOutputTokensWithReusedIdsAndFailures(t *testing.T) {
	// With failures the running count is a pass of its own (index);
	// without, BuildLog takes the builder's, which must be the same.
	t.Run("failures", func(t *testing.T) { outputTokensCase(t, 8) })
	t.Run("none failed", func(t *testing.T) { outputTokensCase(t, 0) })
}

func outputTokensCase(t *testing.T, failOneIn int) {
	r := rand.New(rand.NewPCG(9, 10))
	type made struct {
		ts     int64
		count  int32
		failed bool
	}
	var evs []trace.Event
	var toks []Token
	var truth []made // per token, and per first_token (count 1)
	var tokFailed []bool
	ids := []string{}
	idx := map[string]int32{}
	const reqs = 1600
	ts := t0
	for k := range reqs {
		id := fmt.Sprintf("r%d", k%37) // each id used by ~11 requests in turn
		if _, ok := idx[id]; !ok {
			idx[id] = int32(len(ids))
			ids = append(ids, id)
		}
		failed := failOneIn > 0 && r.IntN(failOneIn) == 0
		ts += 1 + r.Int64N(5*ms)
		evs = append(evs, trace.Event{TimestampNs: ts, Kind: "request_start", RequestID: id})
		ts += 1 + r.Int64N(5*ms)
		evs = append(evs, trace.Event{TimestampNs: ts, Kind: "first_token", RequestID: id})
		truth = append(truth, made{ts, 1, failed})
		for range r.IntN(40) {
			ts += r.Int64N(2 * ms) // equal stamps too
			n := int32(1 + r.IntN(3))
			toks = append(toks, Token{TimestampNs: ts, Req: idx[id], Count: n})
			truth = append(truth, made{ts, n, failed})
			tokFailed = append(tokFailed, failed)
		}
		ts += 1 + r.Int64N(ms)
		e := trace.Event{TimestampNs: ts, Kind: "request_end", RequestID: id}
		if failed {
			e.Attrs = `{"error":"timeout"}`
		}
		evs = append(evs, e)
	}
	if len(toks) < 10*logBlock {
		t.Fatalf("only %d tokens: the test wants many blocks", len(toks))
	}
	s := Build(evs, toks, ids)
	if failOneIn == 0 {
		fromBuild := slices.Clone(s.cum)
		s.index()
		if !slices.Equal(fromBuild, s.cum) {
			t.Fatalf("the builder's running count differs from index's:\n%v\n%v", fromBuild, s.cum)
		}
	}
	for range 300 {
		a, b := t0+r.Int64N(ts-t0), t0+r.Int64N(ts-t0)
		if a > b {
			a, b = b, a
		}
		want := 0.0
		for _, m := range truth {
			if !m.failed && m.ts >= a && m.ts < b {
				want += float64(m.count)
			}
		}
		if got := s.OutputTokens(a, b); got != want {
			t.Fatalf("OutputTokens(%d, %d) = %v, want %v", a, b, got, want)
		}
	}
	if s.Len() != reqs {
		t.Errorf("%d requests, want %d", s.Len(), reqs)
	}
	l := s.Latency(t0, ts+1)
	wantITL := 0
	for i, tk := range toks { // failed requests are left out of latency
		if !tokFailed[i] {
			wantITL += int(tk.Count)
		}
	}
	if l.ITL.Len() != wantITL || len(l.ITL.Values()) != wantITL {
		t.Errorf("%d ITL values (%d listed), want %d", l.ITL.Len(), len(l.ITL.Values()), wantITL)
	}
}

// BenchmarkTokenLogRead is a pass over every token (ns/op per token): the
// loop that the ITL's passes, the request set and the output per window
// run over a serving run's tens of millions of tokens.
func BenchmarkTokenLogRead(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	tokens := stableSorted(randomTokens(r, 1<<20, 0))
	l := NewTokenLog(tokens)
	var sum int64
	for b.Loop() {
		c := l.All()
		for t, ok := c.Next(); ok; t, ok = c.Next() {
			sum += t.TimestampNs + int64(t.Req)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tokens)), "ns/token")
}

// A log that spilled its chunks to disk reads back exactly what it was
// given, whole, by ranges and from several readers at once, leaves no
// file behind, and reports a failed read instead of returning part of
// the tokens silently.
func TestTokenLogSpill(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func(v int) { SpillAfter = v }(SpillAfter)
	SpillAfter = 0
	r := rand.New(rand.NewPCG(5, 6))
	want := stableSorted(randomTokens(r, 300_000, 0))
	l := NewTokenLog(want)
	if l.sp == nil || len(l.sp.offs) < 3 {
		t.Fatalf("nothing spilled (%d chunks)", len(l.chunks))
	}
	if files, _ := os.ReadDir(tmp); len(files) != 0 {
		t.Errorf("spill file left in the temporary directory: %v", files)
	}
	if held, all := l.Bytes(), NewTokenLogKept(want).Bytes(); held*2 > all {
		t.Errorf("the spilled log holds %d bytes, the kept one %d", held, all)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			if got := unpacked(l.All()); !slices.Equal(got, want) {
				t.Errorf("reader %d: tokens differ after spilling", g)
			}
			for k := g; k < len(want); k += 9973 {
				a, b := want[k].TimestampNs, want[min(k+5000, len(want)-1)].TimestampNs
				lo, _ := slices.BinarySearchFunc(want, a, func(x Token, t int64) int { return cmp.Compare(x.TimestampNs, t) })
				hi, _ := slices.BinarySearchFunc(want, b+1, func(x Token, t int64) int { return cmp.Compare(x.TimestampNs, t) })
				if got := unpacked(l.Range(a, b)); !slices.Equal(got, want[lo:hi]) {
					t.Errorf("reader %d: Range(%d, %d) differs after spilling", g, a, b)
				}
			}
		})
	}
	wg.Wait()
	// A range that starts at a chunk's first token: Range reads it, from
	// the next spilled chunk into the reader's buffer, to see that it is
	// in range, then goes back to a copy of the reader that read the
	// chunk before from the same buffer.
	c, chunk := l.All(), -1
	for i := 0; ; i++ {
		if _, ok := c.Next(); !ok {
			break
		}
		if c.r.chunk == chunk {
			continue
		}
		chunk = c.r.chunk
		a, b := want[i].TimestampNs, want[min(i+100, len(want)-1)].TimestampNs
		lo, _ := slices.BinarySearchFunc(want, a, func(x Token, t int64) int { return cmp.Compare(x.TimestampNs, t) })
		hi, _ := slices.BinarySearchFunc(want, b+1, func(x Token, t int64) int { return cmp.Compare(x.TimestampNs, t) })
		if got := unpacked(l.Range(a, b)); !slices.Equal(got, want[lo:hi]) {
			t.Errorf("Range from chunk %d's first token (%d) differs after spilling", chunk, i)
		}
	}
	if chunk < 3 {
		t.Fatalf("read %d chunks", chunk+1)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	// The file goes away under the log: a pass stops, and says so.
	l.sp.f.Close()
	if got := unpacked(l.All()); len(got) >= len(want) {
		t.Fatalf("read %d tokens from a log whose file is gone", len(got))
	}
	if l.Err() == nil {
		t.Fatal("no error after a failed read")
	}
}

// NewTokenLogKept is NewTokenLog with spilling off.
func NewTokenLogKept(tokens []Token) *TokenLog {
	l := &TokenLog{chunked: chunked{noSpill: true}}
	for _, t := range tokens {
		l.Append(t)
	}
	return l
}
