// Package serving reconstructs the inference workload from a run's events:
// requests, when their tokens came out, and their latencies.
//
// Two clocks are involved. Every event has the recorder's arrival stamp,
// on the clock of the power samples: energy is attributed to tokens and
// windows with it. Clients may also send their own stamp (ts): latency
// uses it when every event of a request carries one, since it does not
// include the socket's delay; otherwise arrival stamps.
//
// Output tokens: a request's first_token counts 1 and each token event its
// count ("count more tokens are ready", docs/events.md), at their stamps.
// A request that sent no token events but ended with output_tokens has
// them spread evenly from its first token (or start) to its end: its
// first_token counts 1 at its stamp, the rest over the span.
//
// A request whose request_end carries an error attribute failed (the
// server returned an error, stalled or dropped the connection; the Python
// client's request block and llem load send it): the GPU worked for it,
// so its energy stays in the window, but its tokens are not output, and
// it is left out of the requests that ended and of the latencies, as
// vLLM's benchmarks leave out failed requests.
package serving

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/llem/llem/trace"
)

// Token is a token event, kept compact (24 bytes): a long run has
// millions. Req indexes the request-id table given to Build.
type Token struct {
	TimestampNs       int64
	ClientTimestampNs int64 // 0 when the client sent no ts
	Req               int32
	Count             int32
}

// Request is one request reconstructed from its events. It holds no
// pointer (its id indexes the id table given to Build, its error the
// Set's): a day of a busy server has most of a million, which the
// collector would otherwise scan on every cycle.
type Request struct {
	// Arrival stamps (trace clock); 0 when the event is missing.
	StartNs, FirstTokenNs, LastTokenNs, EndNs int64
	// Client stamps; 0 when missing.
	ClientStartNs, ClientFirstTokenNs, ClientLastTokenNs, ClientEndNs int64
	InputTokens, OutputTokens                                         int64 // from the events; -1 when not given
	StreamedTokens                                                    int64 // first_token (1) plus the token counts
	id                                                                int32 // the client's id: ids[id] of the table given to Build
	use                                                               int32 // 1 for the id's first request, 2 for the next...
	seq                                                               int32 // order of creation, while the builder runs
	// err is the request_end's error attribute: the Set's errs[err-1],
	// 0 when it has none. A request with one failed, and its tokens are
	// not output.
	err       int32
	allClient bool // every event of the request had a client stamp
}

// Failed reports whether the request's request_end carried an error.
func (r *Request) Failed() bool { return r.err != 0 }

// ID is the client's id of request r, given the id table that the Set
// was built with (the Set does not keep it: nothing after the build
// needs it), with "#2", "#3"... appended when the id was reused after
// its earlier request ended.
func (r *Request) ID(ids []string) string {
	if r.use <= 1 {
		return ids[r.id]
	}
	return fmt.Sprintf("%s#%d", ids[r.id], r.use)
}

// Error is the error attribute of request r's request_end ("" when it
// has none).
func (s *Set) Error(r *Request) string {
	if r.err == 0 {
		return ""
	}
	return s.errs[r.err-1]
}

// Set is every request of a run, with indexes for window queries.
type Set struct {
	// reqs are the requests by start (requests without a start by first
	// stamp), then id, packed; n of them. failed has a bit set for each
	// that failed, when one did.
	reqs   requestLog
	n      int
	failed []uint64
	// Problems are inconsistencies found, each with how often it occurred.
	Problems []string

	errs []string // the distinct errors, which Request.err indexes (+1)

	tokens *TokenLog // the token events (shared with the caller, not copied)...
	// ...the output of those before each block of the log (cum[k] counts
	// its first k*logBlock tokens; a count for each would cost 8 bytes a
	// token)...
	cum []int64
	// ...and the requests they went to: only[id] is the index of the one
	// request that the tokens of ids[id] went to, or -1 for an id whose
	// tokens went to several (one after the other: the id was reused),
	// whose epochs are then in epochs.more, each from the stamp of its
	// first token (the first from any), so that a token belongs to the
	// last beginning at or before its stamp. An index per token would
	// cost 4 bytes a token.
	only   []int32
	epochs epochs
	spread []spread // requests whose tokens are spread over their span
	ends   []int64  // request_end stamps, sorted
	firsts []int64  // first_token stamps, sorted: each is one output token
}

