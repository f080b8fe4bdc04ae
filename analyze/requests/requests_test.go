package requests

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
)

const (
	ms = int64(1_000_000)
	us = int64(1_000)
	t0 = int64(1_717_171_717_000_000_000) // a realistic epoch stamp
)

type opt func(*trace.Event)

func client(ts int64) opt { return func(e *trace.Event) { e.ClientTimestampNs = &ts } }
func count(n int64) opt   { return func(e *trace.Event) { e.Count = &n } }
func out(n int64) opt     { return func(e *trace.Event) { e.OutputTokens = &n } }
func in(n int64) opt      { return func(e *trace.Event) { e.InputTokens = &n } }

// ev is an event of kind for request id, arriving at t0 + at.
func ev(kind, id string, at int64, opts ...opt) trace.Event {
	e := trace.Event{TimestampNs: t0 + at, GPU: trace.GPUAll, Kind: kind, RequestID: id, Source: "client"}
	for _, o := range opts {
		o(&e)
	}
	return e
}

// c is a client stamp lag before arrival at.
func c(at, lag int64) opt { return client(t0 + at - lag) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestLatency(t *testing.T) {
	events := []trace.Event{
		// r1: every event has a client stamp; the client lags differ so
		// the client clock gives other numbers than the arrival one.
		ev(kindStart, "r1", 0, c(0, 20*us), in(7)),
		ev(kindFirst, "r1", 100*ms, c(100*ms, 50*us)),
		ev(kindToken, "r1", 150*ms, c(150*ms, 50*us)),
		ev(kindToken, "r1", 200*ms, c(200*ms, 50*us)),
		ev(kindToken, "r1", 250*ms, c(250*ms, 80*us)),
		ev(kindEnd, "r1", 300*ms, c(300*ms, 50*us), out(4)),
		// r2: the same, but request_end has no client stamp: arrival only.
		ev(kindStart, "r2", 10*ms, c(10*ms, 20*us)),
		ev(kindFirst, "r2", 110*ms, c(110*ms, 50*us)),
		ev(kindToken, "r2", 160*ms, c(160*ms, 50*us)),
		ev(kindToken, "r2", 210*ms, c(210*ms, 50*us)),
		ev(kindToken, "r2", 260*ms, c(260*ms, 80*us)),
		ev(kindEnd, "r2", 310*ms, out(4)),
		// r3: first_token only, output_tokens in request_end.
		ev(kindStart, "r3", 1000*ms),
		ev(kindFirst, "r3", 1040*ms),
		ev(kindEnd, "r3", 1240*ms, out(5), in(9)),
		// r4: token events with counts: 1 + 3 + 2 = 6 tokens.
		ev(kindStart, "r4", 2000*ms),
		ev(kindFirst, "r4", 2010*ms),
		ev(kindToken, "r4", 2040*ms, count(3)),
		ev(kindToken, "r4", 2060*ms, count(2)),
		ev(kindEnd, "r4", 2070*ms, out(6)),
		// r5: never ended.
		ev(kindStart, "r5", 3000*ms),
		ev(kindFirst, "r5", 3100*ms),
		// r6: no first token, no tokens: only E2E.
		ev(kindStart, "r6", 4000*ms),
		ev(kindEnd, "r6", 4500*ms),
		ev("phase_start", "", 0), // other kinds are ignored
	}
	s := Build(events)
	nan := math.NaN()
	tests := []struct {
		id             string
		startAt        int64
		ttft, itl, e2e float64 // NaN: skipped
	}{
		{"r1", 0, 0.1 - 30e-6, (0.150 - 30e-6) / 3, 0.3 - 30e-6},
		{"r2", 10 * ms, 0.1, 0.05, 0.3},
		{"r3", 1000 * ms, 0.04, 0.05, 0.24},
		{"r4", 2000 * ms, 0.01, 0.01, 0.07},
		{"r5", 3000 * ms, 0.1, nan, nan},
		{"r6", 4000 * ms, nan, nan, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			l := s.Latency(t0+tc.startAt, t0+tc.startAt+1)
			check := func(name string, got []float64, want float64) {
				t.Helper()
				if math.IsNaN(want) {
					if len(got) != 0 {
						t.Errorf("%s = %v, want none", name, got)
					}
					return
				}
				if len(got) != 1 || !near(got[0], want) {
					t.Errorf("%s = %v, want [%v]", name, got, want)
				}
			}
			check("TTFT", l.TTFT, tc.ttft)
			check("ITL", l.ITL, tc.itl)
			check("E2E", l.E2E, tc.e2e)
		})
	}

	all := s.Latency(t0, t0+5000*ms)
	if len(all.TTFT) != 5 || len(all.ITL) != 4 || len(all.E2E) != 5 {
		t.Errorf("all requests: %d TTFT, %d ITL, %d E2E, want 5, 4, 5", len(all.TTFT), len(all.ITL), len(all.E2E))
	}
	byID := map[string]Request{}
	for _, r := range s.Requests {
		byID[r.ID] = r
	}
	if r := byID["r1"]; r.InputTokens != 7 || r.OutputTokens != 4 || r.StreamedTokens != 4 || r.ClientStartNs != t0-20*us || r.ClientLastTokenNs != t0+250*ms-80*us || r.LastTokenNs != t0+250*ms {
		t.Errorf("r1 = %+v", r)
	}
	if r := byID["r2"]; r.ClientStartNs != 0 || r.ClientFirstTokenNs != 0 || r.ClientLastTokenNs != 0 || r.ClientEndNs != 0 {
		t.Errorf("r2 has client stamps although its request_end has none: %+v", r)
	}
	if r := byID["r3"]; r.InputTokens != 9 || r.StreamedTokens != 1 || r.LastTokenNs != r.FirstTokenNs {
		t.Errorf("r3 = %+v", r)
	}
	if r := byID["r6"]; r.InputTokens != -1 || r.OutputTokens != -1 || r.StreamedTokens != 0 || r.LastTokenNs != 0 {
		t.Errorf("r6 = %+v", r)
	}
	wantProblems := []string{
		"1 request has request_start without request_end",
		"1 request has a client ts on some events only",
	}
	if len(s.Problems) != len(wantProblems) {
		t.Errorf("problems = %q, want %d", s.Problems, len(wantProblems))
	}
	for _, p := range wantProblems {
		if !hasProblem(s.Problems, p) {
			t.Errorf("problems = %q, want one starting %q", s.Problems, p)
		}
	}
	ids := make([]string, len(s.Requests))
	for i, r := range s.Requests {
		ids[i] = r.ID
	}
	if want := []string{"r1", "r2", "r3", "r4", "r5", "r6"}; !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
}

