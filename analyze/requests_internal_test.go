package analyze

import (
	"cmp"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/trace"
)

// The loader makes each request event compact straight from the events
// table's columns; the result is what converting the table's rows gives
// (serving.RequestEvents, the path serving.Build takes), in the same
// stable order, and the other events stay in Data.Events.
func TestLoadedRequestEventsAreTheRows(t *testing.T) {
	dir := filepath.Join("..", "testdata", "runs", "h100-bs32-cycles")
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := trace.ReadTable[trace.Event](r, trace.TableEvents)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(rows, func(a, b trace.Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	want, wantIDs := serving.RequestEvents(rows, nil)
	if len(want) == 0 {
		t.Fatal("the run has no request events to compare")
	}
	// The loader's id table holds the token events' ids too: the events
	// are compared with their ids.
	var loaded []serving.Event
	c := d.RequestEvents.All()
	for e, ok := c.Next(); ok; e, ok = c.Next() {
		loaded = append(loaded, e)
	}
	if len(loaded) != len(want) || d.RequestEvents.Len() != len(want) {
		t.Fatalf("loaded %d request events, the rows give %d", len(loaded), len(want))
	}
	for i, e := range loaded {
		w := want[i]
		if d.IDs[e.Req] != wantIDs[w.Req] {
			t.Fatalf("request event %d is of %q, the rows give %q", i, d.IDs[e.Req], wantIDs[w.Req])
		}
		e.Req, w.Req = 0, 0
		if e != w {
			t.Fatalf("request event %d: loaded %+v, the rows give %+v", i, e, w)
		}
	}
	others := 0
	for _, e := range rows {
		if e.Kind != "token" && serving.RequestKind(e.Kind) == 0 {
			others++
		}
	}
	if len(d.Events) != others {
		t.Fatalf("Data.Events has %d events, the table %d that are neither tokens nor request events", len(d.Events), others)
	}
	for _, e := range d.Events {
		if serving.RequestKind(e.Kind) != 0 {
			t.Fatalf("a %s event left in Data.Events", e.Kind)
		}
	}
}
