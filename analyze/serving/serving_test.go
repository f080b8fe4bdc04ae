package serving

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/llem/llem/trace"
)

// t0 is an arbitrary epoch stamp: 0 means "missing" in Request, so stamps
// never start at 0.
const (
	t0 = int64(1_700_000_000_000_000_000)
	ms = int64(1_000_000)
	s1 = 1000 * ms
)

type evOpt func(*trace.Event)

func i64(v int64) *int64 { return &v }

// cts sets the client stamp, as ms after t0.
func cts(msAfter int64) evOpt {
	return func(e *trace.Event) { e.ClientTimestampNs = i64(t0 + msAfter*ms) }
}
func in(n int64) evOpt    { return func(e *trace.Event) { e.InputTokens = i64(n) } }
func out(n int64) evOpt   { return func(e *trace.Event) { e.OutputTokens = i64(n) } }
func attr(a string) evOpt { return func(e *trace.Event) { e.Attrs = a } }

// ev is an event of kind for request id at t0 + at ms (arrival).
func ev(kind, id string, at int64, opts ...evOpt) trace.Event {
	e := trace.Event{TimestampNs: t0 + at*ms, GPU: trace.GPUAll, Kind: kind, RequestID: id, Source: "client"}
	for _, o := range opts {
		o(&e)
	}
	return e
}

// tok is a token event: arrival and client stamps in ms after t0 (client
// 0: none) and its count.
type tok struct {
	id     string
	at, ct int64
	n      int32
}