type epoch struct {
	fromNs int64
	seq    int32 // the request's seq while the builder runs; its index in the Set after
}

// epochs are the epochs of every id. Nearly every id names one request:
// while the builder runs, first holds its seq (4 bytes an id: a slice for
// each was 40 bytes and an allocation; -1 for none yet), and the whole
// list of an id used again (first -2) is in a map that only those ids
// look up. The first epoch of a list begins at the smallest stamp: a
// token of the id is never before it. Once the requests are sorted,
// first becomes Set.only.
type epochs struct {
	first []int32
	more  map[int32][]epoch
}

func newEpochs(ids int) epochs {
	e := epochs{first: make([]int32, ids)}
	for i := range e.first {
		e.first[i] = -1
	}
	return e
}

// add appends ep to id's epochs, unless it is of the request that id's
// last epoch is of.
func (e *epochs) add(id int32, ep epoch) {
	switch f := e.first[id]; {
	case f == -1:
		e.first[id] = ep.seq
	case f >= 0:
		if f != ep.seq {
			if e.more == nil {
				e.more = map[int32][]epoch{}
			}
			e.first[id] = -2
			e.more[id] = []epoch{{fromNs: math.MinInt64, seq: f}, ep}
		}
	default:
		if l := e.more[id]; l[len(l)-1].seq != ep.seq {
			e.more[id] = append(l, ep)
		}
	}
}

type spread struct {
	a, b int64
	n    float64
}

// Event is a request's event (request_start, first_token, request_end) as
// the request set reads it, with nothing to allocate beside it (a
// trace.Event's optional fields are one allocation each); a run's are
// held packed in an EventLog (a day of a busy server has two million).
// Its request is an index into the id table that the token events index
// too, so that the builder finds a request without a map of ids.
type Event struct {
	TimestampNs       int64
	ClientTimestampNs int64  // when Has&HasClient
	InputTokens       int64  // when Has&HasInput
	OutputTokens      int64  // when Has&HasOutput
	Error             string // request_end's error attribute (ErrorAttr)
	Req               int32  // the request id: ids[Req]
	Task              int32  // when Has&HasTask
	Kind              EventKind
	Has               uint8
}

// EventKind is which of a request's events an Event is.
type EventKind uint8

const (
	RequestStart EventKind = iota + 1
	FirstToken
	RequestEnd
)

// The optional fields an Event has.
const (
	HasClient uint8 = 1 << iota
	HasInput
	HasOutput
	HasTask
)

// RequestKind is the EventKind of a trace event's kind; 0 for the kinds
// that are not a request's.
func RequestKind(kind string) EventKind {
	switch kind {
	case "request_start":
		return RequestStart
	case "first_token":
		return FirstToken
	case "request_end":
		return RequestEnd
	}
	return 0
}

// RequestEvents are the request events among events, in their order, and
// ids with the events' request ids it lacked appended (a new slice: ids
// is not changed).
func RequestEvents(events []trace.Event, ids []string) ([]Event, []string) {
	ids = slices.Clip(ids)
	index := make(map[string]int32, len(ids))
	for i, id := range ids {
		index[id] = int32(i)
	}
	var out []Event
	for _, e := range events {
		k := RequestKind(e.Kind)
		if k == 0 {
			continue
		}
		req, ok := index[e.RequestID]
		if !ok {
			req = int32(len(ids))
			ids = append(ids, e.RequestID)
			index[e.RequestID] = req
		}
		r := Event{TimestampNs: e.TimestampNs, Req: req, Kind: k}
		if e.ClientTimestampNs != nil {
			r.ClientTimestampNs, r.Has = *e.ClientTimestampNs, r.Has|HasClient
		}
		if e.InputTokens != nil {
			r.InputTokens, r.Has = *e.InputTokens, r.Has|HasInput
		}
		if e.OutputTokens != nil {
			r.OutputTokens, r.Has = *e.OutputTokens, r.Has|HasOutput
		}
		if e.Task != nil {
			r.Task, r.Has = *e.Task, r.Has|HasTask
		}
		if k == RequestEnd {
			r.Error = ErrorAttr(e.Attrs)
		}
		out = append(out, r)
	}
	return out, ids
}

