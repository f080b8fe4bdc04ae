package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llem/llem/events"
)

// Phase names, as analyze reads them: measure is its default measured
// phase.
const (
	PhaseWarmup  = "warmup"
	PhaseMeasure = "measure"
)

// phase is where the load is: requests are tagged with the phase they
// started in.
type phase int32

const (
	phaseWarmup phase = iota
	phaseMeasure
	phaseDrain // after the measure phase: nothing new is sent, requests in flight finish
)

// MarkName names the mark event that records the load's settings at its
// start, so that a recording says how it was driven.
const MarkName = "llem_load"

// Errors of Run, after which its summary still says what happened.
var (
	ErrInterrupted = errors.New("load interrupted: the requests in flight were cancelled")
	ErrNoSuccess   = errors.New("no request of the measure phase succeeded")
)

// Generator is a configured load, ready to run.
type Generator struct {
	cfg      Config
	endpoint string
	extra    map[string]any
	prompts  *promptOrder // nil: generated prompts
	client   *http.Client
}

// New checks cfg and reads its prompts file. Errors are *ConfigError; one
// about the prompts file names the file and line.
func New(cfg Config) (*Generator, error) {
	endpoint, extra, err := cfg.check()
	if err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, endpoint: endpoint, extra: extra}
	if cfg.Prompts != "" {
		ps, err := ReadPrompts(cfg.Prompts, cfg.API)
		if err != nil {
			return nil, &ConfigError{Key: "prompts", Msg: err.Error()}
		}
		g.prompts = &promptOrder{prompts: ps, seed: cfg.Seed}
	}
	idle := 1024 // an open loop without a cap has no bound: keep many
	if cfg.Concurrency > 0 {
		idle = cfg.Concurrency
	}
	g.client = &http.Client{Transport: &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// One kept-alive connection per client, so that a closed loop
		// does not open a connection per request (the default keeps 2).
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // a compressed stream arrives in bursts
	}}
	return g, nil
}

// RunCommand is llem load: it checks cfg and reads its prompts, connects
// to the recorder when LLEM_EVENTS names one, runs the load until the
// measure phase ends or SIGINT or SIGTERM (which llem record forwards)
// interrupts it, and writes the summary to out, also when Run fails. An
// empty APIKey is read from OPENAI_API_KEY, as vLLM's benchmark reads it.
func RunCommand(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.APIKey == "" {
		cfg.APIKey = os.Getenv("OPENAI_API_KEY")
	}
	g, err := New(cfg)
	if err != nil {
		return err
	}
	// Unset: a client that sends nothing. Set but unreachable: stop rather
	// than make a recording without its events.
	ev, err := events.Dial()
	if err != nil {
		return err
	}
	defer ev.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := g.Run(ctx, ev)
	return errors.Join(err, sum.WriteText(out))
}

// requestID names request k in the events.
func requestID(k int64) string { return "r" + strconv.FormatInt(k, 10) }

// body is request k's JSON body and its prompt length when known.
func (g *Generator) body(k int64) ([]byte, int64) {
	var p Prompt
	if g.prompts != nil {
		p = g.prompts.at(k)
	} else {
		p = generatedPrompt(g.cfg.Seed, k, g.cfg.PromptTokens, g.cfg.API)
	}
	b := make(map[string]any, len(g.extra)+5)
	for key, v := range g.extra {
		b[key] = v
	}
	b["model"] = g.cfg.Model
	b["stream"] = true
	if _, ok := g.extra["stream_options"]; !ok {
		// Ask for the server's own token counts: a last chunk with usage.
		b["stream_options"] = map[string]any{"include_usage": true}
	} else if g.extra["stream_options"] == nil {
		delete(b, "stream_options") // {"stream_options": null}: a server that refuses it
	}
	b["max_tokens"] = g.cfg.MaxTokens
	if p.MaxTokens > 0 {
		b["max_tokens"] = p.MaxTokens
	}
	if p.Messages != nil {
		b["messages"] = p.Messages
	} else {
		b["prompt"] = p.Text
	}
	out, _ := json.Marshal(b) // RawMessages from a parsed file and plain values: it encodes
	return out, p.InputTokens
}

// arrivals is an open loop's schedule: the offset of request k from the
// start, drawn once in order so that a seed gives the same schedule.
type arrivals struct {
	rate    float64
	poisson bool
	rng     *rand.Rand
	t       float64 // s, the last offset
}

