package requests

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/llem/llem/trace"
)

// Event kinds this package uses (docs/events.md).
const (
	kindStart = "request_start"
	kindFirst = "first_token"
	kindToken = "token"
	kindEnd   = "request_end"
)

// Request is one request reconstructed from its events (by RequestID).
type Request struct {
	// ID is the client's id; "#2", "#3", ... is appended when an id starts
	// again after its earlier request ended.
	ID string
	// Arrival stamps (trace clock); 0 when the event is missing.
	StartNs, FirstTokenNs, EndNs int64
	// LastTokenNs is the arrival stamp of the last token event (or of the
	// first_token when no token event followed it); 0 if none.
	LastTokenNs int64
	// From request_end, or request_start for the input, when given; else -1.
	InputTokens, OutputTokens int64
	// StreamedTokens is 1 for a first_token plus the sum of the token counts.
	StreamedTokens int64
	// Client-clock stamps for latency; all 0 when any of the request's
	// events lacks a client ts.
	ClientStartNs, ClientFirstTokenNs, ClientLastTokenNs, ClientEndNs int64
}

// tokenEvents reports whether the request sent token events (beyond a
// first_token): first_token adds exactly 1 and every token event at least 1.
func (r *Request) tokenEvents() bool {
	if r.FirstTokenNs != 0 {
		return r.StreamedTokens > 1
	}
	return r.StreamedTokens > 0
}

// firstNs is the request's earliest stamp.
func (r *Request) firstNs() int64 {
	for _, t := range [...]int64{r.StartNs, r.FirstTokenNs, r.LastTokenNs, r.EndNs} {
		if t != 0 {
			return t
		}
	}
	return 0
}

// Set is the requests of a run, with indexes for window queries.
type Set struct {
	Requests []Request // sorted by StartNs, then ID
	// Problems are the inconsistencies found, deduplicated and counted,
	// e.g. "3 requests have request_end without request_start".
	Problems []string

	tokNs  []int64 // stamps of first_token and token events, ascending...
	tokCum []int64 // ...and the tokens up to and including each
	spread spreadIndex
	firsts []int64 // first_token stamps, ascending
	ends   []int64 // request_end stamps, ascending
	lastNs int64   // the last stamp of an event used
}

// Problem kinds. Request problems count requests (each at most once per
// kind); event problems count events.
const (
	pNoStartEnd    = iota // request_end but no request_start
	pNoStartNoEnd         // neither
	pNoEnd                // request_start but no request_end
	pStartedAgain         // a second request_start before request_end
	pReused               // an id started again after its request ended
	pStartLate            // request_start after other events of the request
	pDupFirst             // a second first_token
	pDupEnd               // a second request_end
	pAfterEnd             // first_token or token events after request_end
	pTokenNoFirst         // token events but no first_token
	pTokenEarly           // token events before first_token
	pMismatch             // output_tokens disagrees with the streamed tokens
	pPartialClient        // client ts on some events only
	nRequestProblems
)

var requestProblemText = [nRequestProblems][2]string{ // singular, plural
	pNoStartEnd:    {"request has request_end without request_start", "requests have request_end without request_start"},
	pNoStartNoEnd:  {"request has events but neither request_start nor request_end", "requests have events but neither request_start nor request_end"},
	pNoEnd:         {"request has request_start without request_end (unfinished, or the run was cut)", "requests have request_start without request_end (unfinished, or the run was cut)"},
	pStartedAgain:  {"request was started again by a request_start with its id before it ended (left without request_end; the new one is id#N)", "requests were started again by a request_start with their id before they ended (left without request_end; the new ones are id#N)"},
	pReused:        {"request reuses the id of an earlier, ended request (named id#N)", "requests reuse the id of an earlier, ended request (named id#N)"},
	pStartLate:     {"request has request_start after its other events", "requests have request_start after their other events"},
	pDupFirst:      {"request has a repeated first_token (ignored)", "requests have a repeated first_token (ignored)"},
	pDupEnd:        {"request has a repeated request_end (ignored)", "requests have a repeated request_end (ignored)"},
	pAfterEnd:      {"request has first_token or token events after its request_end (counted)", "requests have first_token or token events after their request_end (counted)"},
	pTokenNoFirst:  {"request has token events but no first_token (no TTFT or ITL)", "requests have token events but no first_token (no TTFT or ITL)"},
	pTokenEarly:    {"request has token events before its first_token", "requests have token events before their first_token"},
	pMismatch:      {"request has request_end output_tokens different from its streamed tokens (the streamed count is used)", "requests have request_end output_tokens different from their streamed tokens (the streamed count is used)"},
	pPartialClient: {"request has a client ts on some events only (its latency uses arrival stamps)", "requests have a client ts on some events only (their latency uses arrival stamps)"},
}

