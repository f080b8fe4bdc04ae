// Package loadgen drives an OpenAI-compatible serving endpoint (vLLM,
// SGLang, TGI, `transformers serve`) with streaming requests and reports
// what it saw as llem events: request_start, first_token, token,
// request_end (with the server's usage counts) and the warmup and measure
// phases, each stamped with the client's own clock. Under `llem record`
// the events land in the recording, so `llem analyze` attributes the
// GPU's energy to the tokens the endpoint served; outside it the
// generator still runs and prints its own summary.
//
// Load is a closed loop (a fixed number of clients, each sending its next
// request when the last one ends) or an open loop (requests arrive at a
// rate, Poisson or constant, whatever the server does). Prompts come from
// a JSONL file or are generated with a given length; a seed fixes which
// prompt each request gets and when it arrives.
//
// A request that fails (an HTTP error, a stream that stalls past the
// stall timeout, a dropped connection, an error sent in the stream) ends
// with a request_end carrying an error attribute: the analysis counts none
// of its tokens as output (docs/events.md).
package loadgen

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// API is the endpoint's kind of request.
type API string

const (
	APIChat        API = "chat"        // POST {URL}/chat/completions with messages
	APICompletions API = "completions" // POST {URL}/completions with a prompt
)

// Arrival is how an open loop spaces its requests.
type Arrival string

const (
	ArrivalPoisson  Arrival = "poisson"  // exponential gaps: independent arrivals, as vLLM's benchmark
	ArrivalConstant Arrival = "constant" // equal gaps of 1/rate
)

// Limit ends a phase after Duration, or once Requests of the requests
// started in the phase have ended (ok or failed), whichever comes first.
// A zero field sets no limit of its kind.
type Limit struct {
	Duration time.Duration
	Requests int
}

func (l Limit) set() bool { return l.Duration > 0 || l.Requests > 0 }

// Config is one load: what to send, where, and how hard. Keys in errors
// (ConfigError) are the snake_case names in the comments.
type Config struct {
	URL   string // url: the endpoint's base, e.g. http://127.0.0.1:8000/v1
	Model string // model: sent as the request's model
	API   API    // api
	// Concurrency (concurrency) is the number of clients of a closed loop;
	// with a Rate it caps the requests in flight (0: no cap).
	Concurrency int
	Rate        float64 // rate: requests per second of an open loop; 0: closed loop
	Arrival     Arrival // arrival: spacing of an open loop's requests
	Warmup      Limit   // warmup, warmup_requests: none when zero
	Measure     Limit   // duration, requests: at least one is needed
	// Prompts (prompts) is a JSONL file of prompts; when empty, each
	// request gets a generated prompt of about PromptTokens
	// (prompt_tokens) tokens.
	Prompts      string
	PromptTokens int
	MaxTokens    int    // max_tokens: output tokens per request, unless its prompt line sets its own
	ExtraBody    string // extra_body: a JSON object merged into every request body
	Seed         uint64 // seed: prompt order, generated prompts and open-loop arrivals
	// StallTimeout (stall_timeout) bounds the wait for each next piece of
	// the stream, the first included. A whole request needs no bound of
	// its own: max_tokens ends it.
	StallTimeout time.Duration
	// TokenInterval (token_interval): token events of a request are sent
	// at most this often, tokens arriving in between are counted in the
	// next one (0: one event per streamed chunk).
	TokenInterval time.Duration
	APIKey        string // sent as a bearer token when not empty (RunCommand: OPENAI_API_KEY)
}

// ConfigError is a Config value the generator cannot use, named by its key.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

func configErr(key, format string, args ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// DefaultStallTimeout is long enough for a first token behind a long
// queue on a loaded server, short enough that a hung server does not
// hold a measurement for long.
const DefaultStallTimeout = 60 * time.Second

// DefaultTokenInterval batches the token events of a stream faster than
// one token per DefaultTokenInterval; slower streams (a decode step of
// more than this) still send one event per token. See docs/serving.md for
// what it costs and what it changes.
const DefaultTokenInterval = 5 * time.Millisecond

// check validates c and returns the endpoint URL of its API and the
// parsed extra body.
func (c *Config) check() (endpoint string, extra map[string]any, err error) {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, configErr("url", "%q is not an http(s) URL such as http://127.0.0.1:8000/v1", c.URL)
	}
	switch c.API {
	case APIChat:
		endpoint = strings.TrimRight(c.URL, "/") + "/chat/completions"
	case APICompletions:
		endpoint = strings.TrimRight(c.URL, "/") + "/completions"
	default:
		return "", nil, configErr("api", "%q: want chat or completions", c.API)
	}
	switch {
	case c.Model == "":
		return "", nil, configErr("model", "needed: the name the server serves (GET %s/models lists them)", strings.TrimRight(c.URL, "/"))
	case c.Rate < 0:
		return "", nil, configErr("rate", "%g: must be > 0 (or 0 for a closed loop)", c.Rate)
	case c.Rate == 0 && c.Concurrency < 1:
		return "", nil, configErr("concurrency", "%d: a closed loop needs at least 1 client", c.Concurrency)
	case c.Concurrency < 0:
		return "", nil, configErr("concurrency", "%d: must be >= 0", c.Concurrency)
	case c.Rate > 0 && c.Arrival != ArrivalPoisson && c.Arrival != ArrivalConstant:
		return "", nil, configErr("arrival", "%q: want poisson or constant", c.Arrival)
	case c.Warmup.Duration < 0:
		return "", nil, configErr("warmup", "%v: must be >= 0", c.Warmup.Duration)
	case c.Warmup.Requests < 0:
		return "", nil, configErr("warmup_requests", "%d: must be >= 0", c.Warmup.Requests)
	case c.Measure.Duration < 0:
		return "", nil, configErr("duration", "%v: must be > 0", c.Measure.Duration)
	case c.Measure.Requests < 0:
		return "", nil, configErr("requests", "%d: must be > 0", c.Measure.Requests)
	case !c.Measure.set():
		return "", nil, configErr("duration", "the measure phase needs a duration or a number of requests")
	case c.Prompts != "" && c.PromptTokens != 0:
		return "", nil, configErr("prompt_tokens", "give a prompts file or a generated prompt length, not both")
	case c.Prompts == "" && c.PromptTokens < 1:
		return "", nil, configErr("prompt_tokens", "%d: give a prompts file, or a generated prompt length >= 1", c.PromptTokens)
	case c.MaxTokens < 1:
		return "", nil, configErr("max_tokens", "%d: must be >= 1", c.MaxTokens)
	case c.StallTimeout <= 0:
		return "", nil, configErr("stall_timeout", "%v: must be > 0", c.StallTimeout)
	case c.TokenInterval < 0:
		return "", nil, configErr("token_interval", "%v: must be >= 0", c.TokenInterval)
	}
	if c.ExtraBody != "" {
		dec := json.NewDecoder(strings.NewReader(c.ExtraBody))
		dec.UseNumber() // numbers pass through as written: a seed of 20 digits stays exact
		if err := dec.Decode(&extra); err != nil || extra == nil || dec.More() {
			return "", nil, configErr("extra_body", "%q is not a JSON object such as {\"temperature\":0,\"ignore_eos\":true}", c.ExtraBody)
		}
		for _, k := range []string{"model", "stream", "messages", "prompt", "max_tokens"} {
			if _, ok := extra[k]; ok {
				return "", nil, configErr("extra_body", "sets %q, which the load generator sets itself", k)
			}
		}
	}
	return endpoint, extra, nil
}
