package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/events"
	"github.com/llem/llem/loadgen/testserver"
	"github.com/llem/llem/record/eventsrv"
	"github.com/llem/llem/trace"
)

// recorder is the real recorder's event socket: it parses every line with
// the recorder's rules. stop closes the client and returns the events.
func recorder(t *testing.T) (ev *events.Client, stop func() []trace.Event) {
	t.Helper()
	dir, err := os.MkdirTemp("", "llemld") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := eventsrv.Listen(filepath.Join(dir, "s"), nil, eventsrv.Options{CloseGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = events.DialPath(srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	var got []trace.Event
	done := make(chan struct{})
	go func() { // what the recorder's writer does: take the queue when half full, and at the end
		defer close(done)
		for {
			select {
			case <-srv.Ready():
				evs, _ := srv.Take(nil, nil)
				got = append(got, evs...)
			case <-srv.Done():
				evs, _ := srv.Take(nil, nil)
				got = append(got, evs...)
				return
			}
		}
	}()
	return ev, func() []trace.Event {
		ev.Close()
		srv.Close()
		<-done
		if st := srv.Stats(); st.Bad != 0 || st.Dropped != 0 {
			t.Errorf("recorder: %d bad and %d dropped events", st.Bad, st.Dropped)
		}
		return got
	}
}

// serve starts the test server on loopback.
func serve(t *testing.T, s *testserver.Server) string {
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return hs.URL + "/v1"
}

func baseConfig(url string) Config {
	return Config{URL: url, Model: "tiny", API: APIChat, Concurrency: 4, Arrival: ArrivalPoisson,
		Measure: Limit{Requests: 20}, PromptTokens: 12, MaxTokens: 8, Seed: 1,
		StallTimeout: 5 * time.Second}
}

func runLoad(t *testing.T, cfg Config, ev *events.Client) (*Summary, error) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g.Run(context.Background(), ev)
}

// requests groups the request events by id.
type reqEvents struct {
	start, first, end *trace.Event
	tokens            []trace.Event
	sum               int64 // first token (1) + the token counts
}

func byRequest(t *testing.T, evs []trace.Event) map[string]*reqEvents {
	t.Helper()
	m := map[string]*reqEvents{}
	for i := range evs {
		e := &evs[i]
		if e.RequestID == "" {
			continue
		}
		r := m[e.RequestID]
		if r == nil {
			r = &reqEvents{}
			m[e.RequestID] = r
		}
		if e.ClientTimestampNs == nil {
			t.Errorf("%s of %s has no client stamp", e.Kind, e.RequestID)
		}
		switch e.Kind {
		case events.KindRequestStart:
			r.start = e
		case events.KindFirstToken:
			r.first = e
			r.sum++
		case events.KindToken:
			r.tokens = append(r.tokens, *e)
			r.sum += *e.Count
		case events.KindRequestEnd:
			r.end = e
		}
	}
	return m
}

// analysed is what llem analyze's request code makes of the events.
func analysed(evs []trace.Event) *serving.Set {
	var others []trace.Event
	var toks []serving.Token
	var ids []string
	idx := map[string]int32{}
	for _, e := range evs {
		if e.Kind != events.KindToken {
			others = append(others, e)
			continue
		}
		i, ok := idx[e.RequestID]
		if !ok {
			i = int32(len(ids))
			ids = append(ids, e.RequestID)
			idx[e.RequestID] = i
		}
		toks = append(toks, serving.Token{TimestampNs: e.TimestampNs, ClientTimestampNs: *e.ClientTimestampNs, Req: i, Count: int32(*e.Count)})
	}
	return serving.Build(others, toks, ids)
}

func phases(evs []trace.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == events.KindPhaseStart || e.Kind == events.KindPhaseEnd {
			out = append(out, e.Kind+":"+e.Name)
		}
	}
	return out
}

func TestStreamingChat(t *testing.T) {
	srv := &testserver.Server{TokenDelay: time.Millisecond, Hidden: 1}
	cfg := baseConfig(serve(t, srv))
	cfg.Warmup = Limit{Requests: 6}
	ev, stop := recorder(t)
	sum, err := runLoad(t, cfg, ev)
	if err != nil {
		t.Fatal(err)
	}
	evs := stop()

	want := []string{"phase_start:warmup", "phase_end:warmup", "phase_start:measure", "phase_end:measure"}
	if got := phases(evs); !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	if evs[0].Kind != events.KindMark || evs[0].Name != MarkName || !strings.Contains(evs[0].Attrs, `"model":"tiny"`) {
		t.Errorf("first event %+v: want the load's settings", evs[0])
	}
	reqs := byRequest(t, evs)
	received := srv.Requests()
	if len(reqs) != len(received) || len(reqs) < 26 {
		t.Fatalf("%d requests in the events, %d at the server; want >= 26 (6 warm-up, 20 measured)", len(reqs), len(received))
	}
	for id, r := range reqs {
		if r.start == nil || r.first == nil || r.end == nil {
			t.Fatalf("%s: start, first token or end missing", id)
		}
		// The server streams 8 tokens and counts 9 (a hidden end of
		// sequence): the usage count is recorded and streamed.
		if r.end.OutputTokens == nil || *r.end.OutputTokens != 9 || r.sum != 9 {
			t.Errorf("%s: output_tokens %v, streamed %d; want 9 and 9", id, r.end.OutputTokens, r.sum)
		}
		if r.end.InputTokens == nil || *r.end.InputTokens != 12 {
			t.Errorf("%s: input_tokens %v, want the server's 12", id, r.end.InputTokens)
		}
		s, f, e := *r.start.ClientTimestampNs, *r.first.ClientTimestampNs, *r.end.ClientTimestampNs
		if !(s < f && f <= e) {
			t.Errorf("%s: client stamps start %d first %d end %d out of order", id, s, f, e)
		}
	}
	if sum.Measure.Failed != 0 || sum.Warmup.Failed != 0 || sum.Measure.OK < 20 || sum.Warmup.OK < 6 {
		t.Errorf("summary %+v", sum)
	}
	if sum.UsageDiffers != len(reqs) {
		t.Errorf("UsageDiffers %d, want every request (%d)", sum.UsageDiffers, len(reqs))
	}
	set := analysed(evs)
	if len(set.Problems) != 0 {
		t.Errorf("analysis problems: %q", set.Problems)
	}
	if got := set.OutputTokens(math.MinInt64, math.MaxInt64); got != float64(9*len(reqs)) {
		t.Errorf("analysed output tokens %v, want %d", got, 9*len(reqs))
	}
	var out strings.Builder
	sum.WriteText(&out)
	for _, s := range []string{"closed loop of 4 clients", "TTFT", "ITL", "events: sent to llem record"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("summary text lacks %q:\n%s", s, out.String())
		}
	}
	t.Log("\n" + out.String())
}