// Build reconstructs the requests from the run's events (token events
// apart, as Tokens whose Req indexes ids). Events of other kinds are
// ignored. Both slices must be sorted by arrival stamp.
func Build(events []trace.Event, tokens []Token, ids []string) *Set {
	evs, ids := RequestEvents(events, ids)
	return BuildLog(NewEventLog(evs), NewTokenLog(tokens), ids)
}

// BuildLog is Build of request events and tokens packed in logs, whose
// Req both index ids. The Set keeps the token log (and shares it with the
// caller) to answer OutputTokens and Latency.
func BuildLog(events *EventLog, tokens *TokenLog, ids []string) *Set {
	b := buildWith(events.All(), tokens.All(), ids)
	s := b.s
	s.tokens = tokens
	if len(s.errs) > 0 {
		s.index() // failed requests' tokens count nothing: a pass of its own
		return s
	}
	s.cum = b.count.done() // every token counts: the builder's pass made it
	return s
}

func buildWith(events *EventCursor, tokens *Cursor, ids []string) *builder {
	b := newBuilder(tokens, ids)
	starts := 0
	count := *events // a second cursor at the same place
	for e, ok := count.Next(); ok; e, ok = count.Next() {
		if e.Kind == RequestStart {
			starts++
		}
	}
	if starts > 0 {
		b.reqs = make([]Request, 0, starts) // nearly always every request
	}
	for e, ok := events.Next(); ok; e, ok = events.Next() {
		b.addTokensUpTo(e.TimestampNs - 1)
		b.event(&e)
	}
	b.addTokensUpTo(1<<63 - 1)
	b.finish()
	return b
}

// builder holds the state of Build while it walks the events in time.
type builder struct {
	s        *Set
	tokens   *Cursor
	next     Token // the next token of tokens, when more is true
	more     bool
	ids      []string
	problems map[string]int
	order    []string // problems in order of first occurrence
	// reqs are the requests in order of first sight, by value (a pointer
	// to each, allocated on its own, was 150 MB beside them on a day's
	// run); a request is known by its index there (its seq).
	reqs []Request
	// byID[i] is what the builder knows of ids[i], which events and
	// tokens both index: a map by id was 130 MB on a day's run.
	byID []idState
	// The tokens' running count as index makes it when no request failed.
	count    runningCount
	errIndex map[string]int32 // the Set's errs, by text (+1)
}

func newBuilder(tokens *Cursor, ids []string) *builder {
	b := &builder{s: &Set{epochs: newEpochs(len(ids))}, tokens: tokens, ids: ids,
		problems: map[string]int{}, byID: make([]idState, len(ids))}
	for i := range b.byID {
		b.byID[i].cur = -1
	}
	b.next, b.more = tokens.Next()
	return b
}

func (b *builder) problem(p string) {
	if b.problems[p] == 0 {
		b.order = append(b.order, p)
	}
	b.problems[p]++
}

// get is the current request of ids[id], or a new one: starting a request
// whose id was used already opens another, named id#2, id#3... The
// pointer it returns is good until the next get.
func (b *builder) get(id int32, starting bool) *Request {
	st := &b.byID[id]
	var r *Request
	if st.cur >= 0 {
		r = &b.reqs[st.cur]
	}
	if r == nil || (starting && (r.StartNs != 0 || r.EndNs != 0 || r.FirstTokenNs != 0)) {
		if r != nil && r.EndNs == 0 && starting {
			b.problem("request_start for a request id that had not ended (the earlier one is left without an end)")
		}
		st.uses++
		st.cur = int32(len(b.reqs))
		b.reqs = append(b.reqs, Request{id: id, use: st.uses, InputTokens: -1, OutputTokens: -1, allClient: true, seq: st.cur})
		r = &b.reqs[st.cur]
	}
	return r
}

// idState is what the builder knows of a request id: its current
// request (-1: none yet) and how many requests it has named.
type idState struct {
	cur, uses int32
}

// client is an event's client stamp, 0 (and the request no longer
// all-client) when it has none.
func client(r *Request, e *Event) int64 {
	if e.Has&HasClient == 0 {
		r.allClient = false
		return 0
	}
	return e.ClientTimestampNs
}

