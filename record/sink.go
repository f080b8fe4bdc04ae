package record

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llem/llem/record/eventsrv"
	"github.com/llem/llem/trace"
)

// tableSink owns the table writers. Sampling loops append rows to its
// queues; one goroutine moves them to the writers and writes a segment of
// every table each rotation interval, so no sampling loop ever waits on the
// disk and a killed recorder loses at most one interval of samples.
//
// Handing rows over does not wake that goroutine: it wakes once per
// rotation (and when a queue reaches the segment row bound, or the event
// server's queue is half full). Waking it for every row, as channels did,
// cost more CPU than the rows themselves.
type tableSink struct {
	mu      sync.Mutex
	dpQ     []trace.DriverPowerSample
	enQ     []trace.EnergyRead
	stQ     []trace.DeviceState
	evQ     []trace.Event    // the recorder's own events and, in a job, other tasks' (NodeTasks)
	badQ    []trace.BadEvent // other tasks' bad lines in a job
	kick    chan struct{}    // a queue reached the row bound
	done    chan struct{}
	quit    chan struct{}
	maxRows int

	hostQ []trace.HostEnergyRead // the host's RAPL reads (host_energy)

	dp  *trace.TableWriter[trace.DriverPowerSample]
	en  *trace.TableWriter[trace.EnergyRead]
	st  *trace.TableWriter[trace.DeviceState]
	ev  *trace.TableWriter[trace.Event]
	bad *trace.TableWriter[trace.BadEvent]
	// host is nil when the host's energy counters are not recorded: the
	// run then has no host_energy folder.
	host *trace.TableWriter[trace.HostEnergyRead]

	client   *eventsrv.Server
	attached chan struct{}

	errMu sync.Mutex
	err   error

	// Set before attachEvents (the loop starts after it): onFail is told
	// of the first write error at once; from then on rows are dropped,
	// not written, so the trace stops at its last whole rotation
	// (goodUntil, on now's clock). busySince is when the write under way
	// began (0: none), for the stall watchdog.
	now       func() int64
	onFail    func(err error, goodUntil int64)
	goodUntil atomic.Int64
	busySince atomic.Int64
	failed    atomic.Bool

	// published is each table's counts as of the writer's last step, for
	// the live metrics: the writers are the loop's alone, so it copies
	// their counts here rather than have a scrape read them.
	published []*tableCounts
}

// tableCounts is one table's written rows, segments and bytes.
type tableCounts struct {
	table                 string
	rows, segments, bytes atomic.Int64
}

// eventSegmentRows bounds an events segment (the other tables keep
// trace.DefaultMaxSegmentRows).
const eventSegmentRows = 50_000

func newTableSink(dir, runID string, rotate time.Duration, host bool) (*tableSink, error) {
	s := &tableSink{
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		quit:     make(chan struct{}),
		attached: make(chan struct{}),
		maxRows:  trace.DefaultMaxSegmentRows,
	}
	var err error
	if s.dp, err = trace.NewTableWriter(dir, trace.TableDriverPower, runID, trace.CompareDriverPower); err != nil {
		return nil, err
	}
	// 50 samples a second a GPU: in 5 s segments the file overhead was
	// more than the samples (docs/trace-format.md, "Segments").
	s.dp.SetGrow(trace.DriverPowerSegmentSpan)
	if s.en, err = trace.NewTableWriter(dir, trace.TableEnergy, runID, trace.CompareEnergy); err != nil {
		return nil, err
	}
	if s.st, err = trace.NewTableWriter(dir, trace.TableState, runID, trace.CompareState); err != nil {
		return nil, err
	}
	if s.ev, err = trace.NewTableWriter(dir, trace.TableEvents, runID, trace.CompareEvent); err != nil {
		return nil, err
	}
	// At serving rates the events table fills fastest: a segment every
	// eventSegmentRows keeps the rows held in memory (~150 B each, with
	// the Parquet writer's copy) to a few tens of MB at 50,000 events/s.
	s.ev.SetMaxRows(eventSegmentRows)
	if s.bad, err = trace.NewTableWriter[trace.BadEvent](dir, trace.TableBadEvents, runID, nil); err != nil {
		return nil, err
	}
	for _, t := range []string{trace.TableDriverPower, trace.TableEnergy, trace.TableState, trace.TableEvents, trace.TableBadEvents} {
		s.published = append(s.published, &tableCounts{table: t})
	}
	if host {
		if s.host, err = trace.NewTableWriter[trace.HostEnergyRead](dir, trace.TableHostEnergy, runID, nil); err != nil {
			return nil, err
		}
		s.published = append(s.published, &tableCounts{table: trace.TableHostEnergy})
	}
	go s.loop(rotate)
	return s, nil
}