func TestFailuresAreMarkedAndNeverOutput(t *testing.T) {
	fault := func(n int) testserver.Fault {
		switch n % 6 {
		case 1:
			return testserver.Fault{Status: 500}
		case 2:
			return testserver.Fault{Status: 429}
		case 3:
			return testserver.Fault{Stall: true, After: 2}
		case 4:
			return testserver.Fault{Drop: true, After: 3}
		case 5:
			return testserver.Fault{StreamError: true, After: 1}
		}
		return testserver.Fault{}
	}
	srv := &testserver.Server{Fault: fault}
	cfg := baseConfig(serve(t, srv))
	cfg.StallTimeout = 300 * time.Millisecond
	cfg.Measure = Limit{Requests: 30}
	ev, stop := recorder(t)
	sum, err := runLoad(t, cfg, ev)
	if err != nil {
		t.Fatal(err)
	}
	evs := stop()

	wantFail := map[string]int{}
	for n := range srv.Requests() {
		switch f := fault(n); {
		case f.Status != 0:
			wantFail[FailHTTP+map[int]string{500: "500", 429: "429"}[f.Status]]++
		case f.Stall:
			wantFail[FailStalled]++
		case f.Drop:
			wantFail[FailDropped]++
		case f.StreamError:
			wantFail[FailServerError]++
		}
	}
	got := map[string]int{}
	for _, p := range []PhaseSummary{sum.Warmup, sum.Measure, sum.Drain} {
		for k, v := range p.Failures {
			got[k] += v
		}
	}
	if len(wantFail) != 5 || !equalCounts(got, wantFail) {
		t.Errorf("failures %v, want %v", got, wantFail)
	}

	reqs := byRequest(t, evs)
	failedEvents, okTokens := map[string]int{}, int64(0)
	for id, r := range reqs {
		if r.end == nil {
			t.Fatalf("%s: no request_end", id)
		}
		var attrs map[string]any
		if r.end.Attrs != "" {
			json.Unmarshal([]byte(r.end.Attrs), &attrs)
		}
		class, _ := attrs["error"].(string)
		if class == "" {
			okTokens += r.sum
			if *r.end.OutputTokens != 8 {
				t.Errorf("%s: ok with %d output tokens, want 8", id, *r.end.OutputTokens)
			}
			continue
		}
		failedEvents[class]++
		if r.end.OutputTokens != nil {
			t.Errorf("%s failed (%s) but its request_end has output_tokens %d", id, class, *r.end.OutputTokens)
		}
		if d, _ := attrs["detail"].(string); d == "" {
			t.Errorf("%s failed (%s) without a detail", id, class)
		}
	}
	if !equalCounts(failedEvents, wantFail) {
		t.Errorf("request_end errors %v, want %v", failedEvents, wantFail)
	}
	// Stalled and dropped requests streamed tokens before they failed:
	// analyze counts none of them.
	set := analysed(evs)
	if got := set.OutputTokens(math.MinInt64, math.MaxInt64); got != float64(okTokens) || okTokens != int64(8*(len(reqs)-sumCounts(wantFail))) {
		t.Errorf("analysed output tokens %v, ok requests' %d, want 8 per ok request", got, okTokens)
	}
	if got := set.Ended(math.MinInt64, math.MaxInt64); got != len(reqs)-sumCounts(wantFail) {
		t.Errorf("analysed ended requests %d, want the %d ok", got, len(reqs)-sumCounts(wantFail))
	}
	if sum.Measure.OutputTokens != int64(8*sum.Measure.OK) {
		t.Errorf("summary: %d output tokens from %d ok requests", sum.Measure.OutputTokens, sum.Measure.OK)
	}
	var out strings.Builder
	sum.WriteText(&out)
	if !strings.Contains(out.String(), "x stalled, first: stalled after 2 tokens") || !strings.Contains(out.String(), "x http_500, first: {\"object\":\"error\"") {
		t.Errorf("summary text:\n%s", out.String())
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Outside llem record the generator runs the same and says no events went.
func TestWithoutRecorder(t *testing.T) {
	t.Setenv(events.EnvVar, "")
	ev, err := events.Dial()
	if err != nil {
		t.Fatal(err)
	}
	srv := &testserver.Server{}
	sum, err := runLoad(t, baseConfig(serve(t, srv)), ev)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum.WriteText(&out)
	if sum.Measure.OK < 20 || !strings.Contains(out.String(), "events: none sent (not under llem record)") {
		t.Errorf("summary:\n%s", out.String())
	}
}

// A server down: every request fails to connect, and Run says the
// measurement failed.
func TestNothingSucceeds(t *testing.T) {
	hs := httptest.NewServer(&testserver.Server{})
	url := hs.URL + "/v1"
	hs.Close()
	cfg := baseConfig(url)
	cfg.Measure = Limit{Requests: 3}
	sum, err := runLoad(t, cfg, nil)
	if !errors.Is(err, ErrNoSuccess) || sum.Measure.Failures[FailConnect] < 3 {
		t.Errorf("err %v, failures %v: want every request failed to connect, and an error", err, sum.Measure.Failures)
	}
}

// Cancelling the run cancels the requests in flight: they are failed
// (cancelled), the measure phase is closed, the error is ctx's.
func TestInterrupt(t *testing.T) {
	srv := &testserver.Server{TokenDelay: 50 * time.Millisecond}
	cfg := baseConfig(serve(t, srv))
	cfg.Measure = Limit{Duration: time.Minute}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev, stop := recorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	sum, err := g.Run(ctx, ev)
	evs := stop()
	if !errors.Is(err, ErrInterrupted) || !sum.Interrupted || time.Since(t0) > 5*time.Second {
		t.Errorf("err %v, interrupted %v after %v", err, sum.Interrupted, time.Since(t0))
	}
	if sum.Measure.Failures[FailCancelled] != 4 {
		t.Errorf("failures %v: want the 4 requests in flight cancelled", sum.Measure.Failures)
	}
	if got := phases(evs); !slices.Equal(got, []string{"phase_start:measure", "phase_end:measure"}) {
		t.Errorf("phases %v", got)
	}
}

// Connections are reused: the rest of a finished stream is read, so that
// a closed loop of 4 clients keeps about 4 connections rather than opening
// one per request (a real server logged a reset for each, on the H100).
func TestConnectionsAreReused(t *testing.T) {
	t.Setenv(events.EnvVar, "")
	ev, err := events.Dial()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(&testserver.Server{EndDelay: 5 * time.Millisecond})
	var conns atomic.Int64
	hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	hs.Start()
	t.Cleanup(hs.Close)
	cfg := baseConfig(hs.URL + "/v1")
	cfg.Measure = Limit{Requests: 40}
	sum, err := runLoad(t, cfg, ev)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Measure.OK < 40 {
		t.Fatalf("%d requests succeeded, want 40", sum.Measure.OK)
	}
	if n := conns.Load(); n > int64(2*cfg.Concurrency) {
		t.Errorf("%d connections for %d requests of %d clients: they are not reused", n, sum.Measure.OK, cfg.Concurrency)
	}
}

// A server that holds the stream open after [DONE] does not hold the
// client: the rest is read for 100 ms at most, and the request succeeded.
func TestStreamHeldOpenAfterDone(t *testing.T) {
	t.Setenv(events.EnvVar, "")
	ev, err := events.Dial()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(serve(t, &testserver.Server{EndDelay: 3 * time.Second}))
	cfg.Measure = Limit{Requests: 8}
	start := time.Now()
	sum, err := runLoad(t, cfg, ev)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Measure.OK < 8 || sum.Measure.Failed != 0 {
		t.Errorf("%d requests succeeded and %d failed, want 8 and 0", sum.Measure.OK, sum.Measure.Failed)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: the client waited for the server to end the stream", d)
	}
}