func hasProblem(problems []string, prefix string) bool {
	for _, p := range problems {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func TestOutputTokensWindows(t *testing.T) {
	// Streamed: 1 at 10, 2 at 20, 3 at 30 (ms).
	streamed := []trace.Event{
		ev(kindStart, "s", 5*ms),
		ev(kindFirst, "s", 10*ms),
		ev(kindToken, "s", 20*ms, count(2)),
		ev(kindToken, "s", 30*ms, count(3)),
		ev(kindEnd, "s", 40*ms, out(6)),
	}
	// No streamed tokens: 10 tokens over [100, 200] ms.
	uniform := []trace.Event{
		ev(kindStart, "u", 100*ms),
		ev(kindEnd, "u", 200*ms, out(10)),
	}
	// first_token only: 1 at 300, the other 10 over [300, 400] ms.
	firstOnly := []trace.Event{
		ev(kindStart, "f", 290*ms),
		ev(kindFirst, "f", 300*ms),
		ev(kindEnd, "f", 400*ms, out(11)),
	}
	// Neither: nothing.
	neither := []trace.Event{
		ev(kindStart, "n", 500*ms),
		ev(kindEnd, "n", 600*ms),
	}
	// request_end alone: its tokens count at its stamp.
	endOnly := []trace.Event{ev(kindEnd, "e", 700*ms, out(4))}
	// Start and end at the same stamp: a point.
	instant := []trace.Event{ev(kindStart, "i", 800*ms), ev(kindEnd, "i", 800*ms, out(3))}

	tests := []struct {
		name       string
		events     []trace.Event
		start, end int64 // ms
		want       float64
	}{
		{"streamed first token at the window start", streamed, 10, 20, 1},
		{"streamed token at the window end is out", streamed, 11, 30, 2},
		{"streamed two events", streamed, 10, 21, 3},
		{"streamed last event", streamed, 30, 31, 3},
		{"streamed after", streamed, 31, 1000, 0},
		{"streamed all", streamed, 0, 1000, 6},
		{"streamed empty window", streamed, 20, 20, 0},
		{"streamed reversed window", streamed, 30, 10, 0},
		{"uniform first half", uniform, 100, 150, 5},
		{"uniform quarter", uniform, 150, 175, 2.5},
		{"uniform over the end", uniform, 190, 250, 1},
		{"uniform over the start", uniform, 50, 101, 0.1},
		{"uniform all", uniform, 0, 1000, 10},
		{"uniform before", uniform, 0, 100, 0},
		{"uniform inside, fractional", uniform, 133, 134, 0.1},
		{"first-only: the first token", firstOnly, 300, 301, 1 + 0.1},
		{"first-only: after the first", firstOnly, 301, 400, 9.9},
		{"first-only: all", firstOnly, 0, 1000, 11},
		{"neither", neither, 0, 1000, 0},
		{"end only, at its stamp", endOnly, 700, 701, 4},
		{"end only, before", endOnly, 0, 700, 0},
		{"instant", instant, 800, 801, 3},
		{"instant, before", instant, 799, 800, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Build(tc.events)
			got := s.OutputTokens(t0+tc.start*ms, t0+tc.end*ms)
			if !near(got, tc.want) {
				t.Errorf("OutputTokens([%d, %d) ms) = %v, want %v", tc.start, tc.end, got, tc.want)
			}
		})
	}

	// All together: the contributions add up.
	var all []trace.Event
	for _, e := range [][]trace.Event{streamed, uniform, firstOnly, neither, endOnly, instant} {
		all = append(all, e...)
	}
	s := Build(all)
	if got, want := s.OutputTokens(t0, t0+1000*ms), 6.0+10+11+4+3; !near(got, want) {
		t.Errorf("all: %v tokens, want %v", got, want)
	}
	if got := s.OutputTokens(t0+150*ms, t0+350*ms); !near(got, 5+1+5) {
		t.Errorf("[150, 350) ms: %v tokens, want 11", got)
	}
	if got := s.Ended(t0+40*ms, t0+601*ms); got != 4 {
		t.Errorf("Ended([40, 601) ms) = %d, want 4 (s, u, f, n)", got)
	}
	if got := s.Ended(t0+41*ms, t0+600*ms); got != 2 {
		t.Errorf("Ended([41, 600) ms) = %d, want 2 (u, f: n ends at 600)", got)
	}
	if got := s.Ended(t0+600*ms, t0+600*ms); got != 0 {
		t.Errorf("Ended of an empty window = %d", got)
	}
	if !hasProblem(s.Problems, "1 request has request_end without request_start") {
		t.Errorf("problems = %q, want the end-only request", s.Problems)
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name     string
		events   []trace.Event
		ids      []string // the requests, in order
		problems []string // prefixes, all and only these
	}{
		{
			name: "no start",
			events: []trace.Event{
				ev(kindFirst, "a", 1*ms), ev(kindEnd, "a", 2*ms),
				ev(kindEnd, "b", 3*ms),
				ev(kindToken, "c", 4*ms),
			},
			ids: []string{"a", "b", "c"},
			problems: []string{
				"2 requests have request_end without request_start",
				"1 request has events but neither request_start nor request_end",
				"1 request has token events but no first_token",
			},
		},
		{
			name:     "no end",
			events:   []trace.Event{ev(kindStart, "a", 1*ms), ev(kindStart, "b", 2*ms), ev(kindFirst, "b", 3*ms)},
			ids:      []string{"a", "b"},
			problems: []string{"2 requests have request_start without request_end"},
		},
		{
			name: "restart after end is a new request",
			events: []trace.Event{
				ev(kindStart, "a", 1*ms), ev(kindEnd, "a", 2*ms),
				ev(kindStart, "a", 3*ms), ev(kindEnd, "a", 4*ms),
				ev(kindStart, "a", 5*ms), ev(kindEnd, "a", 6*ms),
			},
			ids:      []string{"a", "a#2", "a#3"},
			problems: []string{"2 requests reuse the id of an earlier, ended request"},
		},
		{
			name: "duplicate start before the end",
			events: []trace.Event{
				ev(kindStart, "a", 1*ms), ev(kindStart, "a", 2*ms), ev(kindEnd, "a", 3*ms),
			},
			ids: []string{"a", "a#2"},
			problems: []string{
				"1 request has request_start without request_end",
				"1 request was started again",
			},
		},
		{
			name: "duplicate first_token and request_end",
			events: []trace.Event{
				ev(kindStart, "a", 1*ms), ev(kindFirst, "a", 2*ms), ev(kindFirst, "a", 3*ms),
				ev(kindEnd, "a", 4*ms), ev(kindEnd, "a", 5*ms),
			},
			ids:      []string{"a"},
			problems: []string{"1 request has a repeated first_token", "1 request has a repeated request_end"},
		},
		{
			name: "tokens after the end, before the first token",
			events: []trace.Event{
				ev(kindStart, "a", 1*ms), ev(kindToken, "a", 2*ms), ev(kindFirst, "a", 3*ms),
				ev(kindEnd, "a", 4*ms), ev(kindToken, "a", 5*ms),
			},
			ids:      []string{"a"},
			problems: []string{"1 request has first_token or token events after", "1 request has token events before"},
		},
		{
			name: "start after other events",
			events: []trace.Event{
				ev(kindFirst, "a", 1*ms), ev(kindStart, "a", 2*ms), ev(kindEnd, "a", 3*ms),
			},
			ids:      []string{"a"},
			problems: []string{"1 request has request_start after"},
		},
		{
			name: "output_tokens mismatch",
			events: []trace.Event{
				ev(kindStart, "a", 1*ms), ev(kindFirst, "a", 2*ms), ev(kindToken, "a", 3*ms, count(5)), ev(kindEnd, "a", 4*ms, out(7)),
				ev(kindStart, "b", 1*ms), ev(kindFirst, "b", 2*ms), ev(kindEnd, "b", 4*ms, out(0)),
				ev(kindStart, "ok", 1*ms), ev(kindFirst, "ok", 2*ms), ev(kindEnd, "ok", 4*ms, out(9)),
			},
			ids:      []string{"a", "b", "ok"},
			problems: []string{"2 requests have request_end output_tokens different"},
		},
		{
			name: "bad events",
			events: []trace.Event{
				ev(kindStart, "", 1*ms), ev(kindStart, "a", 1*ms), ev(kindToken, "a", 2*ms, count(0)), ev(kindEnd, "a", 3*ms),
			},
			ids:      []string{"a"},
			problems: []string{"1 request event has no request id", "1 token event has count < 1"},
		},
		{
			name:   "empty",
			events: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Build(tc.events)
			var ids []string
			for _, r := range s.Requests {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tc.ids) {
				t.Errorf("requests %v, want %v", ids, tc.ids)
			}
			if len(s.Problems) != len(tc.problems) {
				t.Errorf("problems %q, want %d", s.Problems, len(tc.problems))
			}
			for _, p := range tc.problems {
				if !hasProblem(s.Problems, p) {
					t.Errorf("problems %q, want one starting %q", s.Problems, p)
				}
			}
			// Every query works on any set.
			s.OutputTokens(0, math.MaxInt64)
			s.OutputTokens(math.MinInt64, math.MaxInt64)
			s.Latency(math.MinInt64, math.MaxInt64)
			s.InFlight()
			s.SteadyWindow(0)
			s.SteadyWindow(3)
		})
	}

	// Counts of the tokens of a mismatched request: the streamed count.
	s := Build(tests[7].events)
	if got := s.OutputTokens(t0, t0+10*ms); !near(got, 6+1+9) {
		t.Errorf("tokens = %v, want 16 (a: 6 streamed, b: its first token, ok: 9)", got)
	}
}

func TestUnsortedInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	events, _ := randomWorkload(rng, 50)
	want := Build(events)
	shuffled := slices.Clone(events)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	got := Build(shuffled)
	if !slices.Equal(got.Requests, want.Requests) || !slices.Equal(got.Problems, want.Problems) {
		t.Fatalf("shuffled input gives other requests")
	}
	for range 100 {
		a := t0 + rng.Int64N(20e9)
		b := a + rng.Int64N(5e9)
		if g, w := got.OutputTokens(a, b), want.OutputTokens(a, b); !near(g, w) {
			t.Fatalf("shuffled: %v tokens in [%d, %d), want %v", g, a, b, w)
		}
	}
}

func TestInFlight(t *testing.T) {
	s := Build([]trace.Event{
		ev(kindStart, "a", 10), ev(kindEnd, "a", 20),
		ev(kindStart, "b", 15), ev(kindEnd, "b", 30),
		ev(kindStart, "c", 30), ev(kindEnd, "c", 35), // touches b: merged
		ev(kindStart, "d", 40), ev(kindEnd, "d", 50),
		ev(kindStart, "e", 60), ev(kindFirst, "e", 65), // never ends
		ev(kindFirst, "f", 62), ev(kindToken, "f", 70), // no start, no end
	})
	want := [][2]int64{{t0 + 10, t0 + 35}, {t0 + 40, t0 + 50}, {t0 + 60, t0 + 70}}
	if got := s.InFlight(); !slices.Equal(got, want) {
		t.Errorf("InFlight = %v, want %v", got, want)
	}
	if got := s.maxConcurrency(); got != 2 {
		t.Errorf("maxConcurrency = %d, want 2 (c starts as b ends: no overlap)", got)
	}
	empty := Build(nil)
	if got := empty.InFlight(); len(got) != 0 {
		t.Errorf("InFlight of nothing = %v", got)
	}
}

