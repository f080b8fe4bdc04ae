package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/eventsrv"
	"github.com/llem/llem/trace"
)

// How long a relay waits, once its command has ended, for the sampler to
// take what it still holds, before keeping it in the job directory (a
// variable so that tests can shorten it).
var samplerWait = 60 * time.Second

// A write to the sampler that takes longer than this means the sampler is
// stuck; the relay keeps what was not acknowledged.
const writeTimeout = 60 * time.Second

// maxBufferedRows bounds what a relay holds for a sampler that has not
// taken it (~200 bytes a row); beyond it, new events are counted and lost.
const maxBufferedRows = 1 << 18

// maxBatch bounds the rows in one message.
const maxBatch = 4096

// forwardEvery is how often a relay gathers its events and sends them.
const forwardEvery = 100 * time.Millisecond

// RunRelay runs a task that does not sample: its command, on the same
// schedule as the node's sampler (idle before, cycles, cool-downs), with
// its own LLEM_EVENTS socket whose events go to the sampler, then its part
// of the job manifest. It returns the command's exit code; the error is for
// failures of llem itself.
func RunRelay(ctx context.Context, t *Task, jobDir string, cfg record.Config, opts Options) (int, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, record.StopSignals...)
	defer signal.Stop(sigs)

	workDir, _ := os.Getwd()
	part := newPart(t, trace.RoleRelay, opts.LlemVersion)
	part.Command = &trace.CommandInfo{Argv: cfg.Argv, WorkDir: workDir}
	if err := writeFirstPart(jobDir, &part); err != nil {
		return 0, err
	}
	fail := func(err error) (int, error) {
		part.Status, part.Error = trace.TaskFailed, err.Error()
		if werr := trace.WriteJobTask(jobDir, &part); werr != nil {
			err = errors.Join(err, werr)
		}
		return 0, err
	}
	if len(cfg.Argv) == 0 {
		return fail(errors.New("no command to record: put it after --"))
	}
	if err := record.CheckCommand(cfg.Argv[0]); err != nil {
		return fail(err)
	}
	dir, err := rendezvousDir(t)
	if err != nil {
		return fail(err)
	}
	clock := record.NewClock()
	rank := int32(t.Rank)
	sock := taskSocket(dir, t.Rank)
	os.Remove(sock) // a killed relay of this very task left it
	srv, err := eventsrv.Listen(sock, clock.Now, eventsrv.Options{Task: &rank})
	if err != nil {
		return fail(err)
	}
	fw := &forwarder{dir: dir, log: opts.Log, srv: srv,
		hello: wireHello{Rank: t.Rank, LocalRank: t.LocalRank, PID: os.Getpid(), LlemVersion: opts.LlemVersion},
		endC:  make(chan wireEnd, 1), done: make(chan struct{})}
	go fw.run()

	cmd := part.Command
	env := append(os.Environ(), "LLEM_EVENTS="+sock, "LLEM_RUN_DIR="+filepath.Join(jobDir, t.Node))
	taskEvent := func(kind string, cycle int32, attrs string) {
		fw.add(trace.Event{TimestampNs: clock.Now(), GPU: trace.GPUAll, Kind: kind, Cycle: &cycle,
			Source: "recorder", Attrs: attrs, Task: &rank})
	}
	idle := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
			return true
		case <-sigs:
			return false
		case <-ctx.Done():
			return false
		}
	}
	exitCode, interrupted := 0, false
	var runErr error
	if !idle(cfg.IdleBefore) {
		exitCode, interrupted = 130, true
	}
	for c := 1; c <= cfg.Cycles && !interrupted; c++ {
		cycle := int32(c)
		var startNs int64
		res, err := record.RunCommand(cfg.Argv, env, cfg.Stdin, cfg.Stdout, cfg.Stderr, sigs, cfg.StopGrace, opts.Log, func() {
			startNs = clock.Now()
			taskEvent("task_start", cycle, "")
		})
		endNs := clock.Now()
		if err != nil {
			runErr = err
			break
		}
		taskEvent("task_end", cycle, fmt.Sprintf(`{"exit_code":%d}`, res.ExitCode))
		if cmd.StartNs == 0 {
			cmd.StartNs = startNs
		}
		cmd.EndNs = endNs
		cmd.Cycles = append(cmd.Cycles, trace.CycleInfo{Cycle: c, StartNs: startNs, EndNs: endNs, ExitCode: res.ExitCode})
		code := res.ExitCode
		cmd.ExitCode, cmd.ExitSignal, exitCode = &code, res.Signal, code
		cmd.Leftover += res.Leftover
		if res.Stop != nil {
			cmd.Stop, interrupted = res.Stop, true
			break
		}
		if code != 0 {
			break
		}
		if c < cfg.Cycles && !idle(cfg.Cooldown) {
			exitCode, interrupted = 130, true
		}
	}

	// Every line the command sent is read before the counts are final.
	if err := srv.Close(); err != nil {
		fmt.Fprintf(opts.Log, "llem: closing event socket: %v\n", err)
	}
	stats := srv.Stats()
	stats.Socket = sock
	end := wireEnd{Command: *cmd, Events: stats}
	if runErr != nil {
		end.Error = runErr.Error()
	}
	fw.endC <- end
	<-fw.done

	part.Events = &stats
	part.Relay = &trace.RelayStats{Delivered: fw.delivered, Overflow: fw.overflow}
	if rows := fw.undelivered(); len(rows.events)+len(rows.bad) > 0 {
		rel := filepath.Join(trace.ManifestDir, fmt.Sprintf("undelivered-task-%06d", t.Rank))
		part.Relay.Undelivered = int64(len(rows.events) + len(rows.bad))
		part.Relay.UndeliveredDir = rel
		if err := writeUndelivered(filepath.Join(jobDir, rel), t, rows); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("keeping events the sampler did not take: %w", err))
		}
		fmt.Fprintf(opts.Log, "llem: warning: %d event(s) of task %d never reached node %s's sampler (%s); kept in %s\n",
			part.Relay.Undelivered, t.Rank, t.Node, fw.reason, filepath.Join(jobDir, rel))
	}
	part.Status = trace.TaskComplete
	if interrupted {
		part.Status = trace.TaskInterrupted
	}
	if runErr != nil {
		part.Status, part.Error = trace.TaskFailed, runErr.Error()
	}
	if err := trace.WriteJobTask(jobDir, &part); err != nil {
		return exitCode, fmt.Errorf("job manifest: %w", err)
	}
	return exitCode, runErr
}