// newArrivalRand is the arrivals' random stream, apart from the prompts'.
func newArrivalRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1<<62)) }

func (a *arrivals) next() time.Duration {
	gap := 1 / a.rate
	if a.poisson {
		gap = a.rng.ExpFloat64() / a.rate
	}
	at := a.t
	a.t += gap
	return time.Duration(at * 1e9)
}

// run is the state of one Run.
type run struct {
	g       *Generator
	q       *requester
	cur     atomic.Int32  // the phase, read by requests as tokens arrive
	stop    chan struct{} // closed when nothing more may be sent
	results chan result
	sendErr atomic.Pointer[error]
	lag     []float64 // open loop: s between a request's arrival time and its sending

	// mu orders the requests (k, so the prompts follow the seed) and the
	// phases: a request's end is counted, and the phase it ends advanced,
	// before its client takes the next request, so that a closed loop of
	// one client sends exactly the requests its phases ask for.
	mu    sync.Mutex
	k     int64    // the next request
	limit Limit    // of the current phase
	ended int      // requests of the current phase that have ended
	gen   int      // the phase's number, so that a late timer of an earlier one does nothing
	stamp [3]int64 // ns: the warm-up's end, the measure phase's start and end
	timer *time.Timer
}

// Run sends the load until the measure phase ends, waits for the
// requests in flight, and returns what happened. Events go to ev (a client
// that is not connected does nothing). When ctx is cancelled, requests in
// flight are cancelled, the summary says so, and the error is
// ErrInterrupted; when no request of the measure phase succeeded it is
// ErrNoSuccess.
func (g *Generator) Run(ctx context.Context, ev *events.Client) (*Summary, error) {
	r := &run{g: g, stop: make(chan struct{}), results: make(chan result, 256)}
	r.q = &requester{client: g.client, endpoint: g.endpoint, apiKey: g.cfg.APIKey, ev: ev,
		tokenInterval: int64(g.cfg.TokenInterval), stall: g.cfg.StallTimeout, phase: &r.cur, sendErr: &r.sendErr}
	sum := newSummary(g.cfg, g.endpoint, ev.Connected())
	r.send(events.Message{Kind: events.KindMark, Name: MarkName, Attrs: g.settings()})

	// Requests run under their own context, cancelled only when ctx is:
	// the end of a phase lets them finish.
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	start := time.Now()
	sum.StartNs = start.UnixNano()
	r.mu.Lock()
	if g.cfg.Warmup.set() {
		r.begin(phaseWarmup, start)
	} else {
		r.stamp[0], r.stamp[1] = 0, sum.StartNs
		r.begin(phaseMeasure, start)
	}
	r.mu.Unlock()
	allDone := make(chan struct{})
	go func() {
		r.dispatch(reqCtx, start)
		close(allDone)
	}()

	interrupted := false
	for {
		select {
		case res := <-r.results:
			sum.add(res)
			continue
		case <-ctx.Done():
			interrupted = true
			r.mu.Lock()
			for phase(r.cur.Load()) != phaseDrain {
				r.advance()
			}
			r.mu.Unlock()
			cancelReqs()
			ctx = context.Background() // seen once: now wait for the cancelled requests
			continue
		case <-allDone:
		}
		break
	}
	for len(r.results) > 0 {
		sum.add(<-r.results)
	}
	sum.WarmupEndNs, sum.MeasureStartNs, sum.MeasureEndNs = r.stamp[0], r.stamp[1], r.stamp[2]
	sum.finish(r.lag)
	if e := r.sendErr.Load(); e != nil {
		sum.EventsError = (*e).Error()
	}
	switch {
	case interrupted:
		sum.Interrupted = true
		return sum, ErrInterrupted
	case sum.Measure.OK == 0:
		return sum, ErrNoSuccess
	}
	return sum, nil
}

// begin starts phase p at t, with its limits. r.mu is held.
func (r *run) begin(p phase, t time.Time) {
	r.cur.Store(int32(p))
	r.gen++
	r.limit, r.ended = r.g.cfg.Measure, 0
	name := PhaseMeasure
	if p == phaseWarmup {
		r.limit, name = r.g.cfg.Warmup, PhaseWarmup
	}
	r.send(events.Message{Kind: events.KindPhaseStart, Name: name, TimeNs: t.UnixNano()})
	if r.limit.Duration > 0 {
		gen := r.gen
		r.timer = time.AfterFunc(r.limit.Duration, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.gen == gen {
				r.advance()
			}
		})
	}
}

