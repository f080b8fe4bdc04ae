package loadgen

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/events"
	"github.com/llem/llem/loadgen/testserver"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrors(t *testing.T) {
	prompts := writeFile(t, "p.jsonl", `{"prompt": "hi"}`+"\n")
	ok := func() Config { c := baseConfig("http://127.0.0.1:1/v1"); return c }
	tests := []struct {
		key  string
		edit func(*Config)
	}{
		{"url", func(c *Config) { c.URL = "" }},
		{"url", func(c *Config) { c.URL = "127.0.0.1:8000/v1" }},
		{"url", func(c *Config) { c.URL = "ftp://h/v1" }},
		{"api", func(c *Config) { c.API = "embeddings" }},
		{"model", func(c *Config) { c.Model = "" }},
		{"rate", func(c *Config) { c.Rate = -1 }},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }},
		{"concurrency", func(c *Config) { c.Rate, c.Concurrency = 1, -1 }},
		{"arrival", func(c *Config) { c.Rate, c.Arrival = 1, "uniform" }},
		{"warmup", func(c *Config) { c.Warmup.Duration = -time.Second }},
		{"warmup_requests", func(c *Config) { c.Warmup.Requests = -1 }},
		{"duration", func(c *Config) { c.Measure = Limit{} }},
		{"duration", func(c *Config) { c.Measure.Duration = -time.Second }},
		{"requests", func(c *Config) { c.Measure.Requests = -3 }},
		{"prompt_tokens", func(c *Config) { c.PromptTokens = 0 }},
		{"prompt_tokens", func(c *Config) { c.Prompts = prompts }},
		{"max_tokens", func(c *Config) { c.MaxTokens = 0 }},
		{"stall_timeout", func(c *Config) { c.StallTimeout = 0 }},
		{"token_interval", func(c *Config) { c.TokenInterval = -1 }},
		{"extra_body", func(c *Config) { c.ExtraBody = "[1]" }},
		{"extra_body", func(c *Config) { c.ExtraBody = "{" }},
		{"extra_body", func(c *Config) { c.ExtraBody = `{"a": 1} {"b": 2}` }},
		{"extra_body", func(c *Config) { c.ExtraBody = `{"max_tokens": 5}` }},
		{"extra_body", func(c *Config) { c.ExtraBody = `{"stream": false}` }},
	}
	for _, tc := range tests {
		c := ok()
		tc.edit(&c)
		_, err := New(c)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%+v: error %v, want a ConfigError of %s", c, err, tc.key)
		}
	}
	if _, err := New(ok()); err != nil {
		t.Errorf("the base config: %v", err)
	}
	c := ok()
	c.Prompts, c.PromptTokens = prompts, 0
	c.Rate, c.Concurrency, c.ExtraBody = 2.5, 0, `{"temperature": 0, "stream_options": null}`
	if _, err := New(c); err != nil {
		t.Errorf("an open loop from a file: %v", err)
	}
}