// closedLoop is n requests through c slots: request i = 8k + j (slot j,
// k-th of the slot) starts at j*10 ms + k*100 ms, has its first token
// 5 ms later, then 9 tokens every 10 ms, and ends 100 ms after its start,
// at the stamp the slot's next request starts.
func closedLoop(n, c int) []trace.Event {
	var events []trace.Event
	for i := range n {
		j, k := int64(i%c), int64(i/c)
		id := fmt.Sprintf("q%03d", i)
		st := j*10*ms + k*100*ms
		events = append(events, ev(kindStart, id, st), ev(kindFirst, id, st+5*ms))
		for m := range int64(9) {
			events = append(events, ev(kindToken, id, st+10*ms+m*10*ms))
		}
		events = append(events, ev(kindEnd, id, st+100*ms, out(10)))
	}
	return events
}

func TestSteadyWindow(t *testing.T) {
	tests := []struct {
		name       string
		n, slots   int
		maxNumSeqs int
		open, end  int64 // ms after t0
		c          int
		ok         bool
	}{
		// C = 8 (the most in flight): opens at the 8th first token (slot 7,
		// 70 + 5 ms) and closes at the 100-8-1 = 91st end, request 90 =
		// 8*11 + 2: 20 + 12*100 ms.
		{"100 requests, concurrency 8", 100, 8, 0, 75, 1220, 8, true},
		// max_num_seqs 4: the 4th first token (slot 3: 35 ms), the 95th
		// end (request 94 = 8*11 + 6: 60 + 1200 ms).
		{"max_num_seqs 4", 100, 8, 4, 35, 1260, 4, true},
		// 16 requests, C = 8: N-C-1 = 7 < C, yet the 7th end (request 6:
		// 60 + 100 ms) comes after the 8th first token (75 ms). The
		// benchmark imposes no N-C-1 >= C, so the window holds.
		{"16 requests, concurrency 8", 16, 8, 0, 75, 160, 8, true},
		// C = 60: the 39th end (request 38: 60 + 500 ms) is before the
		// 60th first token (request 59: 30 + 700 + 5 ms).
		{"close before open", 100, 8, 60, 0, 0, 60, false},
		// N - C - 1 = 0: no window.
		{"too few requests", 9, 8, 0, 0, 0, 8, false},
		{"max_num_seqs above N", 100, 8, 200, 0, 0, 200, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Build(closedLoop(tc.n, tc.slots))
			a, b, c, ok := s.SteadyWindow(tc.maxNumSeqs)
			if ok != tc.ok || c != tc.c {
				t.Fatalf("SteadyWindow(%d) = %d, %d, %d, %v; want concurrency %d, ok %v", tc.maxNumSeqs, a, b, c, ok, tc.c, tc.ok)
			}
			if ok && (a != t0+tc.open*ms || b != t0+tc.end*ms) {
				t.Errorf("window [%d, %d] ms, want [%d, %d] ms", (a-t0)/ms, (b-t0)/ms, tc.open, tc.end)
			}
		})
	}

	// The tokens of the steady window of the 100-request run: every
	// request streams one token per 10 ms from +5 ms (first) and +10 ms.
	s := Build(closedLoop(100, 8))
	a, b, _, _ := s.SteadyWindow(0)
	var want float64
	for i := range 100 {
		st := int64(i%8)*10*ms + int64(i/8)*100*ms
		for _, at := range []int64{5, 10, 20, 30, 40, 50, 60, 70, 80, 90} {
			if x := t0 + st + at*ms; x >= a && x < b {
				want++
			}
		}
	}
	if got := s.OutputTokens(a, b); got != want {
		t.Errorf("steady window tokens = %v, want %v", got, want)
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems in a clean run: %q", s.Problems)
	}
}