// tokens turns toks into Build's Token slice and id table, sorted by
// arrival stamp.
func tokens(toks ...tok) ([]Token, []string) {
	var ids []string
	idx := map[string]int32{}
	out := make([]Token, 0, len(toks))
	for _, t := range toks {
		i, ok := idx[t.id]
		if !ok {
			i = int32(len(ids))
			ids = append(ids, t.id)
			idx[t.id] = i
		}
		var c int64
		if t.ct != 0 {
			c = t0 + t.ct*ms
		}
		out = append(out, Token{TimestampNs: t0 + t.at*ms, ClientTimestampNs: c, Req: i, Count: t.n})
	}
	slices.SortStableFunc(out, func(a, b Token) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	return out, ids
}

func sortEvents(evs []trace.Event) []trace.Event {
	slices.SortStableFunc(evs, func(a, b trace.Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	return evs
}

// requests are the set's requests, copied out of the packed log.
func requests(s *Set) []Request {
	var out []Request
	for _, r := range s.Requests() {
		out = append(out, *r)
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func nearSlice(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !near(a[i], b[i], 1e-12) {
			return false
		}
	}
	return true
}

// exercise calls every query so that a bad input shows up as a panic.
func exercise(s *Set) {
	s.OutputTokens(math.MinInt64, math.MaxInt64)
	s.OutputTokens(t0, t0+s1)
	s.Ended(math.MinInt64, math.MaxInt64)
	s.Latency(math.MinInt64, math.MaxInt64)
	s.InFlight()
	s.MaxConcurrency()
	for c := -1; c <= 3; c++ {
		s.SteadyWindowIn(math.MinInt64, math.MaxInt64, c)
	}
}

// mixedSet: a streamed request with client stamps on every event, a
// non-streamed one without client stamps, a streamed one with one client
// stamp missing, one that never ends, one that never started, and one
// that ended without a first token. The client clock is offset from the
// arrival clock, and by different amounts per event, so every latency
// tells which clock it came from.
func mixedSet() *Set {
	s, _ := mixedSetIDs()
	return s
}

// mixedSetIDs is mixedSet and the id table its requests are named by.
func mixedSetIDs() (*Set, []string) {
	evs := sortEvents([]trace.Event{
		// s: streamed, every event client-stamped.
		ev("request_start", "s", 100, cts(10), in(5)),
		ev("first_token", "s", 150, cts(40)),
		ev("request_end", "s", 200, cts(95), out(6)),
		// n: not streamed (first_token, then output_tokens in request_end), no client stamps.
		ev("request_start", "n", 300, in(7)),
		ev("first_token", "n", 340),
		ev("request_end", "n", 500, out(11)),
		// m: streamed, every event client-stamped except one token.
		ev("request_start", "m", 600, cts(610)),
		ev("first_token", "m", 620, cts(625)),
		ev("request_end", "m", 700, cts(705), in(3), out(2)),
		// u: started, first token, never ended.
		ev("request_start", "u", 800, cts(800)),
		ev("first_token", "u", 850, cts(850)),
		// x: no request_start.
		ev("first_token", "x", 900),
		ev("request_end", "x", 950, out(1)),
		// e: ended without a first token (and no output_tokens).
		ev("request_start", "e", 960),
		ev("request_end", "e", 990),
		// Other kinds are ignored.
		{TimestampNs: t0 + 50*ms, Kind: "phase_start", Name: "measure", Source: "client"},
		{TimestampNs: t0 + 999*ms, Kind: "mark", Name: "done", RequestID: "s", Source: "client"},
	})
	toks, ids := tokens(
		tok{"s", 170, 60, 2},
		tok{"s", 190, 90, 3},
		tok{"m", 640, 0, 1},
	)
	return Build(evs, toks, ids), idTable(evs, ids)
}

// idTable is the id table that Build makes of the events and the tokens'
// ids: what Request.ID names requests by.
func idTable(events []trace.Event, ids []string) []string {
	_, all := RequestEvents(events, ids)
	return all
}

func TestBuildRequests(t *testing.T) {
	s, ids := mixedSetIDs()
	at := func(msAfter int64) int64 { return t0 + msAfter*ms }
	want := []Request{
		{StartNs: at(100), FirstTokenNs: at(150), LastTokenNs: at(190), EndNs: at(200),
			ClientStartNs: at(10), ClientFirstTokenNs: at(40), ClientLastTokenNs: at(90), ClientEndNs: at(95),
			InputTokens: 5, OutputTokens: 6, StreamedTokens: 6, allClient: true},
		{StartNs: at(300), FirstTokenNs: at(340), LastTokenNs: at(340), EndNs: at(500),
			InputTokens: 7, OutputTokens: 11, StreamedTokens: 1},
		{StartNs: at(600), FirstTokenNs: at(620), LastTokenNs: at(640), EndNs: at(700),
			ClientStartNs: at(610), ClientFirstTokenNs: at(625), ClientLastTokenNs: 0, ClientEndNs: at(705),
			InputTokens: 3, OutputTokens: 2, StreamedTokens: 2},
		{StartNs: at(800), FirstTokenNs: at(850), LastTokenNs: at(850),
			ClientStartNs: at(800), ClientFirstTokenNs: at(850), ClientLastTokenNs: at(850),
			InputTokens: -1, OutputTokens: -1, StreamedTokens: 1, allClient: true},
		{FirstTokenNs: at(900), LastTokenNs: at(900), EndNs: at(950),
			InputTokens: -1, OutputTokens: 1, StreamedTokens: 1},
		{StartNs: at(960), EndNs: at(990), InputTokens: -1, OutputTokens: -1},
	}
	wantIDs := []string{"s", "n", "m", "u", "x", "e"}
	if s.Len() != len(want) {
		t.Fatalf("%d requests, want %d: %+v", s.Len(), len(want), requests(s))
	}
	for i, w := range want {
		g := requests(s)[i]
		if id := g.ID(ids); id != wantIDs[i] {
			t.Errorf("request %d: id %q, want %q", i, id, wantIDs[i])
		}
		g.id, g.use, g.seq = 0, 0, 0 // the id's indexes and the order of creation, internal
		if g != w {
			t.Errorf("request %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	wantProblems := []string{
		"1 x requests without request_end (unfinished, or the run was cut)",
		"1 x requests without request_start (latency needs it)",
	}
	if !slices.Equal(s.Problems, wantProblems) {
		t.Errorf("problems %q, want %q", s.Problems, wantProblems)
	}
}

func TestLatency(t *testing.T) {
	s := mixedSet()
	// s (client clock): TTFT 40-10, E2E 95-10, TPOT (90-40)/(6-1) ms; the
	//   arrival clock would give 50, 100, 8. ITL: its token events at 60
	//   (2 tokens) and 90 (3 tokens) after the first token at 40: five
	//   gaps of 10 ms.
	// n (arrival): TTFT 340-300, E2E 500-300, TPOT (500-340)/(11-1) ms
	//   (no token events: from the end and output_tokens); no ITL.
	// m (arrival, one token had no client stamp): TTFT 620-600,
	//   E2E 700-600, TPOT and ITL (640-620)/(2-1); the client clock would
	//   give 15.
	// u: TTFT 850-800 only. x: never started, not counted. e: E2E only.
	tests := []struct {
		name                 string
		from, to             int64 // ms after t0
		ttft, e2e, tpot, itl []float64
	}{
		{"all", 0, 1000,
			[]float64{0.030, 0.040, 0.020, 0.050},
			[]float64{0.085, 0.200, 0.100, 0.030},
			[]float64{0.010, 0.016, 0.020},
			[]float64{0.010, 0.010, 0.010, 0.010, 0.010, 0.020}},
		{"window opens at a start: counted", 300, 600,
			[]float64{0.040}, []float64{0.200}, []float64{0.016}, nil},
		{"window closes at a start: not counted", 301, 600, nil, nil, nil, nil},
		{"start in, rest after the window", 599, 601,
			[]float64{0.020}, []float64{0.100}, []float64{0.020}, []float64{0.020}},
		{"events in the window, start before", 150, 250, nil, nil, nil, nil},
		{"before everything", -100, 100, nil, nil, nil, nil},
		{"empty window", 300, 300, nil, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := s.Latency(t0+tc.from*ms, t0+tc.to*ms)
			if !nearSlice(l.TTFT, tc.ttft) || !nearSlice(l.E2E, tc.e2e) || !nearSlice(l.TPOT, tc.tpot) || !nearSlice(sorted(l.ITL.Values()), sorted(tc.itl)) {
				t.Errorf("got TTFT %v E2E %v TPOT %v ITL %v\nwant TTFT %v E2E %v TPOT %v ITL %v", l.TTFT, l.E2E, l.TPOT, l.ITL,
					tc.ttft, tc.e2e, tc.tpot, tc.itl)
			}
		})
	}
}

func TestOutputTokensAndEnded(t *testing.T) {
	evs := sortEvents([]trace.Event{
		// a: streamed: 1 at 110, 2 at 120, 3 at 130.
		ev("request_start", "a", 100),
		ev("first_token", "a", 110),
		ev("request_end", "a", 140, out(6)),
		// b: no first_token, no token events: 10 over [200, 300].
		ev("request_start", "b", 200),
		ev("request_end", "b", 300, out(10)),
		// c: first_token only: 1 at 400, the other 10 over [400, 500].
		ev("request_start", "c", 390),
		ev("first_token", "c", 400),
		ev("request_end", "c", 500, out(11)),
		// d: first_token only and output_tokens 1: 1 at 610, nothing spread.
		ev("request_start", "d", 600),
		ev("first_token", "d", 610),
		ev("request_end", "d", 620, out(1)),
		// e: starts and ends at the same stamp: 3 at 700.
		ev("request_start", "e", 700),
		ev("request_end", "e", 700, out(3)),
		// f: request_end alone: 4 at 800.
		ev("request_end", "f", 800, out(4)),
		// g: no output_tokens, no tokens: nothing.
		ev("request_start", "g", 900),
		ev("request_end", "g", 950),
	})
	toks, ids := tokens(tok{"a", 120, 0, 2}, tok{"a", 130, 0, 3})
	s := Build(evs, toks, ids)

	tests := []struct {
		from, to int64 // ms after t0: the window [from, to)
		tokens   float64
		ended    int
	}{
		{0, 2000, 6 + 10 + 11 + 1 + 3 + 4, 7},
		{110, 120, 1, 0},      // a's first token at the start is in...
		{100, 110, 0, 0},      // ...and at the end is out
		{110, 121, 3, 0},      // a token event counts its Count
		{120, 130, 2, 0},      //
		{130, 131, 3, 0},      //
		{131, 140, 0, 0},      //
		{140, 141, 0, 1},      // a's end
		{200, 250, 5, 0},      // half of b
		{250, 260, 1, 0},      // a tenth of b
		{290, 310, 1, 1},      // b's last tenth; b ends at 300
		{300, 301, 0, 1},      // b's spread ends at 300: nothing at 300 itself
		{399, 400, 0, 0},      //
		{400, 401, 1.1, 0},    // c's first token and a hundredth of the rest
		{450, 500, 5, 0},      // half of c's rest
		{500, 600, 0, 1},      // c ends at 500
		{610, 611, 1, 0},      // d: its first token only
		{611, 620, 0, 0},      //
		{699, 700, 0, 0},      //
		{700, 701, 3, 1},      // e: all at once
		{800, 801, 4, 1},      // f: at its end
		{900, 1000, 0, 1},     // g
		{300, 700, 11 + 1, 3}, // c and d; e at 700 is out
		{300, 300, 0, 0},      // empty
		{500, 400, 0, 0},      // reversed
		{-100, 100, 0, 0},     // before everything
	}
	for _, tc := range tests {
		a, b := t0+tc.from*ms, t0+tc.to*ms
		if got := s.OutputTokens(a, b); !near(got, tc.tokens, 1e-9) {
			t.Errorf("OutputTokens[%d, %d) ms = %v, want %v", tc.from, tc.to, got, tc.tokens)
		}
		if tc.from < tc.to {
			if got := s.Ended(a, b); got != tc.ended {
				t.Errorf("Ended[%d, %d) ms = %d, want %d", tc.from, tc.to, got, tc.ended)
			}
		}
	}
	if len(s.Problems) != 1 || s.Problems[0] != "1 x requests without request_start (latency needs it)" {
		t.Errorf("problems %q: want only f's missing start", s.Problems)
	}
}

// TestPartitionSums: over any partition of the time range into windows,
// the output tokens add up to every token generated and Ended to every
// request that ended.
func TestPartitionSums(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5e7))
			var evs []trace.Event
			var toks []Token
			var ids []string
			var total float64
			ended := 0
			lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
			stamp := func(ts int64) int64 {
				lo, hi = min(lo, ts), max(hi, ts)
				return ts
			}
			n := 1 + rng.IntN(300)
			for r := range n {
				id := fmt.Sprintf("r%d", r)
				ts := stamp(t0 + rng.Int64N(10*s1))
				step := func() int64 { ts = stamp(ts + 1 + rng.Int64N(50*ms)); return ts }
				evs = append(evs, trace.Event{TimestampNs: ts, Kind: "request_start", RequestID: id})
				var streamed int64
				hasFirst := rng.IntN(5) > 0
				if hasFirst {
					evs = append(evs, trace.Event{TimestampNs: step(), Kind: "first_token", RequestID: id})
					streamed++
				}
				tokenEvents := 0
				if rng.IntN(2) == 0 {
					tokenEvents = rng.IntN(40)
					ids = append(ids, id)
					for range tokenEvents {
						c := 1 + rng.Int32N(4)
						toks = append(toks, Token{TimestampNs: step(), Req: int32(len(ids) - 1), Count: c})
						streamed += int64(c)
					}
				}
				switch rng.IntN(4) {
				case 0: // never ends: what was streamed
					total += float64(streamed)
					continue
				case 1: // ends without output_tokens
					evs = append(evs, trace.Event{TimestampNs: step(), Kind: "request_end", RequestID: id})
					total += float64(streamed)
				default:
					var o int64
					if tokenEvents > 0 {
						o = streamed // as a well-behaved client reports
					} else {
						o = rng.Int64N(200)
					}
					evs = append(evs, trace.Event{TimestampNs: step(), Kind: "request_end", RequestID: id, OutputTokens: &o})
					// Without token events the output_tokens are what was generated.
					total += float64(max(o, streamed))
				}
				ended++
			}
			sortEvents(evs)
			slices.SortStableFunc(toks, func(a, b Token) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
			s := Build(evs, toks, ids)
			if s.Len() != n {
				t.Fatalf("%d requests, want %d", s.Len(), n)
			}

			// A random partition of [lo, hi+1) into windows.
			cuts := []int64{lo, hi + 1}
			for range rng.IntN(500) {
				cuts = append(cuts, lo+rng.Int64N(hi+1-lo))
			}
			slices.Sort(cuts)
			cuts = slices.Compact(cuts)
			var sum float64
			sumEnded := 0
			for i := 1; i < len(cuts); i++ {
				sum += s.OutputTokens(cuts[i-1], cuts[i])
				sumEnded += s.Ended(cuts[i-1], cuts[i])
			}
			if !near(sum, total, 1e-6) {
				t.Errorf("output tokens over %d windows: %v, want %v", len(cuts)-1, sum, total)
			}
			if whole := s.OutputTokens(lo, hi+1); !near(whole, total, 1e-6) {
				t.Errorf("output tokens over the whole range: %v, want %v", whole, total)
			}
			if sumEnded != ended {
				t.Errorf("ended over the partition: %d, want %d", sumEnded, ended)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	type check func(t *testing.T, s *Set, idTable []string)
	ids := func(want ...string) check {
		return func(t *testing.T, s *Set, idTable []string) {
			var got []string
			for _, r := range requests(s) {
				got = append(got, r.ID(idTable))
			}
			if !slices.Equal(got, want) {
				t.Errorf("request ids %q, want %q", got, want)
			}
		}
	}
	noStart := "requests without request_start (latency needs it)"
	noEnd := "requests without request_end (unfinished, or the run was cut)"
	tokenUnknown := "token events for a request that had not started or had ended"
	mismatch := "requests whose request_end output_tokens differs from the tokens streamed (the streamed count is used)"
	tests := []struct {
		name     string
		events   []trace.Event
		toks     []tok
		problems []string
		checks   []check
	}{
		{name: "nothing"},
		{name: "clean", events: []trace.Event{
			ev("request_start", "a", 1), ev("first_token", "a", 2), ev("request_end", "a", 4, out(3)),
		}, toks: []tok{{"a", 3, 0, 2}}},
		{name: "no start", events: []trace.Event{
			ev("first_token", "a", 2), ev("request_end", "a", 3),
			ev("request_end", "b", 4),
		}, problems: []string{"2 x " + noStart}},
		{name: "no end", events: []trace.Event{
			ev("request_start", "a", 1), ev("first_token", "a", 2),
			ev("request_start", "b", 3),
		}, problems: []string{"2 x " + noEnd}},
		{name: "neither start nor end: counted once, as no start", events: []trace.Event{
			ev("first_token", "a", 2),
		}, problems: []string{"1 x " + noStart}},
		{name: "duplicate first_token", events: []trace.Event{
			ev("request_start", "a", 1), ev("first_token", "a", 2), ev("first_token", "a", 3), ev("request_end", "a", 4),
		}, problems: []string{"1 x a second first_token for the same request (ignored)"},
			checks: []check{func(t *testing.T, s *Set, _ []string) {
				if r := requests(s)[0]; r.FirstTokenNs != t0+2*ms || r.StreamedTokens != 1 {
					t.Errorf("first token %d, streamed %d: want the first one kept, counted once", r.FirstTokenNs-t0, r.StreamedTokens)
				}
			}}},
		{name: "duplicate request_end", events: []trace.Event{
			ev("request_start", "a", 1), ev("request_end", "a", 2, out(5)), ev("request_end", "a", 3, out(9)), ev("request_end", "a", 4),
		}, problems: []string{"2 x a second request_end for the same request (ignored)"},
			checks: []check{func(t *testing.T, s *Set, _ []string) {
				if r := requests(s)[0]; r.EndNs != t0+2*ms || r.OutputTokens != 5 {
					t.Errorf("end %d, output %d: want the first one kept", r.EndNs-t0, r.OutputTokens)
				}
				if n := s.Ended(math.MinInt64, math.MaxInt64); n != 1 {
					t.Errorf("Ended %d, want 1", n)
				}
			}}},
		{name: "id reused after its end", events: []trace.Event{
			ev("request_start", "a", 1), ev("first_token", "a", 2), ev("request_end", "a", 3, out(1)),
			ev("request_start", "a", 10), ev("first_token", "a", 11), ev("request_end", "a", 13, out(4)),
			ev("request_start", "a", 20), ev("request_end", "a", 21),
		}, toks: []tok{{"a", 12, 0, 3}},
			checks: []check{ids("a", "a#2", "a#3"), func(t *testing.T, s *Set, _ []string) {
				if r := requests(s)[1]; r.StartNs != t0+10*ms || r.StreamedTokens != 4 || r.LastTokenNs != t0+12*ms {
					t.Errorf("a#2 = %+v: want the token in it", r)
				}
				if r := requests(s)[0]; r.StreamedTokens != 1 {
					t.Errorf("a = %+v: want only its first token", r)
				}
			}}},
		{name: "request_start again before the end", events: []trace.Event{
			ev("request_start", "a", 1), ev("request_start", "a", 2), ev("request_end", "a", 3),
		}, problems: []string{
			"1 x request_start for a request id that had not ended (the earlier one is left without an end)",
			"1 x " + noEnd,
		}, checks: []check{ids("a", "a#2")}},
		{name: "tokens for an unknown request", toks: []tok{{"z", 1, 0, 2}, {"z", 2, 0, 3}},
			problems: []string{"2 x " + tokenUnknown, "1 x " + noStart},
			checks: []check{ids("z"), func(t *testing.T, s *Set, _ []string) {
				if got := s.OutputTokens(math.MinInt64, math.MaxInt64); got != 5 {
					t.Errorf("output tokens %v, want 5 (still counted)", got)
				}
			}}},
		{name: "token after the end", events: []trace.Event{
			ev("request_start", "a", 1), ev("request_end", "a", 2),
		}, toks: []tok{{"a", 3, 0, 1}}, problems: []string{"1 x " + tokenUnknown}},
		{name: "output_tokens differs from the streamed tokens", events: []trace.Event{
			ev("request_start", "a", 1), ev("first_token", "a", 2), ev("request_end", "a", 4, out(10)),
			ev("request_start", "b", 5), ev("first_token", "b", 6), ev("request_end", "b", 8, out(2)),
			ev("request_start", "c", 9), ev("first_token", "c", 10), ev("request_end", "c", 11, out(0)),
		}, toks: []tok{{"a", 3, 0, 3}, {"b", 7, 0, 5}},
			problems: []string{"3 x " + mismatch},
			checks: []check{func(t *testing.T, s *Set, _ []string) {
				// The streamed count is used: 4 + 6 + 1.
				if got := s.OutputTokens(math.MinInt64, math.MaxInt64); got != 11 {
					t.Errorf("output tokens %v, want 11", got)
				}
			}}},
		{name: "first_token only with larger output_tokens: no mismatch", events: []trace.Event{
			ev("request_start", "a", 1), ev("first_token", "a", 2), ev("request_end", "a", 4, out(10)),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			toks, tids := tokens(tc.toks...)
			evs := slices.Clone(tc.events)
			sortEvents(evs)
			s := Build(evs, toks, tids)
			exercise(s)
			if !slices.Equal(s.Problems, tc.problems) {
				t.Errorf("problems %q, want %q", s.Problems, tc.problems)
			}
			for _, c := range tc.checks {
				c(t, s, idTable(evs, tids))
			}
		})
	}
}

// closedLoop: n requests, c at a time, each 1 s long; slot k's first
// request starts at k x 100 ms and the next in a slot starts at the stamp
// its predecessor ends. Request i starts at (i%c) x 100 ms + (i/c) s, has
// its first token 200 ms later and ends 1 s after its start with 32 output
// tokens; the request_end comes before the next request_start at the same
// stamp.
func closedLoop(n, c int) *Set {
	start := func(i int) int64 { return int64(i%c)*100 + int64(i/c)*1000 }
	var evs []trace.Event
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		evs = append(evs,
			ev("request_start", id, start(i)),
			ev("first_token", id, start(i)+200),
			ev("request_end", id, start(i)+1000, out(32)))
	}
	return Build(sortEvents(evs), nil, nil)
}

func TestConcurrency(t *testing.T) {
	if s := closedLoop(100, 8); s.MaxConcurrency() != 8 {
		t.Errorf("closed loop of 8: MaxConcurrency %d", s.MaxConcurrency())
	}
	tests := []struct {
		name   string
		events []trace.Event
		toks   []tok
		max    int
		spans  [][2]int64 // ms after t0
	}{
		{"empty", nil, nil, 0, nil},
		{"touching: no overlap, one span", []trace.Event{
			ev("request_start", "a", 100), ev("request_end", "a", 200),
			ev("request_start", "b", 200), ev("request_end", "b", 300),
		}, nil, 1, [][2]int64{{100, 300}}},
		{"overlapping and apart", []trace.Event{
			ev("request_start", "a", 100), ev("request_end", "a", 200),
			ev("request_start", "b", 150), ev("request_end", "b", 300),
			ev("request_start", "c", 160), ev("request_end", "c", 170),
			ev("request_start", "d", 500), ev("request_end", "d", 600),
		}, nil, 3, [][2]int64{{100, 300}, {500, 600}}},
		{"no start: from its first stamp; no end: to the last stamp of the set", []trace.Event{
			ev("request_start", "a", 100), ev("request_end", "a", 200),
			ev("first_token", "b", 400), ev("request_end", "b", 450),
			ev("request_start", "c", 700),
		}, []tok{{"c", 750, 0, 1}}, 1, [][2]int64{{100, 200}, {400, 450}, {700, 750}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			toks, ids := tokens(tc.toks...)
			s := Build(sortEvents(slices.Clone(tc.events)), toks, ids)
			if got := s.MaxConcurrency(); got != tc.max {
				t.Errorf("MaxConcurrency %d, want %d", got, tc.max)
			}
			var want [][2]int64
			for _, sp := range tc.spans {
				want = append(want, [2]int64{t0 + sp[0]*ms, t0 + sp[1]*ms})
			}
			if got := s.InFlight(); !slices.Equal(got, want) {
				t.Errorf("InFlight %v, want %v", got, want)
			}
		})
	}
}

func TestSteadyWindow(t *testing.T) {
	// closedLoop(100, 8): first tokens at (i%8) x 100 + (i/8) x 1000 + 200
	// ms and ends at (i%8) x 100 + (i/8) x 1000 + 1000 ms, both increasing
	// with i. C = 8 opens at the 8th first token (i = 7): 700 + 200 = 900
	// ms, and closes at the (100-8-1) = 91st end (i = 90: slot 2, round
	// 11): 200 + 11000 + 1000 = 12200 ms. With maxNumSeqs 4: the 4th
	// first token (i = 3) 500 ms, the 95th end (i = 94: slot 6, round 11)
	// 600 + 11000 + 1000 = 12600 ms.
	tests := []struct {
		name          string
		n, c, maxSeqs int
		from, to      int64 // ms after t0
		wantC         int
		ok            bool
	}{
		{"detected concurrency", 100, 8, 0, 900, 12200, 8, true},
		{"negative maxNumSeqs: detected", 100, 8, -1, 900, 12200, 8, true},
		{"maxNumSeqs overrides", 100, 8, 4, 500, 12600, 4, true},
		{"one request", 1, 1, 0, 0, 0, 1, false},
		// N - C - 1 = 0: no request has to finish, no window.
		{"exactly C+1 requests", 9, 8, 0, 0, 0, 8, false},
		// N = 10, C = 8: opens at 900 ms, closes at the 1st end (1000 ms).
		{"C+2 requests", 10, 8, 0, 900, 1000, 8, true},
		// C = 3 from closedLoop(6, 3): opens at the 3rd first token (400
		// ms), closes at the 2nd end (1100 ms).
		{"small loop", 6, 3, 0, 400, 1100, 3, true},
		{"maxNumSeqs above the first tokens", 100, 8, 101, 0, 0, 101, false},
		// C = 20 of 100 in a loop of 8: opens at the 20th first token
		// (i = 19: 300 + 2000 + 200 = 2500 ms), closes at the 79th end
		// (i = 78: 600 + 9000 + 1000 = 10600 ms).
		{"maxNumSeqs above the concurrency", 100, 8, 20, 2500, 10600, 20, true},
		// C = 49 of 100: opens at i = 48 (0 + 6000 + 200 = 6200 ms) and
		// would close at the 50th end (i = 49: 100 + 6000 + 1000 = 7100 ms).
		{"C near N/2", 100, 8, 49, 6200, 7100, 49, true},
		// C = 60: opens at i = 59 (300 + 7000 + 200 = 7500), closes at the
		// 39th end (i = 38: 600 + 4000 + 1000 = 5600) before it opens.
		{"closes before it opens", 100, 8, 60, 0, 0, 60, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := closedLoop(tc.n, tc.c)
			a, b, c, ok := s.SteadyWindowIn(math.MinInt64, math.MaxInt64, tc.maxSeqs)
			if ok != tc.ok || c != tc.wantC {
				t.Fatalf("SteadyWindowIn(all, %d) = ok %v, C %d; want ok %v, C %d", tc.maxSeqs, ok, c, tc.ok, tc.wantC)
			}
			if ok && (a != t0+tc.from*ms || b != t0+tc.to*ms) {
				t.Errorf("window [%d, %d] ms, want [%d, %d]", (a-t0)/ms, (b-t0)/ms, tc.from, tc.to)
			}
		})
	}
	if _, _, _, ok := Build(nil, nil, nil).SteadyWindowIn(math.MinInt64, math.MaxInt64, 0); ok {
		t.Error("no requests: want ok false")
	}
}

// wholeSetWindow is the ML.ENERGY benchmark's window as it states it, of
// every request of s: the reference that SteadyWindowIn is checked
// against, written apart from it.
func wholeSetWindow(s *Set, maxNumSeqs int) (startNs, endNs int64, concurrency int, ok bool) {
	c := maxNumSeqs
	if c <= 0 {
		c = s.MaxConcurrency()
	}
	closeAt := s.Len() - c - 1
	if c < 1 || len(s.firsts) < c || closeAt < 1 || closeAt > len(s.ends) || s.ends[closeAt-1] <= s.firsts[c-1] {
		return 0, 0, c, false
	}
	return s.firsts[c-1], s.ends[closeAt-1], c, true
}

// TestSteadyWindowInIsTheWindowsOwn: on seeded runs of overlapping
// requests (some streamed, some failed, some cut by the window's edges,
// ids reused after an end), SteadyWindowIn over a window is the whole-set
// window of the requests rebuilt from the events and tokens stamped
// in that window alone.
func TestSteadyWindowInIsTheWindowsOwn(t *testing.T) {
	oks := 0
	defer func() {
		if oks < 100 {
			t.Errorf("%d windows had an event window: too few to test", oks)
		}
	}()
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 7))
		var evs []trace.Event
		var toks []tok
		n := 20 + r.IntN(200)
		var prevEnd int64
		for i := range n {
			id := fmt.Sprintf("r%d", i)
			at := int64(i)*20 + int64(r.IntN(15))
			if r.IntN(10) == 0 && i > 0 { // reused once its request has ended
				id, at = fmt.Sprintf("r%d", i-1), prevEnd+1+int64(r.IntN(100))
			}
			evs = append(evs, ev("request_start", id, at), ev("first_token", id, at+50))
			end := at + 300 + int64(r.IntN(2700))
			if r.IntN(15) == 0 { // a long one, that a window may lie within
				end += 5000
			}
			prevEnd = end
			for k := at + 60; k < end; k += 40 + int64(r.IntN(40)) {
				toks = append(toks, tok{id, k, 0, 1 + int32(r.IntN(3))})
			}
			if r.IntN(8) == 0 {
				evs = append(evs, ev("request_end", id, end, attr(`{"error":"dropped"}`)))
			} else {
				evs = append(evs, ev("request_end", id, end))
			}
		}
		sortEvents(evs)
		slices.SortStableFunc(toks, func(a, b tok) int { return cmp.Compare(a.at, b.at) })
		tk, ids := tokens(toks...)
		whole := Build(evs, tk, ids)
		lastMs := (evs[len(evs)-1].TimestampNs - t0) / ms
		for range 8 {
			from := t0 + r.Int64N(lastMs/2)*ms
			to := from + (100+r.Int64N(lastMs))*ms
			if k := r.IntN(len(evs)); r.IntN(2) == 0 && evs[k].TimestampNs > from {
				to = evs[k].TimestampNs // an event on the edge counts
			}
			var inEvs []trace.Event
			for _, e := range evs {
				if e.TimestampNs >= from && e.TimestampNs <= to {
					inEvs = append(inEvs, e)
				}
			}
			var inToks []Token
			for _, x := range tk {
				if x.TimestampNs >= from && x.TimestampNs <= to {
					inToks = append(inToks, x)
				}
			}
			part := Build(inEvs, inToks, ids)
			for _, c := range []int{0, 3, 8, 30, 60, 100} {
				a1, b1, c1, ok1 := whole.SteadyWindowIn(from, to, c)
				a2, b2, c2, ok2 := wholeSetWindow(part, c)
				oks += map[bool]int{true: 1}[ok2]
				if a1 != a2 || b1 != b2 || c1 != c2 || ok1 != ok2 {
					t.Fatalf("seed %d, [%d, %d] ms, max_num_seqs %d: SteadyWindowIn = %d %d %d %v, the window's own requests give %d %d %d %v",
						seed, (from-t0)/ms, (to-t0)/ms, c, a1, b1, c1, ok1, a2, b2, c2, ok2)
				}
			}
		}
	}
}

