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
// bytes are kept in chunks (chunked, spill.go), on disk beyond SpillAfter.
type TokenLog struct {
	chunked
	blocks []checkpoint
	n      int
	// The decoder's state after the last token: what the next is
	// encoded against.
	ts, off int64
}

// logBlock is how many tokens share a checkpoint: 40 bytes of checkpoint
// and running count (Set.cum) per 1,024 tokens is 1/25 of a byte a token
// (at 256, a day's 125 million tokens kept 19 MB of them), and a seek
// decodes at most 1,023 tokens, some microseconds.
const logBlock = 1024

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
	return cap(l.blocks)*32 + l.bytes()
}

// Append adds t, which must not be earlier than the last token appended.
func (l *TokenLog) Append(t Token) {
	if l.n > 0 && t.TimestampNs < l.ts {
		panic(fmt.Sprintf("serving: token at %d ns appended after one at %d ns", t.TimestampNs, l.ts))
	}
	if l.n == 0 {
		l.what = "packed tokens" // for the spill file's errors
	}
	k := l.room(maxTokenBytes)
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
	r       reader // where the next token begins
	i       int    // index of the next token
	ts, off int64  // the decoder's state
	end     int64  // stamps after end are not returned
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
	return blockBefore(l.blocks, t)
}

// blockBefore is the block of a log with checkpoints blocks in which its
// first record stamped at or after t lies (or the block before the first
// block starting at or after it).
func blockBefore(blocks []checkpoint, t int64) int {
	j, _ := slices.BinarySearchFunc(blocks, t, func(c checkpoint, t int64) int { return cmp.Compare(c.first, t) })
	return max(j-1, 0)
}

// at is a cursor at the first token of block k.
func (l *TokenLog) at(k int) *Cursor {
	c := &Cursor{l: l, end: 1<<63 - 1}
	if l.Len() == 0 {
		return c
	}
	b := l.blocks[k]
	c.r = reader{c: &l.chunked, chunk: int(b.chunk), at: int(b.at)}
	c.i, c.ts, c.off = k*logBlock, b.ts, b.off
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
	buf, p := c.r.buf, c.r.at
	if p >= len(buf) {
		if buf, p = c.r.load(); buf == nil {
			return Token{}, false // a spilled chunk could not be read (TokenLog.Err)
		}
	}
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
	c.i, c.r.at, c.ts, c.off = c.i+1, p, ts, off
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

// stamp is t's arrival stamp (sorter).
func (t Token) stamp() int64 { return t.TimestampNs }

// last is the stamp of the last token appended (sorter).
func (l *TokenLog) last() int64 { return l.ts }

// each calls f with every token, in order (sorter).
func (l *TokenLog) each(f func(Token)) {
	c := l.All()
	for t, ok := c.Next(); ok; t, ok = c.Next() {
		f(t)
	}
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