func TestPromptFileErrors(t *testing.T) {
	tests := []struct {
		api  API
		text string
		want string // the error, after the file name
	}{
		{APIChat, "", ": no prompts"},
		{APIChat, "\n  \n", ": no prompts"},
		{APIChat, `{"prompt": "a"}` + "\n" + `{"prompt": "b"`, ":2: not a JSON object"},
		{APIChat, `"hello"`, ":1: not a JSON object"},
		{APIChat, `{"prompt": "a", "max_token": 5}`, `:1: unknown key "max_token"`},
		{APIChat, `{"prompt": "a", "messages": []}`, ":1: a line needs exactly one of prompt and messages"},
		{APIChat, `{"max_tokens": 5}`, ":1: a line needs exactly one of prompt and messages"},
		{APIChat, `{"prompt": "a", "max_tokens": 0}`, ":1: max_tokens 0: want an integer >= 1"},
		{APIChat, `{"prompt": "a", "max_tokens": 2.5}`, ":1: max_tokens 2.5"},
		{APIChat, `{"prompt": ""}`, ":1: prompt is empty"},
		{APIChat, `{"prompt": 5}`, ":1: prompt: want a string or a non-empty array of token ids"},
		{APIChat, `{"prompt": []}`, ":1: prompt: want a string"},
		{APICompletions, `{"prompt": [1, -2]}`, ":1: prompt: token id -2 is negative"},
		{APIChat, `{"prompt": [1, 2]}`, ":1: a prompt of token ids needs the completions API"},
		{APICompletions, `{"messages": [{"role": "user", "content": "a"}]}`, ":1: messages need the chat API"},
		{APIChat, `{"messages": []}`, ":1: messages: want a non-empty array"},
		{APIChat, `{"messages": [{"content": "a"}]}`, ":1: messages[0]: no role"},
	}
	for _, tc := range tests {
		p := writeFile(t, "prompts.jsonl", tc.text)
		_, err := ReadPrompts(p, tc.api)
		if err == nil || !strings.HasPrefix(err.Error(), p+tc.want) {
			t.Errorf("%q (%s): error %v, want %q", tc.text, tc.api, err, p+tc.want)
		}
	}
	if _, err := ReadPrompts(filepath.Join(t.TempDir(), "missing.jsonl"), APIChat); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("a missing file: %v", err)
	}
}

// Every accepted shape reaches the server as the endpoint takes it.
func TestPromptShapes(t *testing.T) {
	file := writeFile(t, "p.jsonl", strings.Join([]string{
		`{"prompt": "one two three"}`,
		``,
		`{"prompt": "four", "max_tokens": 3}`,
		`{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "five six"}]}`,
	}, "\n")+"\n")
	srv := &testserver.Server{}
	cfg := baseConfig(serve(t, srv))
	cfg.Prompts, cfg.PromptTokens, cfg.Concurrency, cfg.Measure = file, 0, 1, Limit{Requests: 3}
	if _, err := runLoad(t, cfg, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range srv.Requests()[:3] {
		if !r.Usage || r.Model != "tiny" || !strings.HasSuffix(r.Path, "/v1/chat/completions") {
			t.Errorf("request %+v", r)
		}
		got[r.Prompt] = r.MaxTokens
	}
	want := map[string]int{"one two three": 8, "four": 3, "be brief\nfive six": 8}
	if !equalCounts(got, want) {
		t.Errorf("the first pass sent %v, want each prompt once: %v", got, want)
	}

	// Completions: a text prompt, and token ids, whose length is known at
	// the request's start.
	file = writeFile(t, "ids.jsonl", `{"prompt": [101, 102, 103, 104]}`+"\n")
	srv = &testserver.Server{}
	cfg = baseConfig(serve(t, srv))
	cfg.API, cfg.Prompts, cfg.PromptTokens, cfg.Measure = APICompletions, file, 0, Limit{Requests: 2}
	ev, stop := recorder(t)
	if _, err := runLoad(t, cfg, ev); err != nil {
		t.Fatal(err)
	}
	for id, r := range byRequest(t, stop()) {
		if r.start.InputTokens == nil || *r.start.InputTokens != 4 || r.sum != 8 {
			t.Errorf("%s: request_start input_tokens %v, %d tokens streamed", id, r.start.InputTokens, r.sum)
		}
	}
	if r := srv.Requests()[0]; r.Prompt != "[101,102,103,104]" || !strings.HasSuffix(r.Path, "/v1/completions") {
		t.Errorf("request %+v", r)
	}
}

// A seed fixes which prompt request k gets: the same seed sends the same
// prompts in the same order, another seed others; a file's prompts are
// each used once per pass.
func TestSeedDeterminism(t *testing.T) {
	prompts := func(seed uint64, file string) []string {
		srv := &testserver.Server{}
		cfg := baseConfig(serve(t, srv))
		cfg.Concurrency, cfg.Seed, cfg.Measure = 1, seed, Limit{Requests: 10}
		if file != "" {
			cfg.Prompts, cfg.PromptTokens = file, 0
		}
		if _, err := runLoad(t, cfg, nil); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range srv.Requests() {
			out = append(out, r.Prompt)
		}
		return out
	}
	a, b, c := prompts(7, ""), prompts(7, ""), prompts(8, "")
	if !slices.Equal(a, b) || len(a) != 10 {
		t.Errorf("seed 7 twice: %q\n%q", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 sent the same prompts")
	}
	for _, p := range a {
		if n := len(strings.Fields(p)); n != 12 {
			t.Errorf("generated prompt of %d words, want 12: %q", n, p)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(a)))) != 10 {
		t.Errorf("generated prompts repeat: %q", a)
	}

	var lines []string
	for _, w := range []string{"a", "b", "c", "d"} {
		lines = append(lines, `{"prompt": "`+w+`"}`)
	}
	file := writeFile(t, "p.jsonl", strings.Join(lines, "\n"))
	f1, f2 := prompts(3, file), prompts(3, file)
	if !slices.Equal(f1, f2) {
		t.Errorf("a file with seed 3 twice: %q, %q", f1, f2)
	}
	for pass := 0; pass+4 <= len(f1); pass += 4 {
		if got := slices.Sorted(slices.Values(f1[pass : pass+4])); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
			t.Errorf("pass %d sent %q: want each prompt once", pass/4, f1[pass:pass+4])
		}
	}
	if slices.Equal(f1[:4], f1[4:8]) && slices.Equal(f1[:4], prompts(4, file)[:4]) {
		t.Errorf("the order is the same for every pass and seed: %q", f1)
	}
}