// planned is a request of a random workload with its true token times.
type planned struct {
	points []struct {
		t int64
		n float64
	}
	a, b int64 // a span of spread tokens...
	n    float64
}

// randomWorkload makes n requests of every shape (streamed, first token
// only, spread, end only, unfinished, no tokens) and returns their events
// with what each should count.
func randomWorkload(rng *rand.Rand, n int) ([]trace.Event, []planned) {
	var events []trace.Event
	plans := make([]planned, n)
	point := func(p *planned, t int64, k float64) {
		p.points = append(p.points, struct {
			t int64
			n float64
		}{t, k})
	}
	for i := range n {
		p := &plans[i]
		id := fmt.Sprintf("w%d", i)
		st := rng.Int64N(20e9) + 1
		first := st + rng.Int64N(1e9)
		end := first + rng.Int64N(3e9)
		hasStart, hasEnd := rng.IntN(10) > 0, rng.IntN(10) > 0
		if hasStart {
			events = append(events, ev(kindStart, id, st))
		}
		var opts []opt
		switch shape := rng.IntN(5); shape {
		case 0, 1: // streamed
			events = append(events, ev(kindFirst, id, first))
			point(p, t0+first, 1)
			total := int64(1)
			for t := first; ; {
				t += rng.Int64N(50e6)
				if t >= end {
					break
				}
				k := 1 + rng.Int64N(4)
				events = append(events, ev(kindToken, id, t, count(k)))
				point(p, t0+t, float64(k))
				total += k
			}
			if rng.IntN(2) == 0 {
				opts = append(opts, out(total))
			}
		case 2: // first token only, output_tokens at the end
			events = append(events, ev(kindFirst, id, first))
			point(p, t0+first, 1)
			k := 1 + rng.Int64N(300)
			if hasEnd {
				opts = append(opts, out(k))
				p.a, p.b, p.n = t0+first, t0+end, float64(k-1)
			}
		case 3: // no streamed tokens
			k := rng.Int64N(300)
			opts = append(opts, out(k))
			if hasEnd {
				switch {
				case hasStart:
					p.a, p.b, p.n = t0+st, t0+end, float64(k)
				default:
					p.a, p.b, p.n = t0+end, t0+end, float64(k)
				}
			}
		case 4: // nothing
		}
		if hasEnd {
			events = append(events, ev(kindEnd, id, end, opts...))
		}
	}
	slices.SortStableFunc(events, func(x, y trace.Event) int { return int(x.TimestampNs - y.TimestampNs) })
	return events, plans
}