// attachEvents connects the event server, whose queue is taken until it
// is done.
func (s *tableSink) attachEvents(srv *eventsrv.Server) {
	s.client = srv
	close(s.attached)
}

// queue appends rows to q and kicks the writer when q reaches the row
// bound, so a segment is never larger than that.
func queue[T any](s *tableSink, q *[]T, rows ...T) {
	s.mu.Lock()
	*q = append(*q, rows...)
	full := len(*q) >= s.maxRows
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *tableSink) driverPower(rows []trace.DriverPowerSample) { queue(s, &s.dpQ, rows...) }
func (s *tableSink) energy(row trace.EnergyRead)                { queue(s, &s.enQ, row) }
func (s *tableSink) state(row trace.DeviceState)                { queue(s, &s.stQ, row) }
func (s *tableSink) events(row trace.Event)                     { queue(s, &s.evQ, row) }
func (s *tableSink) relayed(rows []trace.Event)                 { queue(s, &s.evQ, rows...) }
func (s *tableSink) relayedBad(rows []trace.BadEvent)           { queue(s, &s.badQ, rows...) }
func (s *tableSink) hostEnergy(rows []trace.HostEnergyRead)     { queue(s, &s.hostQ, rows...) }

func (s *tableSink) fail(err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	first := s.err == nil
	if first {
		s.err = err
	}
	s.errMu.Unlock()
	if first {
		s.failed.Store(true)
		if s.onFail != nil {
			s.onFail(err, s.goodUntil.Load())
		}
	}
}

// writing marks a write as under way (for the stall watchdog) and returns
// the function that marks it done.
func (s *tableSink) writing() func() {
	if s.now != nil {
		s.busySince.Store(max(s.now(), 1))
	}
	return func() { s.busySince.Store(0) }
}

func (s *tableSink) loop(rotate time.Duration) {
	defer close(s.done)
	<-s.attached
	tick := time.NewTicker(rotate)
	defer tick.Stop()
	var w writeBuffers
	for {
		s.publish()
		select {
		case <-s.client.Ready():
			// Client events are arriving fast: take them before the
			// server's queue fills and it has to drop.
			s.takeClient(&w)
		case <-s.kick:
			s.moveQueued(&w) // the writers write a segment at the row bound
		case <-tick.C:
			var cut int64
			if s.now != nil {
				cut = s.now()
			}
			s.moveQueued(&w)
			s.flushAll()
			if !s.failed.Load() && cut > 0 {
				s.goodUntil.Store(cut) // every row queued before cut is on disk
			}
		case <-s.quit:
			// The producers have stopped and the server is done: take
			// everything still queued.
			<-s.client.Done()
			s.moveQueued(&w)
			s.flushAll()
			if !s.failed.Load() {
				s.fail(s.dp.Close()) // the open driver_power segment gets its manifest line
			}
			s.publish()
			return
		}
	}
}

// publish copies the writers' counts for the live metrics; only the loop
// may call it.
func (s *tableSink) publish() {
	set := func(t *tableCounts, rows int64, segs int, bytes int64) {
		t.rows.Store(rows)
		t.segments.Store(int64(segs))
		t.bytes.Store(bytes)
	}
	set(s.published[0], s.dp.Rows(), s.dp.Segments(), s.dp.Bytes())
	set(s.published[1], s.en.Rows(), s.en.Segments(), s.en.Bytes())
	set(s.published[2], s.st.Rows(), s.st.Segments(), s.st.Bytes())
	set(s.published[3], s.ev.Rows(), s.ev.Segments(), s.ev.Bytes())
	set(s.published[4], s.bad.Rows(), s.bad.Segments(), s.bad.Bytes())
	if s.host != nil {
		set(s.published[5], s.host.Rows(), s.host.Segments(), s.host.Bytes())
	}
}

