// Package testserver is an OpenAI-compatible streaming endpoint for
// testing and benchmarking llem load without a model: it streams chunks
// shaped like vLLM's (chat.completion.chunk and text_completion, a usage
// chunk, [DONE]) at a set pace, and can fail requests the ways real
// servers do: an HTTP error, a stream that stalls, a connection dropped
// mid-stream, an error object in the stream. Serve it on loopback only
// (httptest.NewServer does).
package testserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is what the server does to one request. The zero Fault streams
// the whole response.
type Fault struct {
	Status int // answer with this HTTP status and an error body, no stream
	// After this many tokens: stop sending and hold the connection until
	// the client leaves (Stall), close the connection (Drop), or send an
	// error object and end the stream (StreamError).
	Stall, Drop, StreamError bool
	After                    int
}

// Request is what the server received.
type Request struct {
	At        time.Time // when the request arrived
	Path      string
	Model     string
	Prompt    string // the prompt's text, or its messages' contents joined by "\n", or its token ids
	MaxTokens int
	Usage     bool // the request asked for usage (stream_options.include_usage)
}

// Server streams max_tokens tokens (" tok" each) per request.
type Server struct {
	FirstDelay time.Duration // before the first token (the prefill)
	TokenDelay time.Duration // between tokens (the decode step)
	// ChunkTokens tokens go in each chunk (vLLM sends several when it
	// decodes several steps at once); 0 or 1: one.
	ChunkTokens int
	// Hidden tokens are counted in usage but sent in no chunk, as the end
	// of sequence token of a model that stops by itself.
	Hidden int
	// Fault returns the fault of the n-th request (from 0); nil: none.
	Fault func(n int) Fault
	// EndDelay holds the stream open this long after [DONE], as servers
	// that end the chunked body in a later write do (Python's http.server).
	EndDelay time.Duration

	mu       sync.Mutex
	requests []Request
}

// Requests returns the requests received so far, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

type body struct {
	Model     string          `json:"model"`
	Stream    bool            `json:"stream"`
	MaxTokens int             `json:"max_tokens"`
	Prompt    json.RawMessage `json:"prompt"`
	Messages  []struct {
		Content string `json:"content"`
	} `json:"messages"`
	StreamOptions struct {
		IncludeUsage    bool `json:"include_usage"`
		ContinuousUsage bool `json:"continuous_usage_stats"` // vLLM's: usage in every chunk
	} `json:"stream_options"`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	chat := strings.HasSuffix(r.URL.Path, "/chat/completions")
	if r.Method != http.MethodPost || (!chat && !strings.HasSuffix(r.URL.Path, "/completions")) {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	var b body
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || !b.Stream || b.MaxTokens < 1 {
		http.Error(w, `{"error":{"message":"want a JSON body with stream true and max_tokens >= 1"}}`, http.StatusBadRequest)
		return
	}
	prompt, promptTokens := promptOf(b)
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, Request{At: at, Path: r.URL.Path, Model: b.Model, Prompt: prompt,
		MaxTokens: b.MaxTokens, Usage: b.StreamOptions.IncludeUsage})
	s.mu.Unlock()
	var f Fault
	if s.Fault != nil {
		f = s.Fault(n)
	}
	if f.Status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `{"object":"error","message":"test fault %d","type":"TestError","code":%d}`, f.Status, f.Status)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	c := chunker{chat: chat, id: fmt.Sprintf("cmpl-%d", n), model: b.Model,
		continuous: b.StreamOptions.ContinuousUsage, promptTokens: promptTokens}
	if chat { // vLLM's first chat chunk: the role, no text
		w.Write(c.chunk("", "null", true, 0))
		flusher.Flush()
	}
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return r.Context().Err() == nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	if !wait(s.FirstDelay) {
		return
	}
	per := max(s.ChunkTokens, 1)
	for sent := 0; sent < b.MaxTokens; {
		if (f.Stall || f.Drop || f.StreamError) && sent >= f.After {
			switch {
			case f.Stall:
				<-r.Context().Done()
				return
			case f.Drop:
				panic(http.ErrAbortHandler) // net/http closes the connection mid-response
			default:
				w.Write([]byte(`data: {"error":{"message":"test fault in the stream","type":"TestError","code":500}}` + "\n\n"))
				w.Write([]byte("data: [DONE]\n\n"))
				flusher.Flush()
				return
			}
		}
		if sent > 0 && !wait(s.TokenDelay) {
			return
		}
		k := min(per, b.MaxTokens-sent)
		sent += k
		finish := "null"
		if sent == b.MaxTokens {
			finish = `"length"`
		}
		w.Write(c.chunk(strings.Repeat(" tok", k), finish, false, sent))
		flusher.Flush()
	}
	if b.StreamOptions.IncludeUsage {
		out := b.MaxTokens + s.Hidden
		fmt.Fprintf(w, `data: {"id":%q,"object":%q,"created":1700000000,"model":%q,"choices":[],"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n",
			c.id, c.object(), c.model, promptTokens, promptTokens+out, out)
	}
	w.Write([]byte("data: [DONE]\n\n"))
	flusher.Flush()
	time.Sleep(s.EndDelay)
}

// promptOf is the prompt's text and its length in tokens: words of text
// (the load generator's generated prompts are one token per word), or
// token ids.
func promptOf(b body) (string, int) {
	if len(b.Messages) > 0 {
		var parts []string
		for _, m := range b.Messages {
			parts = append(parts, m.Content)
		}
		text := strings.Join(parts, "\n")
		return text, len(strings.Fields(text))
	}
	var text string
	if json.Unmarshal(b.Prompt, &text) == nil {
		return text, len(strings.Fields(text))
	}
	var ids []int
	json.Unmarshal(b.Prompt, &ids)
	return string(b.Prompt), len(ids)
}

// chunker formats a response's chunks as vLLM does.
type chunker struct {
	chat, continuous bool // continuous: usage in every chunk (vLLM's continuous_usage_stats)
	id, model        string
	promptTokens     int
	buf              []byte
}

func (c *chunker) object() string {
	if c.chat {
		return "chat.completion.chunk"
	}
	return "text_completion"
}

// chunk is one "data:" event carrying text (no JSON escaping: the
// server's texts need none); a chat chunk's delta has role instead when
// role is set. sent is the tokens sent so far, for continuous usage.
func (c *chunker) chunk(text, finish string, role bool, sent int) []byte {
	c.buf = append(c.buf[:0], `data: {"id":"`...)
	c.buf = append(c.buf, c.id...)
	c.buf = append(c.buf, `","object":"`...)
	c.buf = append(c.buf, c.object()...)
	c.buf = append(c.buf, `","created":1700000000,"model":"`...)
	c.buf = append(c.buf, c.model...)
	c.buf = append(c.buf, `","choices":[{"index":0,`...)
	switch {
	case role:
		c.buf = append(c.buf, `"delta":{"role":"assistant","content":""}`...)
	case c.chat:
		c.buf = append(c.buf, `"delta":{"content":"`...)
		c.buf = append(c.buf, text...)
		c.buf = append(c.buf, `"}`...)
	default:
		c.buf = append(c.buf, `"text":"`...)
		c.buf = append(c.buf, text...)
		c.buf = append(c.buf, '"')
	}
	c.buf = append(c.buf, `,"logprobs":null,"finish_reason":`...)
	c.buf = append(c.buf, finish...)
	c.buf = append(c.buf, "}]"...)
	if c.continuous {
		c.buf = fmt.Appendf(c.buf, `,"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}`, c.promptTokens, c.promptTokens+sent, sent)
	}
	c.buf = append(c.buf, "}\n\n"...)
	return c.buf
}