const (
	peNoID     = iota // a request event without an id
	peBadCount        // a token event with count < 1
	nEventProblems
)

var eventProblemText = [nEventProblems][2]string{
	peNoID:     {"request event has no request id (ignored)", "request events have no request id (ignored)"},
	peBadCount: {"token event has count < 1 (ignored)", "token events have count < 1 (ignored)"},
}

// building is a request under construction.
type building struct {
	Request
	problems      uint32 // bit set of request problem kinds
	clientSeen    bool   // some event had a client ts
	clientMissing bool   // some event had none
	inputFromEnd  bool
}

func (b *building) flag(p int) { b.problems |= 1 << p }

// client records an event's client stamp in *dst.
func (b *building) client(e *trace.Event, dst *int64) {
	if e.ClientTimestampNs != nil && *e.ClientTimestampNs > 0 {
		b.clientSeen = true
		*dst = *e.ClientTimestampNs
		return
	}
	b.clientMissing = true
	*dst = 0
}

// Build reconstructs requests from events, which may come in any order:
// they are taken by arrival stamp (stable). Only request_start,
// first_token, token and request_end are used. A request id that starts
// again after its request ended is a new request ("id#2"). Requests
// without an end are kept (EndNs 0) and reported in Problems, as is a
// request_end whose output_tokens disagrees with the streamed tokens.
func Build(events []trace.Event) Set {
	// The events used, by arrival stamp; ties keep input order, so the
	// events of one connection stay in order.
	type ref struct {
		t int64
		i int
	}
	order := make([]ref, 0, len(events))
	nTokens := 0
	for i := range events {
		switch events[i].Kind {
		case kindFirst, kindToken:
			nTokens++
			fallthrough
		case kindStart, kindEnd:
			order = append(order, ref{events[i].TimestampNs, i})
		}
	}
	byStamp := func(a, b ref) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	}
	if !slices.IsSortedFunc(order, byStamp) {
		slices.SortFunc(order, byStamp) // total order: as stable as a stable sort
	}

	s := Set{tokNs: make([]int64, 0, nTokens), tokCum: make([]int64, 0, nTokens)}
	var eventProblems [nEventProblems]int
	var all []*building
	current := map[string]*building{} // the latest request with each id
	uses := map[string]int{}
	newRequest := func(id string) *building {
		uses[id]++
		b := &building{Request: Request{ID: id, InputTokens: -1, OutputTokens: -1}}
		if n := uses[id]; n > 1 {
			b.ID = fmt.Sprintf("%s#%d", id, n)
		}
		current[id] = b
		all = append(all, b)
		return b
	}
	addTokens := func(t, n int64) {
		var prev int64
		if k := len(s.tokCum); k > 0 {
			prev = s.tokCum[k-1]
		}
		s.tokNs = append(s.tokNs, t)
		s.tokCum = append(s.tokCum, prev+n)
	}

	for _, o := range order {
		e := &events[o.i]
		t := e.TimestampNs
		if e.RequestID == "" {
			eventProblems[peNoID]++
			continue
		}
		s.lastNs = max(s.lastNs, t)
		r := current[e.RequestID]
		switch e.Kind {
		case kindStart:
			switch {
			case r == nil:
				r = newRequest(e.RequestID)
			case r.EndNs != 0:
				r = newRequest(e.RequestID)
				r.flag(pReused)
			case r.StartNs == 0:
				r.flag(pStartLate)
			default:
				r.flag(pStartedAgain)
				r = newRequest(e.RequestID)
			}
			r.StartNs = t
			r.client(e, &r.ClientStartNs)
			if e.InputTokens != nil && !r.inputFromEnd {
				r.InputTokens = *e.InputTokens
			}
		case kindFirst:
			if r == nil {
				r = newRequest(e.RequestID)
			}
			if r.FirstTokenNs != 0 {
				r.flag(pDupFirst)
				continue
			}
			if r.EndNs != 0 {
				r.flag(pAfterEnd)
			}
			if r.StreamedTokens > 0 {
				r.flag(pTokenEarly)
			}
			r.FirstTokenNs = t
			r.client(e, &r.ClientFirstTokenNs)
			r.StreamedTokens++
			r.LastTokenNs, r.ClientLastTokenNs = t, r.ClientFirstTokenNs
			addTokens(t, 1)
		case kindToken:
			n := int64(1)
			if e.Count != nil {
				n = *e.Count
			}
			if n < 1 {
				eventProblems[peBadCount]++
				continue
			}
			if r == nil {
				r = newRequest(e.RequestID)
			}
			if r.EndNs != 0 {
				r.flag(pAfterEnd)
			}
			r.StreamedTokens += n
			r.LastTokenNs = t
			r.client(e, &r.ClientLastTokenNs)
			addTokens(t, n)
		case kindEnd:
			if r == nil {
				r = newRequest(e.RequestID)
			}
			if r.EndNs != 0 {
				r.flag(pDupEnd)
				continue
			}
			r.EndNs = t
			r.client(e, &r.ClientEndNs)
			if e.InputTokens != nil {
				r.InputTokens, r.inputFromEnd = *e.InputTokens, true
			}
			if e.OutputTokens != nil {
				r.OutputTokens = *e.OutputTokens
			}
		}
	}

	var spreads []spread
	var counts [nRequestProblems]int
	s.Requests = make([]Request, 0, len(all))
	for _, b := range all {
		r := &b.Request
		switch {
		case r.StartNs == 0 && r.EndNs != 0:
			b.flag(pNoStartEnd)
		case r.StartNs == 0:
			b.flag(pNoStartNoEnd)
		case r.EndNs == 0:
			b.flag(pNoEnd)
		}
		if r.FirstTokenNs == 0 && r.StreamedTokens > 0 {
			b.flag(pTokenNoFirst)
		}
		if b.clientMissing {
			r.ClientStartNs, r.ClientFirstTokenNs, r.ClientLastTokenNs, r.ClientEndNs = 0, 0, 0, 0
			if b.clientSeen {
				b.flag(pPartialClient)
			}
		}
		if r.OutputTokens >= 0 && r.StreamedTokens > 0 {
			// A first_token alone is no disagreement with a larger
			// output_tokens: the rest is spread below.
			if r.tokenEvents() && r.OutputTokens != r.StreamedTokens || !r.tokenEvents() && r.OutputTokens < r.StreamedTokens {
				b.flag(pMismatch)
			}
		}
		if !r.tokenEvents() && r.OutputTokens > 0 && r.EndNs != 0 {
			// No per-token stamps: spread what the first_token (if any)
			// did not already count over the generation span.
			n, a := r.OutputTokens, r.StartNs
			if r.FirstTokenNs != 0 {
				n, a = n-1, r.FirstTokenNs
			}
			if a == 0 || a > r.EndNs {
				a = r.EndNs // no span known (or events after the end): count at the end
			}
			if n > 0 {
				spreads = append(spreads, spread{a: a, b: r.EndNs, n: float64(n)})
			}
		}
		for p := range nRequestProblems {
			if b.problems&(1<<p) != 0 {
				counts[p]++
			}
		}
		if r.FirstTokenNs != 0 {
			s.firsts = append(s.firsts, r.FirstTokenNs)
		}
		if r.EndNs != 0 {
			s.ends = append(s.ends, r.EndNs)
		}
		s.Requests = append(s.Requests, *r)
	}
	slices.Sort(s.firsts)
	slices.Sort(s.ends)
	slices.SortStableFunc(s.Requests, func(a, b Request) int {
		if c := cmp.Compare(a.StartNs, b.StartNs); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	s.spread = newSpreadIndex(spreads)

	plural := func(n int, text [2]string) string {
		if n == 1 {
			return "1 " + text[0]
		}
		return fmt.Sprintf("%d %s", n, text[1])
	}
	for p, n := range counts {
		if n > 0 {
			s.Problems = append(s.Problems, plural(n, requestProblemText[p]))
		}
	}
	for p, n := range eventProblems {
		if n > 0 {
			s.Problems = append(s.Problems, plural(n, eventProblemText[p]))
		}
	}
	return s
}

// OutputTokens counts the output tokens generated within [startNs, endNs)
// on the arrival clock: streamed tokens at their events' stamps, and the
// tokens of requests that sent no token events by the fraction of their
// span the window overlaps (see the package comment). O(log n) a query.
func (s *Set) OutputTokens(startNs, endNs int64) float64 {
	if endNs <= startNs {
		return 0
	}
	streamed := s.streamedBefore(endNs) - s.streamedBefore(startNs)
	return float64(streamed) + (s.spread.before(endNs) - s.spread.before(startNs))
}

// streamedBefore is the number of streamed tokens stamped before t.
func (s *Set) streamedBefore(t int64) int64 {
	k := countBefore(s.tokNs, t)
	if k == 0 {
		return 0
	}
	return s.tokCum[k-1]
}

// countBefore is the number of elements of the ascending xs below t.
func countBefore(xs []int64, t int64) int {
	k, _ := slices.BinarySearch(xs, t) // the first index with xs[k] >= t
	return k
}

// Ended counts requests whose EndNs is in [startNs, endNs).
func (s *Set) Ended(startNs, endNs int64) int {
	if endNs <= startNs {
		return 0
	}
	return countBefore(s.ends, endNs) - countBefore(s.ends, startNs)
}

// Latency holds per-request latencies in seconds, one value per request
// that has the events a metric needs, in the order of Set.Requests.
type Latency struct{ TTFT, ITL, E2E []float64 }

// Latency of the requests whose StartNs is in [startNs, endNs): TTFT =
// first_token - start; E2E = end - start; ITL = (last token - first token)
// / (streamed tokens - 1) when the request streamed at least 2 tokens, or
// for a request that sent no token events, (end - first_token) /
// (output_tokens - 1) when output_tokens >= 2. Client stamps are used when
// the request has all the metric needs (every one of its events carried
// ts), else arrival stamps. A metric whose events are missing is skipped.
func (s *Set) Latency(startNs, endNs int64) Latency {
	var l Latency
	i := sort.Search(len(s.Requests), func(k int) bool { return s.Requests[k].StartNs >= startNs })
	for ; i < len(s.Requests) && s.Requests[i].StartNs < endNs; i++ {
		r := &s.Requests[i]
		if r.StartNs == 0 {
			continue // no request_start: nothing to measure from
		}
		// pick returns the two stamps on one clock: client if both are there.
		pick := func(a, ca, b, cb int64) float64 {
			if ca != 0 && cb != 0 {
				return float64(cb-ca) / 1e9
			}
			return float64(b-a) / 1e9
		}
		if r.FirstTokenNs != 0 {
			l.TTFT = append(l.TTFT, pick(r.StartNs, r.ClientStartNs, r.FirstTokenNs, r.ClientFirstTokenNs))
		}
		if r.EndNs != 0 {
			l.E2E = append(l.E2E, pick(r.StartNs, r.ClientStartNs, r.EndNs, r.ClientEndNs))
		}
		switch {
		case r.FirstTokenNs == 0:
		case r.tokenEvents():
			if r.StreamedTokens >= 2 && r.LastTokenNs != 0 {
				d := pick(r.FirstTokenNs, r.ClientFirstTokenNs, r.LastTokenNs, r.ClientLastTokenNs)
				l.ITL = append(l.ITL, d/float64(r.StreamedTokens-1))
			}
		case r.OutputTokens >= 2 && r.EndNs != 0:
			d := pick(r.FirstTokenNs, r.ClientFirstTokenNs, r.EndNs, r.ClientEndNs)
			l.ITL = append(l.ITL, d/float64(r.OutputTokens-1))
		}
	}
	return l
}

// spans returns each request's in-flight span [start, end]: from its
// request_start (or earliest stamp when it has none) to its request_end,
// or to the last event stamp of the set when it never ended.
func (s *Set) spans() [][2]int64 {
	out := make([][2]int64, 0, len(s.Requests))
	for i := range s.Requests {
		r := &s.Requests[i]
		a, b := r.firstNs(), r.EndNs
		if b == 0 {
			b = s.lastNs
		}
		if a == 0 {
			continue
		}
		out = append(out, [2]int64{a, max(a, b)})
	}
	return out
}

// InFlight returns the merged intervals [start, end] during which at least
// one request was in flight (StartNs to EndNs; a request with no end is in
// flight until the last event stamp of the set; one with no start from its
// earliest event). Intervals that touch are merged.
func (s *Set) InFlight() [][2]int64 {
	sp := s.spans()
	slices.SortFunc(sp, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var out [][2]int64
	for _, x := range sp {
		if n := len(out); n > 0 && x[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

// maxConcurrency is the most requests in flight at once. A request that
// ends at the stamp another starts does not overlap it.
func (s *Set) maxConcurrency() int {
	sp := s.spans()
	starts := make([]int64, len(sp))
	ends := make([]int64, len(sp))
	for i, x := range sp {
		starts[i], ends[i] = x[0], x[1]
	}
	slices.Sort(starts)
	slices.Sort(ends)
	best, j := 0, 0
	for i, t := range starts {
		for j < len(ends) && ends[j] <= t {
			j++
		}
		best = max(best, i+1-j)
	}
	return best
}

// SteadyWindow is the ML.ENERGY benchmark's event-based steady window.
// With N requests and a concurrency C (maxNumSeqs when > 0, else the most
// requests in flight at once), the window opens at the C-th first_token
// stamp in time order and closes at the (N-C-1)-th request_end stamp.
// ok is false when N - C - 1 < 1, when fewer than C requests produced a
// first token or fewer than N - C - 1 ended, or when the close is not
// after the open.
//
// Source: github.com/ml-energy/benchmark, mlenergy/benchmark/llm/benchmark.py
// (commit c1d6557, 2026-05-09), class RequestTracker: "Start of steady
// state: When `max_num_seqs` requests have sent back their first output
// tokens" (notify_request_started, called on a request's first chunk,
// sets the start once num_started >= max_num_seqs) and "End of steady
// state: When `num_requests - max_num_seqs - 1` requests have completely
// finished [...] The `-1` is there to end the steady state measurement
// slightly early to make sure we don't include the ramp down phase at all"
// (notify_request_finished, called in a finally, so failed requests count
// too). num_requests is every request sent, so N here is every request of
// the set, ended or not. The tokens of the window are those the client
// counted between the two instants: Set.OutputTokens(start, end). Paper:
// Chung et al., "The ML.ENERGY Benchmark" (arXiv:2505.06371).
//
// The benchmark sets no minimum of N - C - 1 >= C: with fewer requests the
// window may still be valid (the first finish comes after the C-th first
// token in a closed loop), so none is imposed here. When N - C - 1 <= 0
// the benchmark closes at the first finish and forces the start (a
// fallback for failed runs); that case is reported as !ok.
func (s *Set) SteadyWindow(maxNumSeqs int) (startNs, endNs int64, concurrency int, ok bool) {
	c := maxNumSeqs
	if c <= 0 {
		c = s.maxConcurrency()
	}
	k := len(s.Requests) - c - 1
	if c < 1 || k < 1 || len(s.firsts) < c || len(s.ends) < k {
		return 0, 0, c, false
	}
	startNs, endNs = s.firsts[c-1], s.ends[k-1]
	if endNs <= startNs {
		return 0, 0, c, false
	}
	return startNs, endNs, c, true
}

// spread is n tokens generated uniformly over [a, b] (at a when a == b).
type spread struct {
	a, b int64
	n    float64
}

// spreadIndex answers "how many spread tokens before t" in O(log n). With
// r_i = n_i / (b_i - a_i), the tokens before t are
//
//	sum_{b_i < t} n_i + sum_{a_i < t <= b_i} r_i (t - a_i)
//	= N_b(t) + t (R_a(t) - R_b(t)) - (RA_a(t) - RA_b(t))
//
// where R_a, RA_a are prefix sums of r_i and r_i a_i over the spans by a,
// and R_b, RA_b the same by b (a span with b_i < t also has a_i < t, so the
// difference keeps the spans under way at t). Stamps are taken relative
// to base, the earliest a, to keep the products small.
type spreadIndex struct {
	base, last int64
	pointB     []int64   // every spread's b, ascending...
	pointN     []float64 // ...and prefix sums of n (len+1)
	spanA      []int64   // spans (a < b) by a...
	spanRA     []float64 // ...prefix sums of r (len+1)
	spanRAA    []float64 // ...and of r*(a-base)
	spanB      []int64   // spans by b...
	spanRB     []float64
	spanRBA    []float64
}

func newSpreadIndex(sp []spread) spreadIndex {
	var x spreadIndex
	if len(sp) == 0 {
		return x
	}
	x.base, x.last = sp[0].a, sp[0].b
	for _, s := range sp {
		x.base, x.last = min(x.base, s.a), max(x.last, s.b)
	}
	slices.SortFunc(sp, func(p, q spread) int { return cmp.Compare(p.b, q.b) })
	x.pointB = make([]int64, len(sp))
	x.pointN = make([]float64, len(sp)+1)
	var spans []spread
	for i, s := range sp {
		x.pointB[i] = s.b
		x.pointN[i+1] = x.pointN[i] + s.n
		if s.a < s.b {
			spans = append(spans, s)
		}
	}
	rate := func(s spread) float64 { return s.n / float64(s.b-s.a) }
	// spans is sorted by b (sp was).
	x.spanB = make([]int64, len(spans))
	x.spanRB = make([]float64, len(spans)+1)
	x.spanRBA = make([]float64, len(spans)+1)
	for i, s := range spans {
		r := rate(s)
		x.spanB[i] = s.b
		x.spanRB[i+1] = x.spanRB[i] + r
		x.spanRBA[i+1] = x.spanRBA[i] + r*float64(s.a-x.base)
	}
	slices.SortFunc(spans, func(p, q spread) int { return cmp.Compare(p.a, q.a) })
	x.spanA = make([]int64, len(spans))
	x.spanRA = make([]float64, len(spans)+1)
	x.spanRAA = make([]float64, len(spans)+1)
	for i, s := range spans {
		r := rate(s)
		x.spanA[i] = s.a
		x.spanRA[i+1] = x.spanRA[i] + r
		x.spanRAA[i+1] = x.spanRAA[i] + r*float64(s.a-x.base)
	}
	return x
}

// before is the number of spread tokens generated before t.
func (x *spreadIndex) before(t int64) float64 {
	if len(x.pointB) == 0 || t <= x.base {
		return 0
	}
	if t > x.last {
		return x.pointN[len(x.pointB)]
	}
	n := x.pointN[countBefore(x.pointB, t)]
	ia, ib := countBefore(x.spanA, t), countBefore(x.spanB, t)
	if ia == ib {
		return n // no span under way at t
	}
	d := float64(t - x.base)
	part := d*(x.spanRA[ia]-x.spanRB[ib]) - (x.spanRAA[ia] - x.spanRBA[ib])
	// Rounding can push the partial sum a hair outside its bounds.
	return n + math.Max(part, 0)
}