// The open loop's schedule: the right mean rate, exponential gaps for
// Poisson (coefficient of variation 1) and equal ones for constant, the
// same for the same seed.
func TestArrivalSchedule(t *testing.T) {
	gaps := func(poisson bool, seed uint64) []float64 {
		a := arrivals{rate: 20, poisson: poisson, rng: newArrivalRand(seed)}
		var out []float64
		prev := a.next()
		for range 20000 {
			t := a.next()
			out = append(out, (t - prev).Seconds())
			prev = t
		}
		return out
	}
	meanCV := func(x []float64) (float64, float64) {
		var s, ss float64
		for _, v := range x {
			s += v
		}
		m := s / float64(len(x))
		for _, v := range x {
			ss += (v - m) * (v - m)
		}
		return m, math.Sqrt(ss/float64(len(x)-1)) / m
	}
	// 20000 exponential gaps: the mean's standard error is 0.7%, the
	// CV's about 0.7%; 4% bounds are over 5 standard errors.
	p := gaps(true, 1)
	if m, cv := meanCV(p); math.Abs(m-0.05)/0.05 > 0.04 || math.Abs(cv-1) > 0.04 {
		t.Errorf("poisson: mean gap %.4f s, CV %.3f; want 0.05 s and 1", m, cv)
	}
	if !slices.Equal(p, gaps(true, 1)) || slices.Equal(p, gaps(true, 2)) {
		t.Errorf("poisson schedule: not fixed by its seed")
	}
	if m, cv := meanCV(gaps(false, 1)); math.Abs(m-0.05) > 1e-9 || cv > 1e-6 {
		t.Errorf("constant: mean gap %.6f s, CV %g", m, cv)
	}
}