// BenchmarkBuildAndQuery: 10^6 token events over 10^4 requests, Build,
// then 1,000 OutputTokens window queries.
func BenchmarkBuildAndQuery(b *testing.B) {
	const nReq, perReq, queries = 10_000, 100, 1000
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, nReq)
	var evs []trace.Event
	toks := make([]Token, 0, nReq*perReq)
	for r := range nReq {
		ids[r] = fmt.Sprintf("req-%d", r)
		start := t0 + int64(r)*ms // a request every ms, each ~2 s long
		first := start + 100*ms + rng.Int64N(ms)
		ts := first
		for range perReq {
			ts += 1 + rng.Int64N(38*ms)
			toks = append(toks, Token{TimestampNs: ts, ClientTimestampNs: ts - 50_000, Req: int32(r), Count: 1})
		}
		o := int64(perReq + 1)
		evs = append(evs,
			trace.Event{TimestampNs: start, Kind: "request_start", RequestID: ids[r], InputTokens: i64(512)},
			trace.Event{TimestampNs: first, Kind: "first_token", RequestID: ids[r]},
			trace.Event{TimestampNs: ts + 1, Kind: "request_end", RequestID: ids[r], OutputTokens: &o})
	}
	sortEvents(evs)
	slices.SortStableFunc(toks, func(a, b Token) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	lo, hi := evs[0].TimestampNs, evs[len(evs)-1].TimestampNs
	win := make([][2]int64, queries)
	for i := range win {
		a := lo + rng.Int64N(hi-lo)
		win[i] = [2]int64{a, a + 1 + rng.Int64N(s1)}
	}
	b.ReportAllocs()
	var sink float64
	for b.Loop() {
		s := Build(evs, toks, ids)
		for _, w := range win {
			sink += s.OutputTokens(w[0], w[1])
		}
	}
	if sink <= 0 {
		b.Fatal("no tokens counted")
	}
}

