package main

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/llem/llem/trace"
)

// Request model: a closed loop of Concurrency clients during each measure
// phase. A request streams its first token after ~50 ms and one more every
// ~25 ms; its length is drawn so that it lasts ~4 s.
const (
	inputTokens    = 512
	minOutput      = 120 // output tokens drawn uniformly in [minOutput, maxOutput]
	maxOutput      = 200
	ttftMean       = 50 * time.Millisecond
	tokenGapMean   = 25 * time.Millisecond
	startRoom      = int64(150 * time.Millisecond) // a request starts only with this much of measure left
	deadlineMargin = int64(time.Millisecond)       // requests end this long before phase_end measure
)

// slot is one closed-loop client of one cycle: it sends a request, streams
// it, and sends the next as soon as it ends, until the measure phase is
// about to end. The last request of a slot is cut short (its remaining
// tokens are not streamed) so that every request ends inside measure; its
// output_tokens is what was streamed.
type slot struct {
	rng      *rand.Rand
	order    int // tie-break in the heap
	prefix   string
	deadline int64

	t        int64  // time of the pending event
	kind     string // the pending event's kind
	req      int
	reqID    string
	target   int // output tokens this request would produce
	streamed int
}

func newSlot(seed int64, cy cycleSpan, i, order int) *slot {
	r := newRand(seed, saltSlot, int(cy.n), i)
	s := &slot{rng: r, order: order, prefix: fmt.Sprintf("c%d-s%02d-", cy.n, i),
		deadline: cy.holdStart - deadlineMargin}
	s.t = cy.measureStart + 500_000 + int64(i)*200_000 + r.Int64N(200_000)
	s.kind = "request_start"
	s.reqID = s.prefix + "0"
	if s.t+startRoom > s.deadline {
		s.kind = ""
	}
	return s
}

func (s *slot) done() bool { return s.kind == "" }

// jittered draws mean*(1+sd*N(0,1)) clamped to [lo, hi].
func (s *slot) jittered(mean time.Duration, sd float64, lo, hi time.Duration) int64 {
	v := float64(mean) * (1 + sd*s.rng.NormFloat64())
	return int64(math.Round(min(max(v, float64(lo)), float64(hi))))
}

// emit writes the pending event and moves to the next one.
func (s *slot) emit(e *eventOut) {
	ev := trace.Event{TimestampNs: s.t, GPU: trace.GPUAll, Kind: s.kind, RequestID: s.reqID, Source: "client"}
	lag := 20_000 + s.rng.Int64N(60_000) // socket latency: client stamp to arrival
	switch s.kind {
	case "request_start":
		e.add(ev, lag)
		s.target = minOutput + s.rng.IntN(maxOutput-minOutput+1)
		s.streamed = 0
		s.t += s.jittered(ttftMean, 0.2, 20*time.Millisecond, 120*time.Millisecond)
		s.kind = "first_token"
	case "first_token", "token":
		if s.kind == "token" {
			ev.Count = e.al.int64(1)
		}
		e.add(ev, lag)
		s.streamed++
		gap := s.jittered(tokenGapMean, 0.15, 10*time.Millisecond, 60*time.Millisecond)
		endLag := 200_000 + s.rng.Int64N(300_000)
		if s.streamed < s.target && s.t+gap+500_000 <= s.deadline {
			s.t += gap
			s.kind = "token"
		} else {
			s.t += endLag
			s.kind = "request_end"
		}
	case "request_end":
		ev.InputTokens = e.al.int64(inputTokens)
		ev.OutputTokens = e.al.int64(int64(s.streamed))
		e.add(ev, lag)
		s.req++
		s.reqID = s.prefix + fmt.Sprint(s.req)
		s.t += 200_000 + s.rng.Int64N(800_000) // the client sends the next request
		s.kind = "request_start"
		if s.t+startRoom > s.deadline {
			s.kind = ""
		}
	}
}

type slotHeap []*slot

func (h slotHeap) Len() int { return len(h) }
func (h slotHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].order < h[j].order
}
func (h slotHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *slotHeap) Push(x any)   { *h = append(*h, x.(*slot)) }
func (h *slotHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// eventGen merges the plan's fixed events with every slot's requests, in
// time order.
type eventGen struct {
	fixed  []trace.Event
	fi     int
	slots  slotHeap
	out    eventOut
	client int64 // client events written
}

// eventOut stamps events strictly after the previous one (two sources can
// draw the same nanosecond) and appends them to rows.
type eventOut struct {
	rows []trace.Event
	last int64
	al   *allocs
}

// add appends ev; lag > 0 sets the client's stamp that much earlier.
func (e *eventOut) add(ev trace.Event, lag int64) {
	ev.TimestampNs = max(ev.TimestampNs, e.last+1)
	e.last = ev.TimestampNs
	if lag > 0 {
		ev.ClientTimestampNs = e.al.int64(ev.TimestampNs - lag)
	}
	e.rows = append(e.rows, ev)
}

func newEventGen(p *plan, al *allocs) *eventGen {
	g := &eventGen{fixed: p.fixed, out: eventOut{last: math.MinInt64, al: al}}
	for _, cy := range p.cycles {
		for i := range p.cfg.Concurrency {
			if s := newSlot(p.cfg.Seed, cy, i, len(g.slots)); !s.done() {
				g.slots = append(g.slots, s)
			}
		}
	}
	heap.Init(&g.slots)
	return g
}

// until appends to rows every event before b.
func (g *eventGen) until(b int64, rows []trace.Event) []trace.Event {
	g.out.rows = rows
	for {
		haveFixed := g.fi < len(g.fixed)
		haveSlot := len(g.slots) > 0
		switch {
		case haveFixed && (!haveSlot || g.fixed[g.fi].TimestampNs <= g.slots[0].t):
			ev := g.fixed[g.fi]
			if ev.TimestampNs >= b {
				return g.out.rows
			}
			g.fi++
			var lag int64
			if ev.ClientTimestampNs != nil {
				lag = ev.TimestampNs - *ev.ClientTimestampNs
				ev.ClientTimestampNs = nil
				g.client++
			}
			g.out.add(ev, lag)
		case haveSlot:
			s := g.slots[0]
			if s.t >= b {
				return g.out.rows
			}
			s.emit(&g.out)
			g.client++
			if s.done() {
				heap.Pop(&g.slots)
			} else {
				heap.Fix(&g.slots, 0)
			}
		default:
			return g.out.rows
		}
	}
}
