package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llem/llem/events"
)

// A prompt line is accepted as exactly one well-formed request field, or
// refused with an error; it never panics.
func FuzzParsePrompt(f *testing.F) {
	for _, s := range []string{`{"prompt": "hi"}`, `{"prompt": [1, 2], "max_tokens": 3}`,
		`{"messages": [{"role": "user", "content": "x"}]}`, `{"prompt": null}`, `[1]`, `{"max_tokens": 1e9}`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, line []byte, chat bool) {
		api := APICompletions
		if chat {
			api = APIChat
		}
		p, err := parsePrompt(line, api)
		if err != nil {
			return
		}
		if (p.Messages == nil) == (p.Text == nil) || p.MaxTokens < 0 {
			t.Fatalf("%q: accepted as %+v", line, p)
		}
		if chat != (p.Messages != nil) {
			t.Fatalf("%q (chat %v): accepted for the other API", line, chat)
		}
		for _, raw := range []json.RawMessage{p.Messages, p.Text} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("%q: field %q is not JSON", line, raw)
			}
		}
	})
}

// Whatever a server streams, the reader ends with a known outcome, counts
// no negative tokens, and sends token events that add up to its count.
func FuzzStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\"}],\"usage\":{\"completion_tokens\":2}}\n\ndata: {\"error\":{\"message\":\"x\"}}\n\n"))
	f.Add([]byte(": ping\n\ndata: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: not json\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\"}]}\n"))
	known := map[string]bool{"": true, FailDropped: true, FailServerError: true, FailBadStream: true}
	f.Fuzz(func(t *testing.T, stream []byte) {
		var sent int64
		var phase atomic.Int32
		q := &requester{stall: time.Minute, phase: &phase}
		tk := tokenEvents{id: "r", interval: int64(time.Millisecond), send: func(m events.Message) {
			switch {
			case m.Kind == events.KindFirstToken:
				sent++
			case m.Count != nil:
				if *m.Count < 1 {
					t.Fatalf("a token event of count %d", *m.Count)
				}
				sent += *m.Count
			}
		}}
		var res result
		stall := time.NewTimer(time.Hour)
		defer stall.Stop()
		fail, _ := q.read(context.Background(), bytes.NewReader(stream), stall, &res, &tk)
		tk.flush()
		if !known[fail] {
			t.Fatalf("failure class %q", fail)
		}
		if res.streamed < 0 || sent != res.streamed || len(res.gaps) > int(max(res.streamed-1, 0)) {
			t.Fatalf("streamed %d, events counted %d, %d gaps", res.streamed, sent, len(res.gaps))
		}
	})
}