// addTokensUpTo adds the token events stamped at or before t.
func (b *builder) addTokensUpTo(t int64) {
	for ; b.more && b.next.TimestampNs <= t; b.next, b.more = b.tokens.Next() {
		tk := b.next
		var r *Request
		if k := b.byID[tk.Req].cur; k >= 0 {
			r = &b.reqs[k]
		}
		// Fix: r.StartNs == 0 added. A request first seen through a
		// token event had only that first event counted, not the
		// later ones, though each is a token event for a request
		// that had not started.
		if r == nil || r.StartNs == 0 || r.EndNs != 0 {
			b.problem("token events for a request that had not started or had ended")
			if r == nil {
				r = b.get(tk.Req, false)
			}
		}
		// Tokens of an id go to one request until its next opens: between
		// two tokens of one stamp no event is added, so an epoch that
		// begins at a token's stamp is the one it went to.
		b.s.epochs.add(tk.Req, epoch{fromNs: tk.TimestampNs, seq: int32(r.seq)})
		b.count.add(int64(tk.Count))
		r.StreamedTokens += int64(tk.Count)
		r.LastTokenNs = tk.TimestampNs
		if tk.ClientTimestampNs == 0 {
			r.allClient = false
		}
		r.ClientLastTokenNs = tk.ClientTimestampNs
	}
}

// event adds a request_start, first_token or request_end.
func (b *builder) event(e *Event) {
	switch e.Kind {
	case RequestStart:
		r := b.get(e.Req, true)
		r.StartNs, r.ClientStartNs = e.TimestampNs, client(r, e)
		if e.Has&HasInput != 0 {
			r.InputTokens = e.InputTokens
		}
	case FirstToken:
		r := b.get(e.Req, false)
		if r.FirstTokenNs != 0 {
			b.problem("a second first_token for the same request (ignored)")
			return
		}
		r.FirstTokenNs, r.ClientFirstTokenNs = e.TimestampNs, client(r, e)
		r.StreamedTokens++
		r.LastTokenNs, r.ClientLastTokenNs = r.FirstTokenNs, r.ClientFirstTokenNs
	case RequestEnd:
		r := b.get(e.Req, false)
		if r.EndNs != 0 {
			b.problem("a second request_end for the same request (ignored)")
			return
		}
		r.EndNs, r.ClientEndNs = e.TimestampNs, client(r, e)
		if e.Has&HasInput != 0 {
			r.InputTokens = e.InputTokens
		}
		if e.Has&HasOutput != 0 {
			r.OutputTokens = e.OutputTokens
		}
		r.err = b.errorIndex(e.Error)
	}
}

// errorIndex is err's index in the Set's errs, plus 1; 0 for "".
func (b *builder) errorIndex(err string) int32 {
	if err == "" {
		return 0
	}
	k, ok := b.errIndex[err]
	if !ok {
		if b.errIndex == nil {
			b.errIndex = map[string]int32{}
		}
		b.s.errs = append(b.s.errs, err)
		k = int32(len(b.s.errs))
		b.errIndex[err] = k
	}
	return k
}

// ErrorAttr is the error attribute of an event's attrs (a JSON object),
// as text; "" when there is none, or it is null, false or "".
func ErrorAttr(attrs string) string {
	if !strings.Contains(attrs, `"error"`) { // most events: no parse
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(attrs), &m) != nil {
		return ""
	}
	v := m["error"]
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	switch string(v) {
	case "", "null", "false":
		return ""
	}
	return string(v)
}