// writeBuffers are the slices handed back and forth with the producers,
// so that a steady run allocates no new queues.
type writeBuffers struct {
	dp   []trace.DriverPowerSample
	en   []trace.EnergyRead
	st   []trace.DeviceState
	ev   []trace.Event
	cl   []trace.Event
	bad  []trace.BadEvent
	rbad []trace.BadEvent
	host []trace.HostEnergyRead
}

// moveQueued moves every queued row, the client events included, to the
// table writers (which write a segment whenever one reaches the row bound).
func (s *tableSink) moveQueued(w *writeBuffers) {
	s.mu.Lock()
	s.dpQ, w.dp = swap(s.dpQ, w.dp)
	s.enQ, w.en = swap(s.enQ, w.en)
	s.stQ, w.st = swap(s.stQ, w.st)
	s.evQ, w.ev = swap(s.evQ, w.ev)
	s.badQ, w.rbad = swap(s.badQ, w.rbad)
	s.hostQ, w.host = swap(s.hostQ, w.host)
	s.mu.Unlock()
	if s.failed.Load() {
		s.takeClient(w) // dropped: the trace has stopped at its last good rotation
		return
	}
	defer s.writing()()
	s.fail(s.dp.Add(w.dp...))
	s.fail(s.en.Add(w.en...))
	s.fail(s.st.Add(w.st...))
	s.fail(s.ev.Add(w.ev...))
	s.fail(s.bad.Add(w.rbad...))
	if s.host != nil {
		s.fail(s.host.Add(w.host...))
	}
	s.takeClient(w)
}

// swap returns an emptied spare as the new queue and the queue's rows.
func swap[T any](q, spare []T) ([]T, []T) {
	clear(spare)
	return spare[:0], q
}

func (s *tableSink) takeClient(w *writeBuffers) {
	w.cl, w.bad = s.client.Take(w.cl, w.bad)
	if s.failed.Load() {
		return
	}
	defer s.writing()()
	s.fail(s.ev.Add(w.cl...))
	s.fail(s.bad.Add(w.bad...))
}

func (s *tableSink) flushAll() {
	if s.failed.Load() {
		return
	}
	defer s.writing()()
	s.fail(s.dp.Flush())
	s.fail(s.en.Flush())
	s.fail(s.st.Flush())
	s.fail(s.ev.Flush())
	s.fail(s.bad.Flush())
	if s.host != nil {
		s.fail(s.host.Flush())
	}
}

// close is called after every producer has stopped and the event server
// has been closed; it writes the last segments.
// It gives up after limit (a write that does not return: a stalled
// disk), with errStalled.
func (s *tableSink) close(limit time.Duration) error {
	close(s.quit)
	select {
	case <-s.done:
	case <-time.After(limit):
		return errStalled
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// counts is safe only after close.
func (s *tableSink) counts() (map[string]int64, map[string]int) {
	rows := map[string]int64{
		trace.TableDriverPower: s.dp.Rows(), trace.TableEnergy: s.en.Rows(), trace.TableState: s.st.Rows(),
		trace.TableEvents: s.ev.Rows(), trace.TableBadEvents: s.bad.Rows(),
	}
	segs := map[string]int{
		trace.TableDriverPower: s.dp.Segments(), trace.TableEnergy: s.en.Segments(), trace.TableState: s.st.Segments(),
		trace.TableEvents: s.ev.Segments(), trace.TableBadEvents: s.bad.Segments(),
	}
	if s.host != nil {
		rows[trace.TableHostEnergy], segs[trace.TableHostEnergy] = s.host.Rows(), s.host.Segments()
	}
	return rows, segs
}

func jsonString(key, value string) string {
	b, err := json.Marshal(map[string]string{key: value})
	if err != nil {
		return ""
	}
	return string(b)
}
