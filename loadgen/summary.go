package loadgen

import (
	"fmt"
	"github.com/llem/llem/internal/order"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Dist summarises a latency distribution in seconds. Percentiles are
// linearly interpolated (numpy's default, which vLLM's benchmark uses).
type Dist struct {
	N                        int
	Mean, P50, P90, P99, Max float64
}

func dist(x []float64) Dist {
	if len(x) == 0 {
		return Dist{}
	}
	slices.Sort(x)
	sum := 0.0
	for _, v := range x {
		sum += v
	}
	return Dist{N: len(x), Mean: sum / float64(len(x)), P50: order.Quantile(x, 0.5), P90: order.Quantile(x, 0.9), P99: order.Quantile(x, 0.99), Max: x[len(x)-1]}
}

// PhaseSummary counts the requests that started in a phase.
type PhaseSummary struct {
	Requests, OK, Failed int
	// Failures counts the failed requests by class (FailHTTP "http_500",
	// FailStalled...); FirstFailure holds the first detail of each.
	Failures     map[string]int
	FirstFailure map[string]string
	// Token counts of the requests that ended ok: the server's usage when
	// given, else what the stream showed; InputTokens only from usage or
	// token-id prompts.
	InputTokens, OutputTokens int64
	// Latencies of the requests that ended ok, as vLLM's benchmark
	// defines them: TTFT first token - start; TPOT (last token - first
	// token) / (tokens - 1); ITL every gap between token-bearing chunks;
	// E2E end - start.
	TTFT, TPOT, ITL, E2E Dist

	ttft, tpot, itl, e2e []float64
}

func (p *PhaseSummary) add(r result) {
	p.Requests++
	if r.fail != "" {
		p.Failed++
		if p.Failures == nil {
			p.Failures, p.FirstFailure = map[string]int{}, map[string]string{}
		}
		if p.Failures[r.fail]++; p.Failures[r.fail] == 1 {
			p.FirstFailure[r.fail] = r.detail
		}
		return
	}
	p.OK++
	p.OutputTokens += r.output
	p.InputTokens += max(r.input, 0)
	p.e2e = append(p.e2e, float64(r.endNs-r.startNs)/1e9)
	if r.firstNs != 0 {
		p.ttft = append(p.ttft, float64(r.firstNs-r.startNs)/1e9)
		if r.output > 1 {
			p.tpot = append(p.tpot, float64(r.lastTokenNs-r.firstNs)/1e9/float64(r.output-1))
		}
	}
	p.itl = append(p.itl, r.gaps...)
}

func (p *PhaseSummary) finish() {
	p.TTFT, p.TPOT, p.ITL, p.E2E = dist(p.ttft), dist(p.tpot), dist(p.itl), dist(p.e2e)
	p.ttft, p.tpot, p.itl, p.e2e = nil, nil, nil, nil
}

// Summary is what a load did, from the client's side.
type Summary struct {
	Endpoint, Model string
	Loop            string // "closed loop of 32 clients", "open loop at 5 requests/s (poisson)"
	Recording       bool   // the events went to llem record
	// Client clock, ns since the Unix epoch. WarmupEndNs is 0 without a
	// warm-up, MeasureStartNs is then StartNs.
	StartNs, WarmupEndNs, MeasureStartNs, MeasureEndNs int64
	// By the phase the requests started in; Drain: after the measure
	// phase had ended (none are sent then, except by an open loop's
	// requests already waiting for a slot).
	Warmup, Measure, Drain PhaseSummary
	// MeasuredTokens are the output tokens that arrived during the measure
	// phase, of requests that ended ok, whichever phase they started in:
	// with its duration, the throughput; EndedOK the requests that ended
	// ok in it.
	MeasuredTokens int64
	EndedOK        int
	// UsageDiffers counts requests whose usage counted other than the
	// stream showed; those that counted more got the rest as one token
	// event at their end.
	UsageDiffers int
	Lag          Dist // open loop: how late requests were sent after their arrival time
	Interrupted  bool
	EventsError  string // the first failure to send an event, if any

	okEnds []int64 // when the requests that ended ok ended
}

func newSummary(c Config, endpoint string, recording bool) *Summary {
	s := &Summary{Endpoint: endpoint, Model: c.Model, Recording: recording,
		Loop: fmt.Sprintf("closed loop of %d clients", c.Concurrency)}
	if c.Rate > 0 {
		s.Loop = fmt.Sprintf("open loop at %g requests/s (%s)", c.Rate, c.Arrival)
		if c.Concurrency > 0 {
			s.Loop += fmt.Sprintf(", at most %d in flight", c.Concurrency)
		}
	}
	return s
}

func (s *Summary) add(r result) {
	switch r.phase {
	case phaseWarmup:
		s.Warmup.add(r)
	case phaseMeasure:
		s.Measure.add(r)
	default:
		s.Drain.add(r)
	}
	if r.fail != "" {
		return
	}
	if r.usageDiffers {
		s.UsageDiffers++
	}
	s.MeasuredTokens += r.measureTokens
	s.okEnds = append(s.okEnds, r.endNs)
}

// finish computes the distributions, once the phases' stamps are set.
func (s *Summary) finish(lag []float64) {
	for _, t := range s.okEnds {
		if t >= s.MeasureStartNs && t < s.MeasureEndNs {
			s.EndedOK++
		}
	}
	s.okEnds = nil
	for _, p := range []*PhaseSummary{&s.Warmup, &s.Measure, &s.Drain} {
		p.finish()
	}
	s.Lag = dist(lag)
}

// MeasureSeconds is the measure phase's duration.
func (s *Summary) MeasureSeconds() float64 {
	return float64(s.MeasureEndNs-s.MeasureStartNs) / 1e9
}

// WriteText writes the summary for a terminal.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "llem load: %s, model %s, %s\n", s.Endpoint, s.Model, s.Loop)
	if s.Interrupted {
		b.WriteString("interrupted: the requests in flight were cancelled (counted as failed)\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\tok\tfailed\toutput tokens\tinput tokens\tduration\t")
	row := func(name string, p *PhaseSummary, dur string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", name, p.Requests, p.OK, p.Failed, p.OutputTokens, p.InputTokens, dur)
	}
	if s.WarmupEndNs != 0 {
		row("warmup", &s.Warmup, fmt.Sprintf("%.1f s", float64(s.WarmupEndNs-s.StartNs)/1e9))
	}
	row("measure", &s.Measure, fmt.Sprintf("%.1f s", s.MeasureSeconds()))
	if s.Drain.Requests > 0 {
		row("after", &s.Drain, "")
	}
	tw.Flush()
	for _, p := range []struct {
		name string
		*PhaseSummary
	}{{"warmup", &s.Warmup}, {"measure", &s.Measure}, {"after", &s.Drain}} {
		for _, class := range sortedKeys(p.Failures) {
			fmt.Fprintf(&b, "failed in %s: %d x %s, first: %s\n", p.name, p.Failures[class], class, p.FirstFailure[class])
		}
	}
	if d := s.MeasureSeconds(); d > 0 {
		fmt.Fprintf(&b, "measure phase: %d output tokens arrived in %.1f s: %.1f tokens/s, %.2f requests/s ended ok\n",
			s.MeasuredTokens, d, float64(s.MeasuredTokens)/d, float64(s.EndedOK)/d)
	}
	if s.Measure.OK > 0 {
		b.WriteString("latency of the measure phase's requests (ok), ms:\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tn\tmean\tp50\tp90\tp99\t")
		for _, l := range []struct {
			name string
			d    Dist
		}{{"TTFT", s.Measure.TTFT}, {"TPOT", s.Measure.TPOT}, {"ITL", s.Measure.ITL}, {"E2E", s.Measure.E2E}} {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", l.name, l.d.N, l.d.Mean*1e3, l.d.P50*1e3, l.d.P90*1e3, l.d.P99*1e3)
		}
		tw.Flush()
	}
	if s.Lag.N > 0 {
		fmt.Fprintf(&b, "open loop: %d requests sent, late on their arrival times by %.2f ms at p99, %.2f ms at most\n", s.Lag.N, s.Lag.P99*1e3, s.Lag.Max*1e3)
	}
	if s.UsageDiffers > 0 {
		fmt.Fprintf(&b, "usage: for %d requests the server counted other than the chunks streamed; its count is recorded (tokens it counted and did not stream as one token event at the end)\n", s.UsageDiffers)
	}
	switch {
	case s.EventsError != "":
		fmt.Fprintf(&b, "events: %s\n", s.EventsError)
	case s.Recording:
		b.WriteString("events: sent to llem record\n")
	default:
		b.WriteString("events: none sent (not under llem record)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