// finish checks every request, spreads the output tokens of those that
// streamed none, and builds the Set's indexes.
func (b *builder) finish() *Set {
	s := b.s
	// Every request is kept, in order of first sight, then sorted and
	// packed. The stamps are made at their size: grown by doubling, a
	// day's half a million requests left their earlier copies to the
	// collector.
	s.n = len(b.reqs)
	if n := len(b.reqs); n > 0 {
		s.ends, s.firsts = make([]int64, 0, n), make([]int64, 0, n)
	}
	for i := range b.reqs {
		r := &b.reqs[i]
		switch {
		case r.StartNs == 0:
			b.problem("requests without request_start (latency needs it)")
		case r.EndNs == 0:
			b.problem("requests without request_end (unfinished, or the run was cut)")
		}
		// Spread the output_tokens of a request that sent no token events.
		// Fix: this used to require StreamedTokens == 0, but a first_token
		// alone makes it 1, so a request with a first_token and no token
		// events (examples/sim_client.py) counted 1 token instead of its
		// output_tokens, and was flagged as a mismatch. Now its first_token
		// still counts 1 at its stamp and the rest is spread from it to
		// the end.
		tokenEvents := r.StreamedTokens
		if r.FirstTokenNs != 0 {
			tokenEvents-- // the first_token's own 1
		}
		if r.Failed() {
			b.problem("requests that failed (request_end with an error attribute): their tokens are not output, and they are not counted as ended or in latency")
			continue
		}
		spreadIt := tokenEvents == 0 && r.OutputTokens > r.StreamedTokens && r.EndNs != 0
		if r.OutputTokens >= 0 && r.StreamedTokens > 0 && r.OutputTokens != r.StreamedTokens && !spreadIt {
			b.problem("requests whose request_end output_tokens differs from the tokens streamed (the streamed count is used)")
		}
		if spreadIt {
			a := r.FirstTokenNs
			if a == 0 {
				a = r.StartNs
			}
			// Fix: with neither a start nor a first token (or stamps after
			// the end) the tokens were dropped; count them at the end.
			if a == 0 || a > r.EndNs {
				a = r.EndNs
			}
			s.spread = append(s.spread, spread{a: a, b: r.EndNs, n: float64(r.OutputTokens - r.StreamedTokens)})
		}
		if r.EndNs != 0 {
			s.ends = append(s.ends, r.EndNs)
		}
		if r.FirstTokenNs != 0 {
			s.firsts = append(s.firsts, r.FirstTokenNs)
		}
	}
	slices.Sort(s.ends)
	slices.Sort(s.firsts)
	ids := b.ids
	slices.SortStableFunc(b.reqs, func(a, b Request) int {
		if c := cmp.Compare(a.first(), b.first()); c != 0 {
			return c
		}
		if a.use <= 1 && b.use <= 1 { // nearly always: no name to make
			return strings.Compare(ids[a.id], ids[b.id])
		}
		return strings.Compare(a.ID(ids), b.ID(ids))
	})
	for _, p := range b.order {
		s.Problems = append(s.Problems, fmt.Sprintf("%d x %s", b.problems[p], p))
	}
	// The epochs name requests by their place in the sorted requests.
	at := make([]int32, len(b.reqs)) // by seq
	if len(s.errs) > 0 {
		s.failed = make([]uint64, (len(b.reqs)+63)/64)
	}
	for i := range b.reqs {
		r := &b.reqs[i]
		at[r.seq] = int32(i)
		if r.Failed() {
			s.failed[i/64] |= 1 << (i % 64)
		}
		s.reqs.add(r)
	}
	b.reqs = nil
	s.only, s.epochs.first = s.epochs.first, nil
	for id, seq := range s.only {
		s.only[id] = -1
		if seq >= 0 {
			s.only[id] = at[seq]
		}
	}
	for _, l := range s.epochs.more {
		for k := range l {
			l[k].seq = at[l[k].seq]
		}
	}
	return s
}

// Len is the number of requests (0 for a nil Set).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Requests yields every request with its index, by start (requests
// without a start by first stamp), then id. The Request it yields is
// reused from one to the next: a caller that keeps one copies it.
func (s *Set) Requests() iter.Seq2[int, *Request] { return s.reqs.all() }

// Err reports a failure to read back the set's spilled requests: the
// passes over them stopped short, and whatever was computed from them is
// incomplete.
func (s *Set) Err() error {
	if s == nil {
		return nil
	}
	return s.reqs.err()
}

// failedAt reports whether request i failed.
func (s *Set) failedAt(i int32) bool {
	return s.failed != nil && s.failed[i/64]&(1<<(i%64)) != 0
}

