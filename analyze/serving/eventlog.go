package serving

import (
	"encoding/binary"
	"fmt"
)

// EventLog holds a run's request events (request_start, first_token,
// request_end) in time order, packed as TokenLog packs tokens. A day of a
// busy server has two million of them: as Events (64 bytes) they were the
// largest thing `llem analyze` held while it built the requests of such a
// run. Here an event takes about ten bytes, every field exact:
//
//   - its stamp, as the varint difference from the previous event's;
//   - a head: its kind (2 bits), the optional fields it has (Has, 4 bits)
//     and whether it has an error (1 bit);
//   - its client stamp, when it has one, as the zigzag varint change of
//     (client - arrival) from the previous event that had one;
//   - its input tokens, output tokens and task, each a zigzag varint, when
//     it has them;
//   - its request (Req), a varint; and its error, when it has one, as a
//     varint index into the log's table of error texts (errs).
//
// A checkpoint every logBlock events lets a reader start at any stamp.
// The bytes are kept in chunks, on disk beyond SpillAfter (chunked).
type EventLog struct {
	chunked
	blocks  []checkpoint
	n       int
	ts, off int64 // the decoder's state after the last event
	// errs are the error texts of the failed requests, each once.
	errs     []string
	errIndex map[string]uint64
}

// maxEventBytes is the most an event takes (seven varints).
const maxEventBytes = 7 * binary.MaxVarintLen64

const (
	kindBits = 2 // EventKind 1 to 3
	hasBits  = 4 // Has: HasClient ... HasTask
	errorBit = 1 << (kindBits + hasBits)
)

// NewEventLog packs events, which must be in time order.
func NewEventLog(events []Event) *EventLog {
	l := &EventLog{}
	for _, e := range events {
		l.Append(e)
	}
	return l
}

// Len is the number of events.
func (l *EventLog) Len() int {
	if l == nil {
		return 0
	}
	return l.n
}

// Bytes is the memory the log holds (its buffers' capacity).
func (l *EventLog) Bytes() int {
	if l == nil {
		return 0
	}
	return cap(l.blocks)*32 + l.bytes()
}

// Append adds e, which must not be earlier than the last event appended.
// Of the optional fields only those e.Has says it has are kept (the
// others read back as 0).
func (l *EventLog) Append(e Event) {
	if l.n > 0 && e.TimestampNs < l.ts {
		panic(fmt.Sprintf("serving: request event at %d ns appended after one at %d ns", e.TimestampNs, l.ts))
	}
	if e.Kind < RequestStart || e.Kind > RequestEnd || e.Has >= 1<<hasBits {
		panic(fmt.Sprintf("serving: request event of kind %d with fields %b", e.Kind, e.Has))
	}
	if l.n == 0 {
		l.what = "packed request events" // for the spill file's errors
	}
	k := l.room(maxEventBytes)
	b := l.chunks[k]
	if l.n%logBlock == 0 {
		if l.n == 0 {
			l.ts = e.TimestampNs
		}
		l.blocks = append(l.blocks, checkpoint{ts: l.ts, off: l.off, chunk: int32(k), at: int32(len(b)), first: e.TimestampNs})
	}
	size := len(b)
	b = binary.AppendUvarint(b, uint64(e.TimestampNs-l.ts))
	head := uint64(e.Kind) | uint64(e.Has)<<kindBits
	if e.Error != "" {
		head |= errorBit
	}
	b = binary.AppendUvarint(b, head)
	if e.Has&HasClient != 0 {
		off := e.ClientTimestampNs - e.TimestampNs
		b = binary.AppendUvarint(b, zigzag(off-l.off))
		l.off = off
	}
	if e.Has&HasInput != 0 {
		b = binary.AppendUvarint(b, zigzag(e.InputTokens))
	}
	if e.Has&HasOutput != 0 {
		b = binary.AppendUvarint(b, zigzag(e.OutputTokens))
	}
	if e.Has&HasTask != 0 {
		b = binary.AppendUvarint(b, zigzag(int64(e.Task)))
	}
	b = binary.AppendUvarint(b, uint64(uint32(e.Req)))
	if e.Error != "" {
		b = binary.AppendUvarint(b, l.errorIndex(e.Error))
	}
	l.size += len(b) - size
	l.chunks[k] = b
	l.ts = e.TimestampNs
	l.n++
}

