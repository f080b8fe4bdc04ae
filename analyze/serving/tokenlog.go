package serving

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// TokenLog holds a run's token events in time order, packed. A serving
// run reports tens of millions of them: as 24-byte Tokens, with the
// request each belongs to beside them, they were most of the memory that
// `llem analyze` needed on a long run (docs/performance.md). Here a token
// takes about ten bytes, every field exact:
//
//   - its stamp, as the varint difference from the previous token's
//     (time order makes it small and never negative);
//   - its client stamp, as the zigzag varint change of (client - arrival)
//     from the previous token that had one: the two clocks move together,
//     so that change is the socket's jitter;
//   - its count, zigzag, shifted left by one over a bit that says whether
//     a client stamp follows; then its request, a varint.
//
// A checkpoint every logBlock tokens (the stamp and client offset the
// next token is decoded against, and where it begins) lets a reader start
// at any stamp without decoding from the beginning.
//
// Arithmetic wraps: any int64 stamps round-trip, however far apart. The
// bytes are kept in chunks that are never copied to grow: a log of
// millions of tokens would otherwise be copied over and over.
type TokenLog struct {
	chunks [][]byte
	size   int // bytes in chunks
	blocks []checkpoint
	n      int
	// The decoder's state after the last token: what the next is
	// encoded against.
	ts, off int64
	// Chunks beyond SpillAfter bytes go to sp (spill.go); held counts the
	// bytes of full chunks in memory; noSpill: spilling failed, keep all.
	sp      *spillFile
	held    int
	noSpill bool
}

// logBlock is how many tokens share a checkpoint: 40 bytes of checkpoint
// and running count (Set.cum) per 256 tokens is a sixth of a byte a
// token, and a seek decodes at most 255 tokens.
const logBlock = 256

type checkpoint struct {
	ts, off int64 // the decoder's state before the block's first token
	chunk   int32 // where that token begins: chunks[chunk][at:]
	at      int32
	first   int64 // the block's first stamp
}

// maxTokenBytes is the most a token takes (four varints); a chunk with
// less room left is closed.
const maxTokenBytes = 4 * binary.MaxVarintLen64

// chunkBytes bounds a chunk; the first ones are smaller, so that a short
// run's log is small.
const chunkBytes = 1 << 20

// Len is the number of tokens.
func (l *TokenLog) Len() int {
	if l == nil {
		return 0
	}
	return l.n
}

// Bytes is the memory the log holds (its buffers' capacity).
func (l *TokenLog) Bytes() int {
	if l == nil {
		return 0
	}
	n := cap(l.blocks) * 32
	for _, c := range l.chunks {
		n += cap(c) // 0 for a chunk spilled to disk
	}
	return n
}

