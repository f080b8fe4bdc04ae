package serving

import (
	"encoding/binary"
	"iter"
)

// requestLog holds a Set's requests in their order, packed: a day of a
// busy server has most of a million, and as Requests (112 bytes each)
// they were the largest thing `llem analyze` kept of such a run
// (docs/performance.md). Every query walks them in order, so a request
// takes about 30 bytes, every field exact:
//
//   - a head: which stamps it has, whether every event had a client
//     stamp, and which of the optional fields follow;
//   - its first stamp, as the zigzag change from the previous request's
//     (the order by first stamp makes it small);
//   - its other arrival stamps, each as the zigzag difference from its
//     first;
//   - its client stamps, each as the zigzag change of (client - arrival)
//     from the previous client stamp's (the two clocks move together);
//   - its token counts, id, the use of the id and its error.
//
// Arithmetic wraps: any int64 stamps round-trip. The bytes are kept in
// chunks, on disk beyond SpillAfter (chunked).
type requestLog struct {
	chunked
	n int
	// The encoder's state after the last request: what the next is
	// encoded against.
	first, off int64
}

// The head's bits: the stamps present (arrival, then client, in the
// order of stamps), then the rest.
const (
	hasInput = 1 << (8 + iota)
	hasOutput
	hasUse
	hasErr
	allClientBit
)

// stamps are r's eight stamps in a fixed order: arrival, then client.
func (r *Request) stamps() [8]*int64 {
	return [8]*int64{&r.StartNs, &r.FirstTokenNs, &r.LastTokenNs, &r.EndNs,
		&r.ClientStartNs, &r.ClientFirstTokenNs, &r.ClientLastTokenNs, &r.ClientEndNs}
}

// maxRequestBytes is the most a request takes: a head and 14 varints.
const maxRequestBytes = 15 * binary.MaxVarintLen64

func (l *requestLog) add(r *Request) {
	if l.n == 0 {
		l.what = "packed requests" // for the spill file's errors
	}
	k := l.room(maxRequestBytes)
	b := l.chunks[k]
	size := len(b)
	st := r.stamps()
	head := uint64(0)
	for i, p := range st {
		if *p != 0 {
			head |= 1 << i
		}
	}
	if r.InputTokens != -1 {
		head |= hasInput
	}
	if r.OutputTokens != -1 {
		head |= hasOutput
	}
	if r.use != 1 {
		head |= hasUse
	}
	if r.err != 0 {
		head |= hasErr
	}
	if r.allClient {
		head |= allClientBit
	}
	b = binary.AppendUvarint(b, head)
	first := r.first()
	b = binary.AppendUvarint(b, zigzag(first-l.first))
	l.first = first
	skip := true // the first arrival stamp present is first: not written
	for _, p := range st[:4] {
		if *p != 0 && !skip {
			b = binary.AppendUvarint(b, zigzag(*p-first))
		}
		skip = skip && *p == 0
	}
	for i, p := range st[4:] {
		if *p != 0 {
			off := *p - *st[i]
			b = binary.AppendUvarint(b, zigzag(off-l.off))
			l.off = off
		}
	}
	if head&hasInput != 0 {
		b = binary.AppendUvarint(b, zigzag(r.InputTokens))
	}
	if head&hasOutput != 0 {
		b = binary.AppendUvarint(b, zigzag(r.OutputTokens))
	}
	b = binary.AppendUvarint(b, zigzag(r.StreamedTokens))
	b = binary.AppendUvarint(b, uint64(uint32(r.id)))
	if head&hasUse != 0 {
		b = binary.AppendUvarint(b, uint64(uint32(r.use)))
	}
	if head&hasErr != 0 {
		b = binary.AppendUvarint(b, uint64(uint32(r.err)))
	}
	l.size += len(b) - size
	l.chunks[k] = b
	l.n++
}

// all yields every request with its index, in order; it stops short when
// a spilled chunk cannot be read back (Err). The Request it yields is
// reused: a caller that keeps one copies it.
func (l *requestLog) all() iter.Seq2[int, *Request] {
	return func(yield func(int, *Request) bool) {
		rd := reader{c: &l.chunked}
		var first, off int64
		var r Request
		for i := range l.n {
			buf, p := rd.buf, rd.at
			if p >= len(buf) {
				if buf, p = rd.load(); buf == nil {
					return
				}
			}
			var v uint64
			head, p := uvarint(buf, p)
			v, p = uvarint(buf, p)
			first += unzigzag(v)
			r = Request{InputTokens: -1, OutputTokens: -1, use: 1, allClient: head&allClientBit != 0}
			st := r.stamps()
			skip := true
			for k, s := range st[:4] {
				if head&(1<<k) == 0 {
					continue
				}
				if skip {
					*s, skip = first, false
					continue
				}
				v, p = uvarint(buf, p)
				*s = first + unzigzag(v)
			}
			for k, s := range st[4:] {
				if head&(1<<(4+k)) != 0 {
					v, p = uvarint(buf, p)
					off += unzigzag(v)
					*s = *st[k] + off
				}
			}
			if head&hasInput != 0 {
				v, p = uvarint(buf, p)
				r.InputTokens = unzigzag(v)
			}
			if head&hasOutput != 0 {
				v, p = uvarint(buf, p)
				r.OutputTokens = unzigzag(v)
			}
			v, p = uvarint(buf, p)
			r.StreamedTokens = unzigzag(v)
			v, p = uvarint(buf, p)
			r.id = int32(uint32(v))
			if head&hasUse != 0 {
				v, p = uvarint(buf, p)
				r.use = int32(uint32(v))
			}
			if head&hasErr != 0 {
				v, p = uvarint(buf, p)
				r.err = int32(uint32(v))
			}
			rd.at = p
			if !yield(i, &r) {
				return
			}
		}
	}
}
