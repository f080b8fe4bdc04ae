package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/llem/llem/events"
)

// Failure classes: the error attribute of a failed request's request_end,
// and the keys of Summary.Failures. They are stable; scripts may match on
// them.
const (
	FailConnect     = "connect"      // no connection, or the request could not be sent
	FailHTTP        = "http_"        // the server answered with this HTTP status (http_500, http_429...)
	FailStalled     = "stalled"      // nothing arrived for the stall timeout
	FailDropped     = "dropped"      // the stream ended or broke before the response was finished
	FailServerError = "server_error" // the server sent an error object in the stream
	FailBadStream   = "bad_stream"   // a chunk that is not the JSON of an OpenAI stream
	FailCancelled   = "cancelled"    // the load was interrupted while the request ran
)

var errStalled = errors.New("stalled")

// result is what one request did, for the summary. Stamps are client
// clock, ns since the Unix epoch.
type result struct {
	phase                   phase // the phase it started in
	startNs, firstNs, endNs int64
	lastTokenNs             int64
	streamed                int64     // tokens seen in the stream (chunks with text, or usage's increments)
	output                  int64     // usage's completion tokens when given, else streamed
	input                   int64     // usage's prompt tokens, else the prompt's known length, else -1
	measureTokens           int64     // tokens that arrived while the measure phase ran
	gaps                    []float64 // s between consecutive token-bearing chunks (ITL as vLLM's benchmark)
	usageDiffers            bool      // usage's completion tokens differ from the streamed count
	fail, detail            string    // failure class and what happened; "" when ok
}