// errorIndex is the index of text in errs, added if new.
func (l *EventLog) errorIndex(text string) uint64 {
	i, ok := l.errIndex[text]
	if !ok {
		if l.errIndex == nil {
			l.errIndex = map[string]uint64{}
		}
		i = uint64(len(l.errs))
		l.errs = append(l.errs, text)
		l.errIndex[text] = i
	}
	return i
}

// last is the stamp of the last event appended (sorter).
func (l *EventLog) last() int64 { return l.ts }

// each calls f with every event, in order (sorter).
func (l *EventLog) each(f func(Event)) {
	c := l.All()
	for e, ok := c.Next(); ok; e, ok = c.Next() {
		f(e)
	}
}

// stamp is e's arrival stamp (sorter).
func (e Event) stamp() int64 { return e.TimestampNs }

// EventCursor reads an EventLog forward from a position.
type EventCursor struct {
	l       *EventLog
	r       reader // where the next event begins
	i       int    // index of the next event
	ts, off int64  // the decoder's state
	end     int64  // stamps after end are not returned
}

// All reads every event.
func (l *EventLog) All() *EventCursor { return l.Range(-1<<63, 1<<63-1) }

// Range reads the events stamped in [startNs, endNs].
func (l *EventLog) Range(startNs, endNs int64) *EventCursor {
	c := &EventCursor{l: l, end: 1<<63 - 1}
	if l.Len() > 0 {
		k := blockBefore(l.blocks, startNs)
		b := l.blocks[k]
		c.r = reader{c: &l.chunked, chunk: int(b.chunk), at: int(b.at)}
		c.i, c.ts, c.off = k*logBlock, b.ts, b.off
	}
	for c.i < l.Len() {
		save := *c
		if e, _ := c.Next(); e.TimestampNs >= startNs {
			*c = save
			break
		}
	}
	c.end = endNs
	return c
}

// Next returns the next event; false at the end of the log or of the
// cursor's range.
func (c *EventCursor) Next() (Event, bool) {
	if c.l == nil || c.i >= c.l.n {
		return Event{}, false
	}
	buf, p := c.r.buf, c.r.at
	if p >= len(buf) {
		if buf, p = c.r.load(); buf == nil {
			return Event{}, false // a spilled chunk could not be read (EventLog.Err)
		}
	}
	d, p := uvarint(buf, p)
	ts := c.ts + int64(d)
	if ts > c.end {
		return Event{}, false
	}
	head, p := uvarint(buf, p)
	e := Event{TimestampNs: ts, Kind: EventKind(head & (1<<kindBits - 1)), Has: uint8(head>>kindBits) & (1<<hasBits - 1)}
	off := c.off
	var v uint64
	if e.Has&HasClient != 0 {
		v, p = uvarint(buf, p)
		off += unzigzag(v)
		e.ClientTimestampNs = ts + off
	}
	if e.Has&HasInput != 0 {
		v, p = uvarint(buf, p)
		e.InputTokens = unzigzag(v)
	}
	if e.Has&HasOutput != 0 {
		v, p = uvarint(buf, p)
		e.OutputTokens = unzigzag(v)
	}
	if e.Has&HasTask != 0 {
		v, p = uvarint(buf, p)
		e.Task = int32(unzigzag(v))
	}
	v, p = uvarint(buf, p)
	e.Req = int32(uint32(v))
	if head&errorBit != 0 {
		v, p = uvarint(buf, p)
		e.Error = c.l.errs[v]
	}
	c.i, c.r.at, c.ts, c.off = c.i+1, p, ts, off
	return e, true
}