// Append adds t, which must not be earlier than the last token appended.
func (l *TokenLog) Append(t Token) {
	if l.n > 0 && t.TimestampNs < l.ts {
		panic(fmt.Sprintf("serving: token at %d ns appended after one at %d ns", t.TimestampNs, l.ts))
	}
	k := len(l.chunks) - 1
	if k < 0 || cap(l.chunks[k])-len(l.chunks[k]) < maxTokenBytes {
		if k >= 0 {
			l.spill(k) // full: it may go to disk
		}
		l.chunks = append(l.chunks, make([]byte, 0, min(chunkBytes, max(4096, l.size))))
		k++
	}
	b := l.chunks[k]
	if l.n%logBlock == 0 {
		if l.n == 0 {
			l.ts = t.TimestampNs
		}
		l.blocks = append(l.blocks, checkpoint{ts: l.ts, off: l.off, chunk: int32(k), at: int32(len(b)), first: t.TimestampNs})
	}
	size := len(b)
	b = binary.AppendUvarint(b, uint64(t.TimestampNs-l.ts))
	head := zigzag(int64(t.Count)) << 1 // Count is an int32: no bit is lost
	if t.ClientTimestampNs != 0 {
		head |= 1
	}
	b = binary.AppendUvarint(b, head)
	if t.ClientTimestampNs != 0 {
		off := t.ClientTimestampNs - t.TimestampNs
		b = binary.AppendUvarint(b, zigzag(off-l.off))
		l.off = off
	}
	b = binary.AppendUvarint(b, uint64(uint32(t.Req)))
	l.size += len(b) - size
	l.chunks[k] = b
	l.ts = t.TimestampNs
	l.n++
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// Cursor reads a TokenLog forward from a position.
type Cursor struct {
	l       *TokenLog
	i       int   // index of the next token
	chunk   int   // where it begins: l.chunks[chunk][at:], or the next
	at      int   // chunk's start when that is past its end
	ts, off int64 // the decoder's state
	end     int64 // stamps after end are not returned
	buf     []byte
	bufK    int // buf is chunk bufK (-1: none yet)
}

// All reads every token.
func (l *TokenLog) All() *Cursor { return l.Range(-1<<63, 1<<63-1) }

// Range reads the tokens stamped in [startNs, endNs].
func (l *TokenLog) Range(startNs, endNs int64) *Cursor {
	c := l.at(l.blockBefore(startNs))
	for c.i < l.Len() {
		save := *c
		if t, _ := c.Next(); t.TimestampNs >= startNs {
			*c = save
			break
		}
	}
	c.end = endNs
	return c
}

// blockBefore is the block in which the first token stamped at or after
// t lies (or the block before the first block starting at or after it).
func (l *TokenLog) blockBefore(t int64) int {
	if l.Len() == 0 {
		return 0
	}
	j, _ := slices.BinarySearchFunc(l.blocks, t, func(c checkpoint, t int64) int { return cmp.Compare(c.first, t) })
	return max(j-1, 0)
}

// at is a cursor at the first token of block k.
func (l *TokenLog) at(k int) *Cursor {
	c := &Cursor{l: l, end: 1<<63 - 1, bufK: -1}
	if l.Len() == 0 {
		return c
	}
	b := l.blocks[k]
	c.i, c.chunk, c.at, c.ts, c.off = k*logBlock, int(b.chunk), int(b.at), b.ts, b.off
	return c
}

// Index is the index in the log of the token Next returns next.
func (c *Cursor) Index() int { return c.i }

// Next returns the next token; false at the end of the log or of the
// cursor's range.
func (c *Cursor) Next() (Token, bool) {
	if c.i >= c.l.Len() {
		return Token{}, false
	}
	chunk, p := c.chunk, c.at
	buf := c.buf
	if c.bufK != chunk {
		buf = c.l.chunk(chunk)
	}
	if buf != nil && p >= len(buf) {
		chunk, p = chunk+1, 0
		buf = c.l.chunk(chunk)
	}
	if buf == nil {
		return Token{}, false // a spilled chunk could not be read (TokenLog.Err)
	}
	c.buf, c.bufK = buf, chunk
	d, p := uvarint(buf, p)
	ts := c.ts + int64(d)
	if ts > c.end {
		return Token{}, false
	}
	head, p := uvarint(buf, p)
	t := Token{TimestampNs: ts, Count: int32(unzigzag(head >> 1))}
	off := c.off
	if head&1 == 1 {
		var z uint64
		z, p = uvarint(buf, p)
		off += unzigzag(z)
		t.ClientTimestampNs = ts + off
	}
	req, p := uvarint(buf, p)
	t.Req = int32(uint32(req))
	c.i, c.chunk, c.at, c.ts, c.off = c.i+1, chunk, p, ts, off
	return t, true
}

// uvarint decodes the varint at buf[p:] and gives the position after it,
// unrolled for the one to three bytes that nearly every field takes (a
// stamp's step of up to 2 ms is three).
func uvarint(buf []byte, p int) (uint64, int) {
	if p+3 <= len(buf) {
		b0 := buf[p]
		if b0 < 0x80 {
			return uint64(b0), p + 1
		}
		b1 := buf[p+1]
		if b1 < 0x80 {
			return uint64(b0&0x7f) | uint64(b1)<<7, p + 2
		}
		if b2 := buf[p+2]; b2 < 0x80 {
			return uint64(b0&0x7f) | uint64(b1&0x7f)<<7 | uint64(b2)<<14, p + 3
		}
	}
	v, n := binary.Uvarint(buf[p:])
	return v, p + n
}

// NewTokenLog packs tokens, which must be in time order.
func NewTokenLog(tokens []Token) *TokenLog {
	l := &TokenLog{}
	for _, t := range tokens {
		l.Append(t)
	}
	return l
}

// Sorter packs token events that arrive in about time order (a recorder
// stamps them on arrival from several connections; a table may hold them
// in any order) into a TokenLog in the order a stable sort by stamp gives:
// equal stamps keep their order of arrival. The last sorterTail tokens
// wait in a sorted tail, where a late one is inserted; one later than
// everything in the tail, earlier than what has been packed already,
// turns the sorter into a plain slice, stable-sorted at the end (the
// memory of unpacked tokens, for a trace whose order is far off).
type Sorter struct {
	log  TokenLog
	tail []Token // sorted by stamp, stably
	all  []Token // non-nil once the order was too far off for the tail
	// moved counts the tokens late ones were inserted before, added the
	// tokens added: a table in some other order (by request, say) would
	// insert every token deep in the tail, copying it again and again.
	moved, added int
}

// sorterTail bounds the tail: 64K tokens (1.5 MB) are a minute of a
// thousand tokens a second.
const sorterTail = 1 << 16

// Add takes the next token in order of arrival.
func (s *Sorter) Add(t Token) {
	if s.all != nil {
		s.all = append(s.all, t)
		return
	}
	s.added++
	n := len(s.tail)
	if n == 0 || t.TimestampNs >= s.tail[n-1].TimestampNs {
		s.tail = append(s.tail, t)
	} else {
		// After every token of the tail with a stamp at or before t's.
		k, _ := slices.BinarySearchFunc(s.tail, t.TimestampNs+1, func(a Token, ts int64) int { return cmp.Compare(a.TimestampNs, ts) })
		s.moved += n - k
		if k == 0 && s.log.Len() > 0 && t.TimestampNs < s.log.ts || s.moved > 64*s.added+sorterTail {
			s.unpack()
			s.all = append(s.all, t)
			return
		}
		s.tail = slices.Insert(s.tail, k, t)
	}
	if len(s.tail) >= 2*sorterTail {
		for _, x := range s.tail[:sorterTail] {
			s.log.Append(x)
		}
		s.tail = append(s.tail[:0], s.tail[sorterTail:]...)
	}
}

// unpack turns the packed tokens and the tail back into one slice.
func (s *Sorter) unpack() {
	s.all = make([]Token, 0, s.log.Len()+len(s.tail)+sorterTail)
	c := s.log.All()
	for t, ok := c.Next(); ok; t, ok = c.Next() {
		s.all = append(s.all, t)
	}
	s.all = append(s.all, s.tail...)
	s.log, s.tail = TokenLog{}, nil
}

// Log is every token added, in order. The Sorter is not used after it.
func (s *Sorter) Log() *TokenLog {
	if s.all != nil {
		slices.SortStableFunc(s.all, func(a, b Token) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
		return NewTokenLog(s.all)
	}
	for _, t := range s.tail {
		s.log.Append(t)
	}
	s.tail = nil
	l := s.log
	return &l
}

// MergeLogs puts the tokens of several logs into one, in time order, in
// the order a stable sort of the logs' tokens one log after the other
// gives (at equal stamps, the earlier log's first), with each token's
// request renumbered by req(the log's index, its request).
func MergeLogs(logs []*TokenLog, req func(log int, req int32) int32) *TokenLog {
	out := &TokenLog{}
	cur := make([]*Cursor, len(logs))
	head := make([]Token, len(logs))
	more := make([]bool, len(logs))
	for i, l := range logs {
		cur[i] = l.All()
		head[i], more[i] = cur[i].Next()
	}
	for {
		k := -1
		for i := range logs {
			if more[i] && (k < 0 || head[i].TimestampNs < head[k].TimestampNs) {
				k = i
			}
		}
		if k < 0 {
			return out
		}
		t := head[k]
		t.Req = req(k, t.Req)
		out.Append(t)
		head[k], more[k] = cur[k].Next()
	}
}