// index makes the running count of the output of the token events. The
// token events of failed requests count nothing: that is known only at
// their request_end, so the count is made once every request is known.
func (s *Set) index() {
	rc := runningCount{cum: make([]int64, 0, s.tokens.Len()/logBlock+1)}
	c := s.tokens.All()
	for tk, ok := c.Next(); ok; tk, ok = c.Next() {
		rc.add(s.counted(tk))
	}
	s.cum = rc.done()
}

// runningCount is the output of the token events before every
// logBlock-th one, and after the last when they fill whole blocks: what
// countedBefore starts from.
type runningCount struct {
	cum   []int64
	total int64
	seen  int
}

func (rc *runningCount) add(n int64) {
	if rc.seen%logBlock == 0 {
		rc.cum = append(rc.cum, rc.total)
	}
	rc.seen++
	rc.total += n
}

func (rc *runningCount) done() []int64 {
	if rc.seen%logBlock == 0 {
		rc.cum = append(rc.cum, rc.total)
	}
	return rc.cum
}

// request is the index of the request token event tk went to.
func (s *Set) request(tk Token) int32 {
	if i := s.only[tk.Req]; i >= 0 {
		return i
	}
	// An id used by several requests, one after the other.
	l := s.epochs.more[tk.Req]
	j, _ := slices.BinarySearchFunc(l, tk.TimestampNs+1, func(e epoch, t int64) int { return cmp.Compare(e.fromNs, t) })
	return l[j-1].seq
}

// counted is what token event tk adds to the output: its count, or
// nothing when its request failed.
func (s *Set) counted(tk Token) int64 {
	if !s.failedAt(s.request(tk)) {
		return int64(tk.Count)
	}
	return 0
}

// countedBefore is the output of the token events stamped before t.
func (s *Set) countedBefore(t int64) int64 {
	k := s.tokens.blockBefore(t)
	n := s.cum[k]
	c := s.tokens.at(k)
	for tk, ok := c.Next(); ok && tk.TimestampNs < t; tk, ok = c.Next() {
		n += s.counted(tk)
	}
	return n
}

// first is the request's earliest stamp.
func (r *Request) first() int64 {
	for _, t := range []int64{r.StartNs, r.FirstTokenNs, r.LastTokenNs, r.EndNs} {
		if t != 0 {
			return t
		}
	}
	return 0
}

// OutputTokens counts the output tokens generated in [startNs, endNs)
// (fractional where a spread request overlaps the window in part).
func (s *Set) OutputTokens(startNs, endNs int64) float64 {
	if endNs <= startNs {
		return 0
	}
	upTo := func(t int64) float64 { // streamed tokens with stamp < t
		f := sort.Search(len(s.firsts), func(i int) bool { return s.firsts[i] >= t })
		return float64(f) + float64(s.countedBefore(t))
	}
	n := upTo(endNs) - upTo(startNs)
	for _, sp := range s.spread {
		if sp.b == sp.a {
			if sp.a >= startNs && sp.a < endNs {
				n += sp.n
			}
			continue
		}
		lo, hi := max(sp.a, startNs), min(sp.b, endNs)
		if hi > lo {
			n += sp.n * float64(hi-lo) / float64(sp.b-sp.a)
		}
	}
	return n
}

// Ended counts the requests that ended in [startNs, endNs).
func (s *Set) Ended(startNs, endNs int64) int {
	i := sort.Search(len(s.ends), func(k int) bool { return s.ends[k] >= startNs })
	j := sort.Search(len(s.ends), func(k int) bool { return s.ends[k] >= endNs })
	return j - i
}

// Latency holds per-request latencies in seconds.
type Latency struct {
	// TTFT, TPOT and E2E have a value per request; ITL one per output
	// token after the first, which Gaps recomputes when asked.
	TTFT, TPOT, E2E []float64
	ITL             *Gaps
	// ITLSum and ITLTokens are, per request with gaps, the sum of its ITL
	// values and how many there are: the mean ITL is sum(ITLSum) /
	// sum(ITLTokens), and its interval resamples requests (the gaps of a
	// request are not independent of each other).
	ITLSum, ITLTokens []float64
}

