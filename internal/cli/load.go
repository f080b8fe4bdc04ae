package cli

import (
	"errors"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/loadgen"
)

// loadCommand's flags go in pairs where one is the other's alternative.
func loadCommand() *ucli.Command {
	return &ucli.Command{Name: "load", Usage: "drive an OpenAI-compatible endpoint with streaming requests, sending them as events", Description: helpText("load"), Action: runLoad,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "url", Usage: "the endpoint's base `URL`, e.g. http://127.0.0.1:8000/v1"},
			&ucli.StringFlag{Name: "model", Usage: "the model `NAME` the server serves (GET URL/models lists them)"},
			&ucli.StringFlag{Name: "api", Value: "chat", Usage: "chat (URL/chat/completions) or completions (URL/completions)"},
			&ucli.IntFlag{Name: "concurrency", Usage: "clients of a closed loop; with --rate, the most requests in flight (0: no limit)"},
			&ucli.Float64Flag{Name: "rate", Usage: "requests per second of an open loop"}, &ucli.StringFlag{Name: "arrival", Value: "poisson", Usage: "open loop arrivals: poisson or constant"},
			&ucli.DurationFlag{Name: "warmup", Usage: "warm-up phase before the measure phase, e.g. 60s"}, &ucli.IntFlag{Name: "warmup-requests", Usage: "or: the warm-up ends once this many of its requests have ended"},
			&ucli.DurationFlag{Name: "duration", Usage: "the measure phase's length, e.g. 5m"}, &ucli.IntFlag{Name: "requests", Usage: "or: the measure phase ends once this many of its requests have ended"},
			&ucli.StringFlag{Name: "prompts", Usage: "JSONL `FILE` of prompts: {\"prompt\": ...} or {\"messages\": [...]}, optional max_tokens"}, &ucli.IntFlag{Name: "prompt-tokens", Usage: "or: generated prompts of about this many tokens"},
			&ucli.IntFlag{Name: "max-tokens", Value: 256, Usage: "output tokens per request (a prompt line's max_tokens wins)"},
			&ucli.StringFlag{Name: "extra-body", Usage: "`JSON` object merged into every request, e.g. '{\"temperature\":0,\"ignore_eos\":true}'"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the prompt order, the generated prompts and the open loop's arrivals"},
			&ucli.DurationFlag{Name: "stall-timeout", Value: loadgen.DefaultStallTimeout, Usage: "fail a request when nothing arrives for this long"},
			&ucli.DurationFlag{Name: "token-interval", Value: loadgen.DefaultTokenInterval, Usage: "send a request's token events at most this often (0: one per chunk)"},
		}}
}

func runLoad(c *ucli.Context) error {
	if c.NArg() > 0 {
		return usagef("load: unexpected argument %q (llem load --help)", c.Args().First())
	}
	err := loadgen.RunCommand(c.Context, loadgen.Config{URL: c.String("url"), Model: c.String("model"), API: loadgen.API(c.String("api")),
		Concurrency: c.Int("concurrency"), Rate: c.Float64("rate"), Arrival: loadgen.Arrival(c.String("arrival")),
		Warmup:  loadgen.Limit{Duration: c.Duration("warmup"), Requests: c.Int("warmup-requests")},
		Measure: loadgen.Limit{Duration: c.Duration("duration"), Requests: c.Int("requests")},
		Prompts: c.String("prompts"), PromptTokens: c.Int("prompt-tokens"), MaxTokens: c.Int("max-tokens"), ExtraBody: c.String("extra-body"),
		Seed: c.Uint64("seed"), StallTimeout: c.Duration("stall-timeout"), TokenInterval: c.Duration("token-interval")}, c.App.Writer)
	if ce := (*loadgen.ConfigError)(nil); errors.As(err, &ce) { // a prompts file's error names its file and line
		return usagef("load: --%s: %s", strings.ReplaceAll(ce.Key, "_", "-"), ce.Msg)
	}
	return err
}