// forwarder takes a relay's events from its socket and sends them to the
// node's sampler, holding them until the sampler has acknowledged them.
type forwarder struct {
	dir    string
	hello  wireHello
	log    io.Writer
	srv    *eventsrv.Server // the task's socket; its queue is taken until it is done
	closed bool             // srv is done and its queue was taken after
	endC   chan wireEnd
	done   chan struct{}

	mu  sync.Mutex
	own []trace.Event // the relay's own task_start / task_end

	// Owned by run until done is closed.
	pending   []wireMsg // gathered, not sent
	unacked   []wireMsg // sent, not acknowledged
	held      int       // rows in pending and unacked
	overflow  int64
	delivered int64
	conn      net.Conn
	enc       *json.Encoder
	acks      chan struct{}
	broken    chan error
	gaveUp    bool
	reason    string // why the sampler was given up on
}

func (f *forwarder) add(e trace.Event) {
	f.mu.Lock()
	f.own = append(f.own, e)
	f.mu.Unlock()
}

func (f *forwarder) run() {
	defer close(f.done)
	defer func() {
		if f.conn != nil {
			f.conn.Close()
		}
	}()
	tick := time.NewTicker(forwardEvery)
	defer tick.Stop()
	var end *wireEnd
	var deadline time.Time
	endSent := false
	for {
		select {
		case <-tick.C:
		case <-f.srv.Ready(): // the socket's queue is half full: take it now
		case e := <-f.endC:
			end, deadline = &e, time.Now().Add(samplerWait)
		case <-f.acks:
			m := f.unacked[0]
			f.unacked = f.unacked[1:]
			n := len(m.Events) + len(m.Bad)
			f.held -= n
			f.delivered += int64(n)
			if !(end != nil && endSent && len(f.unacked) == 0) {
				continue
			}
		case err := <-f.broken:
			f.giveUp(fmt.Sprintf("the connection to the sampler broke: %v", err))
		}
		f.gather()
		if f.conn == nil && !f.gaveUp {
			f.connect()
		}
		if f.conn != nil {
			f.sendPending()
			if end != nil && f.eventsClosed() && len(f.pending) == 0 && !endSent && f.conn != nil {
				f.send(wireMsg{End: end})
				endSent = true
			}
		}
		if end != nil {
			switch {
			case endSent && len(f.unacked) == 0:
				return
			case f.gaveUp:
				return
			case time.Now().After(deadline):
				f.giveUp(fmt.Sprintf("the sampler did not take them within %v of the command's end", samplerWait))
				return
			}
		}
	}
}