// Latency of the requests that started in [startNs, endNs), named as vLLM
// and ML.ENERGY name them (docs/results.md): TTFT = first token - start;
// TPOT (time per output token) = (last token - first token) / (streamed
// tokens - 1), or from the end and output_tokens for a request that
// streamed none; ITL = every gap between a request's consecutive token
// events, divided by the tokens the later one brings and counted once per
// token; E2E = end - start. A metric whose events are missing is skipped.
func (s *Set) Latency(startNs, endNs int64) Latency {
	return s.PooledLatency([][2]int64{{startNs, endNs}})
}

// PooledLatency is Latency of each window, the windows' values one after
// the other, in one set of slices: the ITL has a value per token, and a
// copy per window would be as large again.
func (s *Set) PooledLatency(windows [][2]int64) Latency {
	var l Latency
	ins := make([][]bool, len(windows))
	windowsOf := make([]int32, s.n) // how many windows each request started in
	for k, w := range windows {
		ins[k] = s.latencyIn(&l, w[0], w[1])
		for i, in := range ins[k] {
			if in {
				windowsOf[i]++
			}
		}
	}
	// A request's gaps are the same in every window it started in: they
	// count once per such window. The sums and counts follow the windows'
	// order, as their interval resamples them in order.
	l.ITL = &Gaps{s: s, times: windowsOf}
	sum := make([]float64, s.n)
	count := make([]float64, s.n)
	l.ITL.each(func(i int32, v, span float64, n, k int64) {
		sum[i] += span
		count[i] += float64(n)
		l.ITL.add(v, k)
	})
	for _, in := range ins {
		for i := range s.n {
			if in[i] && count[i] > 0 {
				l.ITLSum, l.ITLTokens = append(l.ITLSum, sum[i]), append(l.ITLTokens, count[i])
			}
		}
	}
	return l
}

// latencyIn appends the TTFT, TPOT and E2E of the requests that started
// in [startNs, endNs) to l, and marks them.
func (s *Set) latencyIn(l *Latency, startNs, endNs int64) (in []bool) {
	in = make([]bool, s.n)
	for i, r := range s.Requests() {
		if r.StartNs == 0 || r.StartNs < startNs || r.StartNs >= endNs || r.Failed() {
			continue
		}
		in[i] = true
		start, first, last, end := r.StartNs, r.FirstTokenNs, r.LastTokenNs, r.EndNs
		if r.allClient {
			start, first, last, end = r.ClientStartNs, r.ClientFirstTokenNs, r.ClientLastTokenNs, r.ClientEndNs
		}
		if r.FirstTokenNs != 0 {
			l.TTFT = append(l.TTFT, float64(first-start)/1e9)
		}
		if r.EndNs != 0 {
			l.E2E = append(l.E2E, float64(end-start)/1e9)
		}
		switch {
		case r.StreamedTokens >= 2 && r.FirstTokenNs != 0:
			l.TPOT = append(l.TPOT, float64(last-first)/1e9/float64(r.StreamedTokens-1))
		case r.StreamedTokens <= 1 && r.OutputTokens >= 2 && r.FirstTokenNs != 0 && r.EndNs != 0:
			l.TPOT = append(l.TPOT, float64(end-first)/1e9/float64(r.OutputTokens-1))
		}
	}
	return in
}

// Spans returns each request's time in flight, in the order of the
// requests: from its start (or first stamp) to its end, or to the last
// stamp of the set for a request that never ended.
func (s *Set) Spans() [][2]int64 {
	var last int64
	for _, r := range s.Requests() {
		last = max(last, r.EndNs, r.LastTokenNs, r.StartNs)
	}
	spans := make([][2]int64, 0, s.n)
	for _, r := range s.Requests() {
		a, b := r.first(), r.EndNs
		if b == 0 {
			b = last
		}
		spans = append(spans, [2]int64{a, b})
	}
	return spans
}

// InFlight returns the merged spans during which at least one request was
// in flight (Spans, merged).
func (s *Set) InFlight() [][2]int64 {
	spans := s.Spans()
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var out [][2]int64
	for _, sp := range spans {
		if n := len(out); n > 0 && sp[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], sp[1])
			continue
		}
		out = append(out, sp)
	}
	return out
}