// want is the true token count in [s, e).
func want(plans []planned, s, e int64) float64 {
	var n float64
	for _, p := range plans {
		for _, x := range p.points {
			if x.t >= s && x.t < e {
				n += x.n
			}
		}
		switch {
		case p.n == 0:
		case p.a == p.b:
			if p.a >= s && p.a < e {
				n += p.n
			}
		default:
			if lo, hi := max(p.a, s), min(p.b, e); hi > lo {
				n += p.n * float64(hi-lo) / float64(p.b-p.a)
			}
		}
	}
	return n
}

// TestOutputTokensRandom checks random windows against a direct count, and
// that random partitions of the run add up to every token.
func TestOutputTokensRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 20 {
		events, plans := randomWorkload(rng, 1+rng.IntN(200))
		s := Build(events)
		total := want(plans, math.MinInt64, math.MaxInt64)
		lo, hi := events[0].TimestampNs, events[len(events)-1].TimestampNs+1
		if got := s.OutputTokens(lo, hi); math.Abs(got-total) > 1e-6 {
			t.Fatalf("round %d: %v tokens over the run, want %v", round, got, total)
		}
		for range 200 {
			a := lo - 1e9 + rng.Int64N(hi-lo+2e9)
			b := a + rng.Int64N(4e9)
			if got, w := s.OutputTokens(a, b), want(plans, a, b); math.Abs(got-w) > 1e-6 {
				t.Fatalf("round %d: %v tokens in [%d, %d), want %v", round, got, a, b, w)
			}
		}
		for range 20 {
			cuts := []int64{lo, hi}
			for range rng.IntN(500) {
				cuts = append(cuts, lo+rng.Int64N(hi-lo))
			}
			slices.Sort(cuts)
			var sum float64
			for i := 1; i < len(cuts); i++ {
				sum += s.OutputTokens(cuts[i-1], cuts[i])
			}
			if math.Abs(sum-total) > 1e-6 {
				t.Fatalf("round %d: a partition into %d windows adds to %v, want %v (off by %g)", round, len(cuts)-1, sum, total, sum-total)
			}
		}
	}
}