// The open loop keeps its rate whatever the server does: requests arrive
// on schedule while earlier ones are still streaming.
func TestOpenLoopRate(t *testing.T) {
	for _, arrival := range []Arrival{ArrivalConstant, ArrivalPoisson} {
		srv := &testserver.Server{TokenDelay: 40 * time.Millisecond} // a request takes ~300 ms
		cfg := baseConfig(serve(t, srv))
		cfg.Rate, cfg.Arrival, cfg.Concurrency = 50, arrival, 0
		cfg.Measure = Limit{Duration: 2 * time.Second}
		sum, err := runLoad(t, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		start := time.Unix(0, sum.StartNs)
		var inPhase []time.Time
		for _, r := range reqs {
			if r.At.Sub(start) < 2*time.Second {
				inPhase = append(inPhase, r.At)
			}
		}
		// 100 expected; Poisson's count has sd 10 (the seed fixes it, so
		// the bound holds or fails for good, not by chance).
		if n := len(inPhase); n < 70 || n > 130 || (arrival == ArrivalConstant && (n < 98 || n > 101)) {
			t.Errorf("%s: %d requests in 2 s at 50/s", arrival, n)
		}
		if arrival == ArrivalConstant {
			// A busy CI machine delays a wake-up; a schedule in
			// absolute time catches up, so check the span rather than
			// each gap.
			span := inPhase[len(inPhase)-1].Sub(inPhase[0])
			if want := time.Duration(len(inPhase)-1) * 20 * time.Millisecond; span < want-30*time.Millisecond || span > want+30*time.Millisecond {
				t.Errorf("constant: %d requests over %v, want %v", len(inPhase), span, want)
			}
		}
		// Most requests leave on time. The median, not the p99: a busy
		// CI machine's one stall of ~90 ms delays the few requests due
		// in it (CI saw p99 83 ms with p90 1.3 ms), while a loop that
		// waited for responses would lag most of them by ~300 ms.
		if sum.Lag.N != len(reqs) || sum.Lag.P50 > 0.02 {
			t.Errorf("%s: lag %+v over %d requests", arrival, sum.Lag, len(reqs))
		}
		// ~300 ms per request at 50/s: about 15 in flight at once, which
		// a closed loop would never do with its 4 clients.
		if c := maxInFlight(srv.Requests(), 300*time.Millisecond); c < 8 {
			t.Errorf("%s: at most %d requests in flight: the loop waited for responses", arrival, c)
		}
	}
}

// maxInFlight is the most requests arrived within d of each other.
func maxInFlight(reqs []testserver.Request, d time.Duration) int {
	best := 0
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].At.Sub(reqs[i].At) < d; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

// With a cap, an open loop never has more requests in flight than it.
func TestOpenLoopCap(t *testing.T) {
	srv := &testserver.Server{TokenDelay: 20 * time.Millisecond}
	cfg := baseConfig(serve(t, srv))
	cfg.Rate, cfg.Arrival, cfg.Concurrency, cfg.Measure = 200, ArrivalConstant, 3, Limit{Requests: 12}
	ev, stop := recorder(t)
	if _, err := runLoad(t, cfg, ev); err != nil {
		t.Fatal(err)
	}
	set := analysed(stop())
	if c := set.MaxConcurrency(); c != 3 {
		t.Errorf("at most %d in flight, want the cap of 3", c)
	}
}

// Token events: one per chunk without an interval; with one, at most one
// per interval, a gap longer than it kept as a gap, the first token alone.
func TestTokenBatching(t *testing.T) {
	type sent struct{ count, at int64 }
	batch := func(interval int64, arrivals ...int64) []sent {
		var out []sent
		tk := tokenEvents{interval: interval, send: func(m events.Message) {
			n := int64(1)
			if m.Count != nil {
				n = *m.Count
			}
			if m.Kind == events.KindFirstToken {
				n = -1 // the first token
			}
			out = append(out, sent{n, m.TimeNs})
		}}
		for _, a := range arrivals {
			tk.add(1, a)
		}
		tk.flush()
		return out
	}
	ms := int64(time.Millisecond)
	in := []int64{0, 1 * ms, 2 * ms, 3 * ms, 11 * ms, 12 * ms, 100 * ms, 101 * ms}
	if got := batch(0, in...); len(got) != 8 || got[0] != (sent{-1, 0}) || got[7] != (sent{1, 101 * ms}) {
		t.Errorf("no interval: %v", got)
	}
	want := []sent{
		{-1, 0},       // the first token, at once
		{4, 11 * ms},  // 1, 2, 3 ms wait; 11 ms comes 8 ms after 3 ms, no gap, and 11 ms after the last event: all four go
		{1, 12 * ms},  // 12 ms waits; 100 ms comes 88 ms after it: 12 ms goes first, at its own time...
		{1, 100 * ms}, // ...so the gap shows; 100 ms is 88 ms after the last event: it goes
		{1, 101 * ms}, // the end flushes 101 ms
	}
	if got := batch(10*ms, in...); !slices.Equal(got, want) {
		t.Errorf("10 ms interval:\n got %v\nwant %v", got, want)
	}
	// A fast steady stream (a token every 0.1 ms for 100 ms): one event
	// per 10 ms, every token counted.
	var fast []int64
	for i := range 1000 {
		fast = append(fast, int64(i)*ms/10)
	}
	got := batch(10*ms, fast...)
	total := int64(0)
	for _, s := range got[1:] {
		total += s.count
	}
	if len(got) > 12 || total != 999 {
		t.Errorf("fast stream: %d events, %d tokens after the first", len(got), total)
	}
}

// With vLLM's per-chunk usage, chunks of several tokens are counted
// exactly, as they come; without it, the rest arrives at the end.
func TestChunksOfSeveralTokens(t *testing.T) {
	for _, continuous := range []bool{true, false} {
		srv := &testserver.Server{ChunkTokens: 3}
		cfg := baseConfig(serve(t, srv))
		cfg.MaxTokens, cfg.Measure = 9, Limit{Requests: 4}
		if continuous {
			cfg.ExtraBody = `{"stream_options": {"include_usage": true, "continuous_usage_stats": true}}`
		}
		ev, stop := recorder(t)
		sum, err := runLoad(t, cfg, ev)
		if err != nil {
			t.Fatal(err)
		}
		for id, r := range byRequest(t, stop()) {
			var counts []int64
			for _, e := range r.tokens {
				counts = append(counts, *e.Count)
			}
			want := []int64{2, 3, 3} // the first chunk: first_token + 2
			if !continuous {
				want = []int64{1, 1, 6} // a token per chunk, the rest at the end
			}
			if r.sum != 9 || *r.end.OutputTokens != 9 || !slices.Equal(counts, want) {
				t.Errorf("continuous usage %v: %s token events %v (sum %d), want %v", continuous, id, counts, r.sum, want)
			}
		}
		if (sum.UsageDiffers == 0) == !continuous {
			t.Errorf("continuous usage %v: %d requests whose usage differed", continuous, sum.UsageDiffers)
		}
	}
}

// --extra-body reaches every request as written, numbers exact, and
// stream_options may be replaced or removed.
func TestExtraBody(t *testing.T) {
	var bodies []map[string]json.RawMessage
	for _, extra := range []string{
		`{"seed": 12345678901234567891, "temperature": 0.25, "ignore_eos": true}`,
		`{"stream_options": null}`,
	} {
		srv := &testserver.Server{}
		cfg := baseConfig(serve(t, srv))
		cfg.ExtraBody, cfg.Concurrency, cfg.Measure = extra, 1, Limit{Requests: 1}
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := g.body(0)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, m)
		if _, err := runLoad(t, cfg, nil); err != nil {
			t.Fatal(err)
		}
		if r := srv.Requests()[0]; r.Usage != (extra != `{"stream_options": null}`) {
			t.Errorf("%s: usage asked %v", extra, r.Usage)
		}
	}
	if m := bodies[0]; string(m["seed"]) != "12345678901234567891" || string(m["temperature"]) != "0.25" ||
		string(m["ignore_eos"]) != "true" || string(m["stream_options"]) != `{"include_usage":true}` {
		t.Errorf("body %v", m)
	}
	if _, ok := bodies[1]["stream_options"]; ok {
		t.Errorf("stream_options null: still sent")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("an empty config accepted")
	}
}