// MaxConcurrency is the most requests in flight at once.
func (s *Set) MaxConcurrency() int {
	var edges []edge
	for _, r := range s.Requests() {
		edges = r.inFlight(edges, func(int64) bool { return true })
	}
	return maxConcurrency(edges)
}

// edge is a request's start (d 1) or end (d -1).
type edge struct {
	t int64
	d int
}

// inFlight appends r's start and end to edges when it has both and in
// holds for both: it was in flight between them.
func (r *Request) inFlight(edges []edge, in func(int64) bool) []edge {
	if r.StartNs != 0 && r.EndNs != 0 && in(r.StartNs) && in(r.EndNs) {
		edges = append(edges, edge{r.StartNs, 1}, edge{r.EndNs, -1})
	}
	return edges
}

// maxConcurrency is the most requests in flight at once, given their
// starts and ends (it sorts edges).
func maxConcurrency(edges []edge) int {
	// Ends before starts at the same stamp: a request that ends as the
	// next starts does not overlap it.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.d, b.d)
	})
	n, best := 0, 0
	for _, e := range edges {
		n += e.d
		best = max(best, n)
	}
	return best
}

// SteadyWindowIn is the ML.ENERGY benchmark's event-based steady window
// (Chung et al., "The ML.ENERGY Benchmark", arXiv:2505.06371) of the
// requests seen in [fromNs, toNs]. Its code (ml-energy/benchmark,
// mlenergy/benchmark/llm/benchmark.py at c1d6557, class RequestTracker)
// opens the window once num_started >= max_num_seqs, a request counting
// as started at its first returned chunk, and closes it once
// num_finished >= num_requests - max_num_seqs - 1, where num_requests is
// every request sent (the -1 ends it slightly early, before the ramp
// down). Here N is every request seen, ended or not, and C is maxNumSeqs
// when > 0, else the most requests seen in flight at once. ok is false
// when N - C - 1 < 1 (the benchmark then falls back to the first finish;
// llem reports no window) or the close is not after the open.
//
// The requests seen are those of the run as if it held only the events
// and token events stamped in [fromNs, toNs]:
// a request counts when one of them is its, its first token and end
// count when stamped in it (an end in it that failed, neither), and it is
// in flight from a start in it to an end in it. This is what the
// requests rebuilt from that part of the events alone would give, but
// where a request's events contradict each other (an id started again
// before its request ended, a second first_token or request_end): the
// whole run's events, not the part's, tell which request is which.
func (s *Set) SteadyWindowIn(fromNs, toNs int64, maxNumSeqs int) (startNs, endNs int64, concurrency int, ok bool) {
	in := func(t int64) bool { return t != 0 && t >= fromNs && t <= toNs }
	// The requests with a token event in it (a bit each: a window's
	// requests are a day's run's at most).
	tokened := make([]uint64, (s.n+63)/64)
	if s.tokens != nil {
		c := s.tokens.Range(fromNs, toNs)
		for tk, more := c.Next(); more; tk, more = c.Next() {
			i := s.request(tk)
			tokened[i/64] |= 1 << (i % 64)
		}
	}
	n := 0
	var firsts, ends []int64
	var edges []edge // for the concurrency, when not given: the same pass
	for i, r := range s.Requests() {
		if tokened[i/64]&(1<<(i%64)) == 0 && !in(r.StartNs) && !in(r.FirstTokenNs) && !in(r.EndNs) {
			continue
		}
		n++
		if maxNumSeqs <= 0 {
			edges = r.inFlight(edges, in)
		}
		if r.Failed() && in(r.EndNs) { // else its failure lies outside
			continue
		}
		if in(r.FirstTokenNs) {
			firsts = append(firsts, r.FirstTokenNs)
		}
		if in(r.EndNs) {
			ends = append(ends, r.EndNs)
		}
	}
	slices.Sort(firsts)
	slices.Sort(ends)
	c := maxNumSeqs
	if c <= 0 {
		c = maxConcurrency(edges)
	}
	closeAt := n - c - 1
	if c < 1 || len(firsts) < c || closeAt < 1 || closeAt > len(ends) {
		return 0, 0, c, false
	}
	startNs, endNs = firsts[c-1], ends[closeAt-1]
	if endNs <= startNs {
		return 0, 0, c, false
	}
	return startNs, endNs, c, true
}