// TestBuildGarbage feeds random, inconsistent events: no panic, and the
// queries stay consistent.
func TestBuildGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	kinds := []string{kindStart, kindFirst, kindToken, kindEnd, "mark", "phase_start"}
	for range 200 {
		var events []trace.Event
		for range rng.IntN(100) {
			var opts []opt
			if rng.IntN(2) == 0 {
				opts = append(opts, client(rng.Int64N(1e9)))
			}
			if rng.IntN(3) == 0 {
				opts = append(opts, count(rng.Int64N(5)-1))
			}
			if rng.IntN(3) == 0 {
				opts = append(opts, out(rng.Int64N(20)))
			}
			events = append(events, ev(kinds[rng.IntN(len(kinds))], fmt.Sprint(rng.IntN(5)), rng.Int64N(1e6), opts...))
		}
		s := Build(events)
		for _, r := range s.Requests {
			// Client stamps are all there or all 0.
			if r.StreamedTokens < 0 || r.StartNs != 0 && r.EndNs != 0 && (r.ClientStartNs == 0) != (r.ClientEndNs == 0) {
				t.Fatalf("inconsistent request %+v", r)
			}
		}
		var streamed float64
		for _, r := range s.Requests {
			streamed += float64(r.StreamedTokens)
		}
		if got := s.OutputTokens(math.MinInt64, math.MaxInt64); got < streamed-1e-9 {
			t.Fatalf("%v tokens in all, fewer than the %v streamed", got, streamed)
		}
		var sum float64
		for a := t0 - 1; a < t0+1e6; a += 1e5 {
			sum += s.OutputTokens(a, a+1e5)
		}
		if all := s.OutputTokens(t0-1, t0+1e6-1+1e5); math.Abs(sum-all) > 1e-6 {
			t.Fatalf("partition adds to %v, want %v", sum, all)
		}
		s.Latency(math.MinInt64, math.MaxInt64)
		s.InFlight()
		s.SteadyWindow(0)
	}
}

// benchEvents is a run with 10^6 token events: 1,000 streamed requests of
// 1,000 tokens (first_token and 999 token events), and 1,000 requests whose
// 500 tokens are spread over up to 20 s.
func benchEvents() []trace.Event {
	const nReq, perReq = 1000, 1000
	events := make([]trace.Event, 0, nReq*(perReq+2)+2*nReq)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range nReq {
		id := fmt.Sprintf("r%d", i)
		st := int64(i) * 10 * ms
		events = append(events, ev(kindStart, id, st), ev(kindFirst, id, st+20*ms))
		for k := range int64(perReq - 1) {
			events = append(events, ev(kindToken, id, st+20*ms+(k+1)*20*ms))
		}
		events = append(events, ev(kindEnd, id, st+20*ms+perReq*20*ms, out(perReq)))
		sid := fmt.Sprintf("s%d", i)
		events = append(events, ev(kindStart, sid, st+5*ms), ev(kindEnd, sid, st+5*ms+rng.Int64N(20e9), out(500)))
	}
	return events
}

// BenchmarkBuild reconstructs the requests of benchEvents (unsorted input:
// the events of one request come together).
func BenchmarkBuild(b *testing.B) {
	events := benchEvents()
	b.ResetTimer()
	for b.Loop() {
		Build(events)
	}
}

// BenchmarkOutputTokens queries 1,000 windows of benchEvents (10^6 token
// events and 1,000 spread requests); one op is the 1,000 queries.
func BenchmarkOutputTokens(b *testing.B) {
	const nWin = 1000
	events := benchEvents()
	rng := rand.New(rand.NewPCG(2, 2))
	s := Build(events)
	span := events[len(events)-1].TimestampNs - t0
	windows := make([][2]int64, nWin)
	for i := range windows {
		a := t0 + rng.Int64N(span)
		windows[i] = [2]int64{a, a + rng.Int64N(60e9)}
	}
	b.ResetTimer()
	var sink float64
	for b.Loop() {
		for _, w := range windows {
			sink += s.OutputTokens(w[0], w[1])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nWin, "ns/window")
	_ = sink
}