// chunk is the part of an OpenAI stream chunk (chat.completion.chunk or
// text_completion) that the generator reads.
type chunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"` // vLLM's and SGLang's reasoning models
			Reasoning        string `json:"reasoning"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
	Error  json.RawMessage `json:"error"`
	Object string          `json:"object"` // "error" in vLLM's error objects
}

// requester sends one streaming request and reports it as events.
type requester struct {
	client        *http.Client
	endpoint      string
	apiKey        string
	ev            *events.Client
	tokenInterval int64 // ns
	stall         time.Duration
	phase         *atomic.Int32          // the current phase, for measureTokens
	sendErr       *atomic.Pointer[error] // the first event that could not be sent
}

// send sends an event, keeping the first error: the client stops sending
// after one, and the summary says so.
func (q *requester) send(m events.Message) {
	if err := q.ev.Send(m); err != nil {
		q.sendErr.CompareAndSwap(nil, &err)
	}
}

// do sends request id with body and waits for its end. inputTokens is the
// prompt's length when known (else -1), ph the phase it is sent in.
func (q *requester) do(ctx context.Context, id string, body []byte, inputTokens int64, ph phase) result {
	res := result{phase: ph, input: inputTokens}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(q.stall, func() { cancel(errStalled) })
	defer stall.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.endpoint, bytes.NewReader(body))
	if err != nil {
		return q.end(&res, id, FailConnect, err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if q.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+q.apiKey)
	}
	res.startNs = time.Now().UnixNano()
	start := events.Message{Kind: events.KindRequestStart, ID: id, TimeNs: res.startNs}
	if inputTokens >= 0 {
		start.InputTokens = events.Int(inputTokens)
	}
	q.send(start)

	resp, err := q.client.Do(req)
	if err != nil {
		return q.end(&res, id, q.failure(ctx, FailConnect), err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return q.end(&res, id, fmt.Sprintf("%s%d", FailHTTP, resp.StatusCode), oneLine(msg))
	}
	tk := tokenEvents{send: q.send, id: id, interval: q.tokenInterval}
	fail, detail := q.read(ctx, resp.Body, stall, &res, &tk)
	tk.flush()
	if fail == "" {
		drain(resp.Body, cancel)
	}
	return q.end(&res, id, fail, detail)
}

// errDrained ends the reading of what follows a stream's [DONE].
var errDrained = errors.New("the rest of the response was not read")

// drain reads what follows a finished stream (the chunked encoding's last
// chunk) so that the connection goes back to the client's pool: closed
// unread, it is dropped, and every request opens a new one (the server
// sees a reset). A server that keeps the stream open is given 100 ms.
func drain(body io.Reader, cancel context.CancelCauseFunc) {
	t := time.AfterFunc(100*time.Millisecond, func() { cancel(errDrained) })
	defer t.Stop()
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
}

// read follows the server-sent events of the response until the stream
// ends, sending token events as tokens arrive. It returns the failure
// class, "" when the response finished: with [DONE], or with a
// finish_reason before the stream ended.
func (q *requester) read(ctx context.Context, body io.Reader, stall *time.Timer, res *result, tk *tokenEvents) (fail, detail string) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4<<10), 16<<20) // a chunk's line is ~300 bytes; a long one may grow it
	var data []byte                           // the data lines of the event being read
	var usage int64 = -1                      // the server's completion tokens so far; -1: none given
	done, finished := false, false
	for sc.Scan() {
		now := time.Now().UnixNano()
		stall.Reset(q.stall)
		if line := sc.Bytes(); len(line) > 0 { // SSE: data lines add up to an event, a blank line ends it
			if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				if len(data) > 0 {
					data = append(data, '\n')
				}
				data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
			}
			continue
		}
		payload := data
		data = data[:0]
		if len(payload) == 0 {
			continue
		}
		if string(payload) == "[DONE]" {
			res.endNs, done = now, true
			break
		}
		var c chunk
		if err := json.Unmarshal(payload, &c); err != nil {
			return FailBadStream, fmt.Sprintf("%v in %s", err, oneLine(payload))
		}
		if (len(c.Error) > 0 && string(c.Error) != "null") || c.Object == "error" {
			return FailServerError, oneLine(payload)
		}
		n := int64(0)
		for _, ch := range c.Choices {
			if ch.Text != "" || ch.Delta.Content != "" || ch.Delta.ReasoningContent != "" || ch.Delta.Reasoning != "" {
				n = 1 // a chunk is a token unless the server counts it
			}
			finished = finished || (ch.FinishReason != nil && *ch.FinishReason != "")
		}
		if c.Usage != nil {
			res.input, usage = c.Usage.PromptTokens, c.Usage.CompletionTokens
			// Usage in a chunk with choices (vLLM's continuous_usage_stats)
			// counts that chunk's tokens exactly; usage in a chunk of its
			// own is the total, reconciled at the end.
			if len(c.Choices) > 0 {
				n = max(0, usage-res.streamed)
			}
		}
		if n > 0 {
			q.tokens(res, tk, n, now)
		}
	}
	err := sc.Err()
	if res.endNs == 0 {
		res.endNs = time.Now().UnixNano()
	}
	if !done && err == nil && string(data) == "[DONE]" { // a last line without its blank line
		done = true
	}
	switch cause := context.Cause(ctx); {
	case done || (finished && cause == nil):
		q.reconcile(res, tk, usage)
		return "", ""
	case cause != nil:
		return q.failure(ctx, FailDropped), fmt.Sprintf("%v after %d tokens", cause, res.streamed)
	case err == nil:
		return FailDropped, fmt.Sprintf("the stream ended after %d tokens, before the response finished", res.streamed)
	default:
		return FailDropped, fmt.Sprintf("%v after %d tokens", err, res.streamed)
	}
}

// tokens counts n tokens that arrived at now.
func (q *requester) tokens(res *result, tk *tokenEvents, n, now int64) {
	if res.firstNs == 0 {
		res.firstNs = now
	} else {
		res.gaps = append(res.gaps, float64(now-res.lastTokenNs)/1e9)
	}
	res.lastTokenNs = now
	res.streamed += n
	if phase(q.phase.Load()) == phaseMeasure {
		res.measureTokens += n
	}
	tk.add(n, now)
}

// reconcile makes the streamed count the server's when its usage counts
// more tokens than the chunks showed (a token with no text, such as the
// end-of-sequence token, or chunks that carried several): the rest is one
// token event at the stream's end, so that the recording's output is the
// server's count. usage < 0: the server gave none.
func (q *requester) reconcile(res *result, tk *tokenEvents, usage int64) {
	if usage < 0 {
		return
	}
	res.usageDiffers = usage != res.streamed
	if extra := usage - res.streamed; extra > 0 {
		gaps := len(res.gaps)
		q.tokens(res, tk, extra, res.endNs)
		res.gaps = res.gaps[:gaps] // not a chunk the user saw: no inter-token gap
	}
}

// failure is the class of a failure seen as fallback, or the reason the
// request's context ended: the stall timer or the load's interruption.
func (q *requester) failure(ctx context.Context, fallback string) string {
	switch cause := context.Cause(ctx); {
	case cause == nil:
		return fallback
	case errors.Is(cause, errStalled):
		return FailStalled
	default:
		return FailCancelled
	}
}

// end sends the request's request_end: with the token counts when it
// finished, with an error attribute (and no output) when it failed.
func (q *requester) end(res *result, id, fail, detail string) result {
	if res.endNs == 0 {
		res.endNs = time.Now().UnixNano()
	}
	// The end comes after the last token: the recorder stamps events with
	// the client's ts, and analyze counts a token stamped at its request's
	// end as one after it (the tokens counted at the end by reconcile
	// carry the end's own stamp).
	res.endNs = max(res.endNs, res.lastTokenNs+1)
	if res.startNs == 0 {
		res.startNs = res.endNs
	}
	m := events.Message{Kind: events.KindRequestEnd, ID: id, TimeNs: res.endNs}
	if res.input >= 0 {
		m.InputTokens = events.Int(res.input)
	}
	if fail == "" {
		res.output = res.streamed
		m.OutputTokens = events.Int(res.output)
	} else {
		res.fail, res.detail = fail, detail
		m.Attrs = map[string]any{"error": fail, "detail": detail}
	}
	q.send(m)
	return *res
}

// oneLine is b as one line of at most 200 bytes, for error details.
func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

// tokenEvents sends a request's tokens as first_token and token events.
// With an interval, tokens that arrive less than interval after the last
// event wait and go with the next token that comes later than that, or
// with the end of the stream; so a fast stream costs at most one event
// per interval. A token that comes after a longer gap first sends those
// waiting at the time the last of them arrived, so that the gap, which
// is what the inter-token latency is about, is measured from the token
// before it rather than spread over the batch.
type tokenEvents struct {
	send      func(events.Message)
	id        string
	interval  int64
	started   bool
	pending   int64 // tokens not sent yet...
	pendingNs int64 // ...the last of which arrived then
	sentNs    int64 // the stamp of the last event sent
}

func (t *tokenEvents) add(n, now int64) {
	if !t.started {
		t.started, t.sentNs = true, now
		t.send(events.Message{Kind: events.KindFirstToken, ID: t.id, TimeNs: now})
		if n--; n == 0 {
			return
		}
		t.tokens(n, now) // a first chunk of several tokens: the rest at once
		return
	}
	if t.pending > 0 && now-t.pendingNs >= t.interval {
		t.flush()
	}
	t.pending += n
	t.pendingNs = now
	if now-t.sentNs >= t.interval {
		t.flush()
	}
}

func (t *tokenEvents) flush() {
	if t.pending > 0 {
		t.tokens(t.pending, t.pendingNs)
		t.pending = 0
	}
}

func (t *tokenEvents) tokens(n, ts int64) {
	t.sentNs = ts
	t.send(events.Message{Kind: events.KindToken, ID: t.id, Count: events.Int(n), TimeNs: ts})
}