// A request that ended with an error attribute failed: its first token and
// token events are not output, it did not end as a served request, and it
// has no latency; a null, false or empty error is no error.
func TestFailedRequests(t *testing.T) {
	evs := sortEvents([]trace.Event{
		// ok: 1 + 4 tokens.
		ev("request_start", "ok", 100, cts(100)),
		ev("first_token", "ok", 110, cts(110)),
		ev("request_end", "ok", 150, cts(150), out(5)),
		// bad: streamed 1 + 3, then the connection dropped.
		ev("request_start", "bad", 100, cts(100)),
		ev("first_token", "bad", 120, cts(120)),
		ev("request_end", "bad", 160, cts(160), attr(`{"detail":"x","error":"dropped"}`)),
		// http: failed before any token, with output_tokens given anyway.
		ev("request_start", "http", 200),
		ev("request_end", "http", 210, out(7), attr(`{"error":{"status":500}}`)),
		// nul, no, empty: not failures.
		ev("request_start", "nul", 300),
		ev("request_end", "nul", 310, out(2), attr(`{"error":null}`)),
		ev("request_start", "no", 400),
		ev("request_end", "no", 410, out(3), attr(`{"error":false,"note":"error"}`)),
		ev("request_start", "empty", 500),
		ev("request_end", "empty", 510, out(4), attr(`{"error":""}`)),
	})
	toks, ids := tokens(tok{"ok", 130, 130, 4}, tok{"bad", 125, 125, 1}, tok{"bad", 140, 140, 2})
	s := Build(evs, toks, ids)
	exercise(s)

	if got, want := s.OutputTokens(t0, t0+s1), float64(5+2+3+4); !near(got, want, 1e-9) {
		t.Errorf("output tokens %v, want %v: the failed requests' tokens counted", got, want)
	}
	if got := s.OutputTokens(t0+120*ms, t0+141*ms); got != 4 {
		t.Errorf("output tokens in [120, 141) ms = %v, want ok's 4 only", got)
	}
	if got := s.Ended(t0, t0+s1); got != 4 {
		t.Errorf("Ended %d, want 4 (ok, nul, no, empty)", got)
	}
	errs := map[string]string{}
	for _, r := range requests(s) {
		errs[r.ID(idTable(evs, ids))] = s.Error(&r)
	}
	want := map[string]string{"ok": "", "bad": "dropped", "http": `{"status":500}`, "nul": "", "no": "", "empty": ""}
	if fmt.Sprint(errs) != fmt.Sprint(want) {
		t.Errorf("errors %v, want %v", errs, want)
	}
	l := s.Latency(t0, t0+s1)
	if len(l.TTFT) != 1 || !near(l.TTFT[0], 0.010, 1e-12) || len(l.E2E) != 4 || l.ITL.Len() != 4 {
		t.Errorf("latency %+v: want ok's TTFT only, and the E2E of the four served requests", l)
	}
	if len(s.Problems) != 1 || s.Problems[0] != "2 x requests that failed (request_end with an error attribute): their tokens are not output, and they are not counted as ended or in latency" {
		t.Errorf("problems %q", s.Problems)
	}
}

func sorted(v []float64) []float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}
