package serving

import (
	"cmp"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// randomEvents are n request events in arrival order, as randomTokens
// makes tokens: every kind, every combination of optional fields, errors
// from a few texts, and extreme values.
func randomEvents(r *rand.Rand, n int, jitterNs int64) []Event {
	out := make([]Event, n)
	t := int64(1_767_603_600_000_000_000)
	errs := []string{"timeout", `{"code":500}`, "true", "out of memory: KV cache"}
	for i := range out {
		t += r.Int64N(20_000_000)
		ts := t
		if jitterNs > 0 {
			ts -= r.Int64N(jitterNs)
		}
		e := Event{TimestampNs: ts, Kind: EventKind(1 + r.IntN(3)), Req: r.Int32N(50_000), Has: uint8(r.IntN(16))}
		if e.Has&HasClient != 0 {
			e.ClientTimestampNs = ts - 3_600_000_000_000 + r.Int64N(200_000)
			if r.IntN(20) == 0 {
				e.ClientTimestampNs = r.Int64() - r.Int64() // anything at all
			}
		}
		if e.Has&HasInput != 0 {
			e.InputTokens = r.Int64N(8192)
			if r.IntN(20) == 0 {
				e.InputTokens = -r.Int64()
			}
		}
		if e.Has&HasOutput != 0 {
			e.OutputTokens = r.Int64N(4096)
			if r.IntN(20) == 0 {
				e.OutputTokens = math.MaxInt64
			}
		}
		if e.Has&HasTask != 0 {
			e.Task = r.Int32N(64)
			if r.IntN(20) == 0 {
				e.Task = math.MinInt32
			}
		}
		if r.IntN(50) == 0 {
			e.Req = math.MaxInt32
		}
		if e.Kind == RequestEnd && r.IntN(5) == 0 {
			e.Error = errs[r.IntN(len(errs))]
		}
		out[i] = e
	}
	return out
}

func stableSortedEvents(events []Event) []Event {
	s := slices.Clone(events)
	slices.SortStableFunc(s, func(a, b Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	return s
}

func unpackedEvents(c *EventCursor) []Event {
	var out []Event
	for e, ok := c.Next(); ok; e, ok = c.Next() {
		out = append(out, e)
	}
	return out
}

// Every field of every event comes back exactly, extremes included, in
// far fewer bytes than the Events take.
func TestEventLogRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{0, 1, logBlock - 1, logBlock, logBlock + 1, 40*logBlock + 17} {
		want := stableSortedEvents(randomEvents(r, n, 0))
		if n > 3 {
			want[0].TimestampNs, want[n-1].TimestampNs = math.MinInt64, math.MaxInt64
			want[1].ClientTimestampNs, want[1].Has = math.MaxInt64, want[1].Has|HasClient
			want[2].ClientTimestampNs, want[2].Has = math.MinInt64, want[2].Has|HasClient
		}
		l := NewEventLog(want)
		if got := unpackedEvents(l.All()); !slices.Equal(got, want) {
			t.Fatalf("n=%d: events differ after packing", n)
		}
		if l.Len() != n {
			t.Errorf("n=%d: Len %d", n, l.Len())
		}
		if n > 1000 {
			if per := float64(l.Bytes()) / float64(n); per > 16 {
				t.Errorf("n=%d: %.1f bytes an event packed", n, per)
			}
		}
	}
	var none *EventLog
	if _, ok := none.All().Next(); ok || none.Len() != 0 || none.Err() != nil {
		t.Error("a nil log is not empty")
	}
}

// Range returns exactly the events a linear filter keeps, at block edges
// and between equal stamps.
func TestEventLogRange(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	events := randomEvents(r, 5*logBlock+3, 0)
	for i := range events { // runs of equal stamps across block edges
		if i%7 < 3 {
			events[i].TimestampNs = events[i/7*7].TimestampNs
		}
	}
	events = stableSortedEvents(events)
	l := NewEventLog(events)
	rangeIsAFilter(t, events, func(a, b int64) []Event { return unpackedEvents(l.Range(a, b)) })
}

// The EventSorter gives what a stable sort by stamp gives, nearly in
// order (the tail), far out of order (the fallback) and in order.
func TestEventSorterIsAStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, tc := range []struct {
		n      int
		jitter int64
	}{{3 * sorterTail, 0}, {3 * sorterTail, 300_000_000}, {3 * sorterTail, 1 << 40}, {100, 1 << 40}} {
		in := randomEvents(r, tc.n, tc.jitter)
		for i := range in {
			if i%5 == 1 {
				in[i].TimestampNs = in[i-1].TimestampNs
			}
		}
		var s EventSorter
		for _, e := range in {
			s.Add(e)
		}
		if got := unpackedEvents(s.Log().All()); !slices.Equal(got, stableSortedEvents(in)) {
			t.Errorf("n=%d jitter=%d: the sorter's order is not the stable sort's", tc.n, tc.jitter)
		}
	}
}

// A spilled event log reads back what it was given, leaves no file, and
// reports a failed read.
func TestEventLogSpill(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func(v int) { SpillAfter = v }(SpillAfter)
	SpillAfter = 0
	want := stableSortedEvents(randomEvents(rand.New(rand.NewPCG(27, 28)), 300_000, 0))
	l := NewEventLog(want)
	if l.sp == nil || len(l.sp.offs) < 3 {
		t.Fatalf("nothing spilled (%d chunks)", len(l.chunks))
	}
	if files, _ := os.ReadDir(tmp); len(files) != 0 {
		t.Errorf("spill file left in the temporary directory: %v", files)
	}
	if got := unpackedEvents(l.All()); !slices.Equal(got, want) {
		t.Fatal("events differ after spilling")
	}
	a, b := want[100_000].TimestampNs, want[150_000].TimestampNs
	lo, _ := slices.BinarySearchFunc(want, a, func(x Event, t int64) int { return cmp.Compare(x.TimestampNs, t) })
	hi, _ := slices.BinarySearchFunc(want, b+1, func(x Event, t int64) int { return cmp.Compare(x.TimestampNs, t) })
	if got := unpackedEvents(l.Range(a, b)); !slices.Equal(got, want[lo:hi]) {
		t.Fatal("a range differs after spilling")
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	l.sp.f.Close()
	if got := unpackedEvents(l.All()); len(got) >= len(want) {
		t.Fatalf("read %d events from a log whose file is gone", len(got))
	}
	if l.Err() == nil {
		t.Fatal("no error after a failed read")
	}
}

func TestEventLogAppendOutOfOrderPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for an event earlier than the last")
		}
	}()
	l := &EventLog{}
	l.Append(Event{TimestampNs: 10, Kind: RequestStart})
	l.Append(Event{TimestampNs: 9, Kind: RequestEnd})
}