func (f *forwarder) eventsClosed() bool { return f.closed }

// gather moves every event queued by the socket, and the relay's own
// events, into pending messages.
func (f *forwarder) gather() {
	var evs []trace.Event
	var bad []trace.BadEvent
	f.mu.Lock()
	evs, f.own = append(evs, f.own...), nil
	f.mu.Unlock()
	if !f.closed {
		// Done is looked at before the queue is taken: once the server
		// is done, that take holds everything it will ever queue.
		select {
		case <-f.srv.Done():
			f.closed = true
		default:
		}
		e, b := f.srv.Take(nil, nil)
		evs, bad = append(evs, e...), append(bad, b...)
	}
	if room := maxBufferedRows - f.held; len(evs)+len(bad) > room {
		room = max(room, 0)
		keepEv := min(len(evs), room)
		f.overflow += int64(len(evs) - keepEv)
		evs = evs[:keepEv]
		keepBad := min(len(bad), room-keepEv)
		f.overflow += int64(len(bad) - keepBad)
		bad = bad[:keepBad]
	}
	for len(evs) > 0 || len(bad) > 0 {
		m := wireMsg{}
		n := min(len(evs), maxBatch)
		m.Events, evs = evs[:n], evs[n:]
		k := min(len(bad), maxBatch-n)
		m.Bad, bad = bad[:k], bad[k:]
		f.pending = append(f.pending, m)
		f.held += len(m.Events) + len(m.Bad)
	}
}

// connect tries the sampler's socket once; a sampler that failed to start
// left a marker, and then the relay stops trying.
func (f *forwarder) connect() {
	if b, err := os.ReadFile(filepath.Join(f.dir, failedMarker)); err == nil {
		f.giveUp("the sampler failed: " + strings.TrimSpace(string(b)))
		return
	}
	c, err := net.DialTimeout("unix", filepath.Join(f.dir, nodeSocket), time.Second)
	if err != nil {
		return // not there yet: the sampler is starting
	}
	f.conn, f.enc = c, json.NewEncoder(c)
	f.acks, f.broken = make(chan struct{}), make(chan error, 1)
	go readAcks(c, f.acks, f.broken, f.done)
	f.send(wireMsg{Hello: &f.hello})
}

func readAcks(c net.Conn, acks chan<- struct{}, broken chan<- error, done <-chan struct{}) {
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		for i := 0; i < n; i++ {
			select {
			case acks <- struct{}{}:
			case <-done:
				return
			}
		}
		if err != nil {
			select {
			case broken <- err:
			default:
			}
			return
		}
	}
}

func (f *forwarder) sendPending() {
	for len(f.pending) > 0 && f.conn != nil {
		m := f.pending[0]
		f.pending = f.pending[1:]
		f.send(m)
	}
}

func (f *forwarder) send(m wireMsg) {
	f.unacked = append(f.unacked, m)
	f.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := f.enc.Encode(m); err != nil {
		f.giveUp(fmt.Sprintf("sending to the sampler failed: %v", err))
	}
}

// giveUp stops talking to the sampler; what it has not acknowledged is
// kept for the job directory.
func (f *forwarder) giveUp(reason string) {
	if f.gaveUp {
		return
	}
	f.gaveUp, f.reason = true, reason
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}

type rowsHeld struct {
	events []trace.Event
	bad    []trace.BadEvent
}

// undelivered is everything the sampler did not acknowledge; valid once
// done is closed.
func (f *forwarder) undelivered() rowsHeld {
	var r rowsHeld
	for _, m := range append(f.unacked, f.pending...) {
		r.events = append(r.events, m.Events...)
		r.bad = append(r.bad, m.Bad...)
	}
	return r
}

// writeUndelivered keeps a relay's undelivered rows as events and
// bad_events tables (Parquet, as in a run, without meta.json: there is no
// GPU data in it), so that no event is lost when the sampler is.
func writeUndelivered(dir string, t *Task, rows rowsHeld) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	id := fmt.Sprintf("job-%s.%s-task-%d", t.JobID, t.StepID, t.Rank)
	ev, err := trace.NewTableWriter(dir, trace.TableEvents, id, trace.CompareEvent)
	if err != nil {
		return err
	}
	bad, err := trace.NewTableWriter[trace.BadEvent](dir, trace.TableBadEvents, id, nil)
	if err != nil {
		return err
	}
	return errors.Join(ev.Add(rows.events...), bad.Add(rows.bad...), ev.Flush(), bad.Flush())
}