// advance ends the current phase and starts the next: measure after
// warmup, then the drain, in which nothing new is sent. r.mu is held.
func (r *run) advance() {
	now := time.Now()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	switch phase(r.cur.Load()) {
	case phaseWarmup:
		r.send(events.Message{Kind: events.KindPhaseEnd, Name: PhaseWarmup, TimeNs: now.UnixNano()})
		r.stamp[0], r.stamp[1] = now.UnixNano(), now.UnixNano()
		r.begin(phaseMeasure, now)
	case phaseMeasure:
		r.send(events.Message{Kind: events.KindPhaseEnd, Name: PhaseMeasure, TimeNs: now.UnixNano()})
		r.stamp[2] = now.UnixNano()
		r.gen++
		r.cur.Store(int32(phaseDrain))
		close(r.stop)
	}
}

// ended counts a request's end in its phase, and ends the phase when
// that was its last.
func (r *run) end(res result) {
	r.mu.Lock()
	if res.phase == phase(r.cur.Load()) && res.phase != phaseDrain {
		if r.ended++; r.limit.Requests > 0 && r.ended >= r.limit.Requests {
			r.advance()
		}
	}
	r.mu.Unlock()
	r.results <- res
}

// send sends an event of the load itself.
func (r *run) send(m events.Message) { r.q.send(m) }

// next is the next request's number, body, prompt length and phase, or
// false once the load has stopped.
func (r *run) next() (int64, []byte, int64, phase, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if phase(r.cur.Load()) == phaseDrain {
		return 0, nil, 0, 0, false
	}
	k := r.k
	r.k++
	body, in := r.g.body(k)
	return k, body, in, phase(r.cur.Load()), true
}

// dispatch sends the requests: a closed loop of clients, or an open loop
// on the arrival schedule.
func (r *run) dispatch(ctx context.Context, start time.Time) {
	var wg sync.WaitGroup
	defer wg.Wait()
	one := func(k int64, body []byte, in int64, ph phase) {
		r.end(r.q.do(ctx, requestID(k), body, in, ph))
	}
	cfg := r.g.cfg
	if cfg.Rate == 0 {
		for range cfg.Concurrency {
			wg.Go(func() {
				for {
					k, body, in, ph, ok := r.next()
					if !ok {
						return
					}
					one(k, body, in, ph)
				}
			})
		}
		return
	}
	sched := arrivals{rate: cfg.Rate, poisson: cfg.Arrival == ArrivalPoisson, rng: newArrivalRand(cfg.Seed)}
	var slots chan struct{} // the cap on requests in flight
	if cfg.Concurrency > 0 {
		slots = make(chan struct{}, cfg.Concurrency)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		at := start.Add(sched.next())
		timer.Reset(time.Until(at))
		select {
		case <-r.stop:
			return
		case <-timer.C:
		}
		if slots != nil {
			select {
			case <-r.stop:
				return
			case slots <- struct{}{}:
			}
		}
		k, body, in, ph, ok := r.next()
		if !ok {
			return
		}
		r.lag = append(r.lag, time.Since(at).Seconds())
		wg.Go(func() {
			one(k, body, in, ph)
			if slots != nil {
				<-slots
			}
		})
	}
}

// settings are the load's settings as the attributes of its mark event.
func (g *Generator) settings() map[string]any {
	c := g.cfg
	m := map[string]any{"url": c.URL, "model": c.Model, "api": string(c.API), "seed": c.Seed,
		"concurrency": c.Concurrency, "max_tokens": c.MaxTokens,
		"warmup_s": c.Warmup.Duration.Seconds(), "warmup_requests": c.Warmup.Requests,
		"duration_s": c.Measure.Duration.Seconds(), "requests": c.Measure.Requests,
		"stall_timeout_s":  c.StallTimeout.Seconds(),
		"token_interval_s": c.TokenInterval.Seconds()}
	if c.Rate > 0 {
		m["rate"], m["arrival"] = c.Rate, string(c.Arrival)
	}
	if c.Prompts != "" {
		m["prompts"], m["prompts_count"] = c.Prompts, len(g.prompts.prompts)
	} else {
		m["prompt_tokens"] = c.PromptTokens
	}
	if g.extra != nil {
		m["extra_body"] = g.extra
	}
	return m
}
