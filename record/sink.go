package record

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/llem/llem/trace"
)

// tableSink owns the table writers. Sampling loops hand rows over through
// channels; one goroutine appends them and writes a segment of every table
// each rotation interval, so no sampling loop ever waits on the disk and a
// killed recorder loses at most one interval of samples.
type tableSink struct {
	driverPowerC chan []trace.DriverPowerSample
	energyC      chan trace.EnergyRead
	stateC       chan trace.DeviceState
	eventC       chan trace.Event
	relayC       chan []trace.Event // other tasks' events in a job (NodeTasks)
	relayBadC    chan []trace.BadEvent
	done         chan struct{}
	quit         chan struct{}

	dp  *trace.TableWriter[trace.DriverPowerSample]
	en  *trace.TableWriter[trace.EnergyRead]
	st  *trace.TableWriter[trace.DeviceState]
	ev  *trace.TableWriter[trace.Event]
	bad *trace.TableWriter[trace.BadEvent]

	clientEvents <-chan trace.Event
	badEvents    <-chan trace.BadEvent
	attached     chan struct{}

	mu  sync.Mutex
	err error
}

func newTableSink(dir, runID string, rotate time.Duration) (*tableSink, error) {
	s := &tableSink{
		driverPowerC: make(chan []trace.DriverPowerSample, 256),
		energyC:      make(chan trace.EnergyRead, 256),
		stateC:       make(chan trace.DeviceState, 1024),
		eventC:       make(chan trace.Event, 1024),
		relayC:       make(chan []trace.Event, 64),
		relayBadC:    make(chan []trace.BadEvent, 64),
		done:         make(chan struct{}),
		quit:         make(chan struct{}),
		attached:     make(chan struct{}),
	}
	var err error
	if s.dp, err = trace.NewTableWriter(dir, trace.TableDriverPower, runID, trace.CompareDriverPower); err != nil {
		return nil, err
	}
	if s.en, err = trace.NewTableWriter(dir, trace.TableEnergy, runID, trace.CompareEnergy); err != nil {
		return nil, err
	}
	if s.st, err = trace.NewTableWriter(dir, trace.TableState, runID, trace.CompareState); err != nil {
		return nil, err
	}
	if s.ev, err = trace.NewTableWriter(dir, trace.TableEvents, runID, trace.CompareEvent); err != nil {
		return nil, err
	}
	if s.bad, err = trace.NewTableWriter[trace.BadEvent](dir, trace.TableBadEvents, runID, nil); err != nil {
		return nil, err
	}
	go s.loop(rotate)
	return s, nil
}

// attachEvents connects the event server's channels; they are drained
// until the server closes them.
func (s *tableSink) attachEvents(events <-chan trace.Event, bad <-chan trace.BadEvent) {
	s.clientEvents, s.badEvents = events, bad
	close(s.attached)
}

func (s *tableSink) driverPower(rows []trace.DriverPowerSample) { s.driverPowerC <- rows }
func (s *tableSink) energy(row trace.EnergyRead)                { s.energyC <- row }
func (s *tableSink) state(row trace.DeviceState)                { s.stateC <- row }
func (s *tableSink) events(row trace.Event)                     { s.eventC <- row }
func (s *tableSink) relayed(rows []trace.Event)                 { s.relayC <- rows }
func (s *tableSink) relayedBad(rows []trace.BadEvent)           { s.relayBadC <- rows }

func (s *tableSink) fail(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *tableSink) flushAll() {
	s.fail(s.dp.Flush())
	s.fail(s.en.Flush())
	s.fail(s.st.Flush())
	s.fail(s.ev.Flush())
	s.fail(s.bad.Flush())
}

func (s *tableSink) loop(rotate time.Duration) {
	defer close(s.done)
	<-s.attached
	tick := time.NewTicker(rotate)
	defer tick.Stop()
	// Client events are collected in batches every drainEvery rather than
	// one by one: waking this goroutine for each of ~1,000 events/s (token
	// events) cost more CPU than everything else the recorder does. The
	// server's channel buffers what arrives in between.
	drain := time.NewTicker(drainEvery)
	defer drain.Stop()
	client, bad := s.clientEvents, s.badEvents
	for {
		select {
		case rows := <-s.driverPowerC:
			s.fail(s.dp.Add(rows...))
		case row := <-s.energyC:
			s.fail(s.en.Add(row))
		case row := <-s.stateC:
			s.fail(s.st.Add(row))
		case row := <-s.eventC:
			s.fail(s.ev.Add(row))
		case rows := <-s.relayC:
			s.fail(s.ev.Add(rows...))
		case rows := <-s.relayBadC:
			s.fail(s.bad.Add(rows...))
		case <-drain.C:
			client, bad = s.drainClient(client, bad)
		case <-tick.C:
			s.flushAll()
		case <-s.quit:
			// The producers have stopped and the server has closed its
			// channels: take everything still queued.
			for client != nil || bad != nil {
				client, bad = s.drainClient(client, bad)
				if client != nil || bad != nil {
					time.Sleep(time.Millisecond)
				}
			}
			s.drainQueued()
			s.flushAll()
			return
		}
	}
}

// drainEvery is how often queued client events are collected.
const drainEvery = 100 * time.Millisecond

// drainClient takes every client event and bad line queued now, without
// blocking. It returns nil for a channel that has been closed.
func (s *tableSink) drainClient(client <-chan trace.Event, bad <-chan trace.BadEvent) (<-chan trace.Event, <-chan trace.BadEvent) {
	if !drainNow(client, func(row trace.Event) { s.fail(s.ev.Add(row)) }) {
		client = nil
	}
	if !drainNow(bad, func(row trace.BadEvent) { s.fail(s.bad.Add(row)) }) {
		bad = nil
	}
	return client, bad
}

// drainNow passes every value queued in ch to add and reports whether ch
// is still open. A nil channel is left as it is.
func drainNow[T any](ch <-chan T, add func(T)) (open bool) {
	if ch == nil {
		return false
	}
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return false
			}
			add(v)
		default:
			return true
		}
	}
}

func (s *tableSink) drainQueued() {
	for {
		select {
		case rows := <-s.driverPowerC:
			s.fail(s.dp.Add(rows...))
		case row := <-s.energyC:
			s.fail(s.en.Add(row))
		case row := <-s.stateC:
			s.fail(s.st.Add(row))
		case row := <-s.eventC:
			s.fail(s.ev.Add(row))
		case rows := <-s.relayC:
			s.fail(s.ev.Add(rows...))
		case rows := <-s.relayBadC:
			s.fail(s.bad.Add(rows...))
		default:
			return
		}
	}
}

// close is called after every producer has stopped and the event server
// has closed its channels; it writes the last segments.
func (s *tableSink) close() error {
	close(s.quit)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
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
	return rows, segs
}

func jsonString(key, value string) string {
	b, err := json.Marshal(map[string]string{key: value})
	if err != nil {
		return ""
	}
	return string(b)
}
