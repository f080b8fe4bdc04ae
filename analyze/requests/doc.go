// Package requests reconstructs an inference workload from a run's events
// (docs/events.md): the requests, when their output tokens came out, and
// their latencies, with indexes that answer window queries ("how many
// tokens in [a, b)?") in logarithmic time.
//
// # Requests
//
// Events are grouped by request id. Only request_start, first_token, token
// and request_end are used; phases and marks are ignored. Events are taken
// in order of arrival stamp (stable, so events of one connection keep
// their order at equal stamps). An id that starts again after its request
// ended is a new request, named "id#2", "id#3", ... Inconsistencies (an
// end without a start, a start without an end, a repeated first_token or
// request_end, events after the end, token counts that disagree with
// request_end) never stop the analysis: they are counted in Set.Problems.
//
// # Output tokens, and when they count
//
// A token is counted when the client reports it ready, at that event's
// stamp. A first_token event is one token; a token event with count n is n
// more tokens (count is "n more output tokens are ready", not a running
// total). A request's StreamedTokens is 1 for its first_token plus the sum
// of its token counts. When a request sent token events and its
// request_end also carries output_tokens, the streamed count is the one
// used, and a disagreement is reported.
//
// A request that sent no token events but ended with output_tokens has no
// per-token times; its tokens are spread uniformly over its generation
// span and a window counts the fraction of the span it overlaps. The span
// is [first_token, request_end], the first_token itself counting 1 at its
// stamp and the other output_tokens - 1 spread; without a first_token it
// is [request_start, request_end]; with neither, the tokens count at the
// request_end stamp. A request with neither streamed tokens nor
// output_tokens contributes nothing.
//
// # Two clocks
//
// Every event carries the recorder's arrival stamp (TimestampNs), on the
// clock of the power samples. Energy is attributed to tokens and windows
// with it: it is the only stamp that shares a clock with the power
// series, and it trails the moment the client knew by the socket latency
// only (tens of microseconds), far below a power sample's period.
//
// Latency is a difference between two events of the same request, so a
// common offset cancels and what matters is jitter. The client's own
// stamp (ts) is taken where the event happened, before queueing on the
// socket and in the recorder, so Latency uses it when every event of the
// request carried one; a request with any event lacking ts falls back to
// arrival stamps for all its metrics, so one metric never mixes clocks.
//
// # Latency metrics
//
// TTFT = first_token - request_start; E2E = request_end - request_start;
// ITL, the request's mean inter-token latency = (last token - first
// token) / (StreamedTokens - 1) when it streamed at least 2 tokens, or,
// for a request that sent no token events, (request_end - first_token) /
// (output_tokens - 1) when output_tokens >= 2. A metric whose events are
// missing is skipped for that request.
//
// # The ML.ENERGY steady window
//
// Set.SteadyWindow is the event-based steady state of the ML.ENERGY
// benchmark (Chung et al., "The ML.ENERGY Benchmark", arXiv:2505.06371;
// code: github.com/ml-energy/benchmark, RequestTracker in
// mlenergy/benchmark/llm/benchmark.py): it opens when max_num_seqs
// requests have produced their first token and closes when
// N - max_num_seqs - 1 requests have finished. Energy per token over it is
// the window's energy divided by Set.OutputTokens over the same window.
package requests
