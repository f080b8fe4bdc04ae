package serving

import (
	"sync"

	"github.com/llem/llem/internal/spill"
)

// SpillAfter is how many bytes of packed tokens a TokenLog (and of packed
// request events an EventLog) holds in memory before it writes each
// further full chunk to a temporary file of its own (in os.TempDir:
// $TMPDIR) and drops it. A day of a busy 8-GPU server is ~100 million
// token events, a gigabyte packed: kept, it was the largest part of what
// `llem analyze` needed, growing with the length of the run. Spilled, the
// memory stays at SpillAfter and a few chunks being read, while every
// pass over the tokens reads them back in order (from the page cache, at
// memory speed). Runs whose tokens fit never touch the disk. Where no
// temporary file can be made or written, the log keeps its chunks in
// memory as before. 4 MB rather than 16: a day's analysis held 24 MB less
// for the same time (docs/performance.md, sixth round).
var SpillAfter = 4 << 20

// spillCache is how many read-back chunks a log keeps for the passes and
// seeks reading it at once (each up to chunkBytes).
const spillCache = 3

// spillFile holds a log's spilled chunks: where each is in the file, and
// the last ones read back.
type spillFile struct {
	f    *spill.File
	offs []int64 // chunk k's offset in f (for the chunks spilled)
	lens []int32 // and its length

	mu    sync.Mutex
	cache [spillCache]struct {
		k int
		b []byte
	}
	next int // the cache slot to replace next
}

func newSpillFile(what string) *spillFile {
	sp := &spillFile{f: spill.New(what)}
	for i := range sp.cache {
		sp.cache[i].k = -1
	}
	return sp
}

// write appends chunk k's bytes; false if they could not be written (the
// chunk then stays in memory).
func (sp *spillFile) write(k int, b []byte) bool {
	off, ok := sp.f.Append(b)
	if !ok {
		return false
	}
	for len(sp.offs) <= k {
		sp.offs, sp.lens = append(sp.offs, -1), append(sp.lens, 0)
	}
	sp.offs[k], sp.lens[k] = off, int32(len(b))
	return true
}

// read returns spilled chunk k, from the cache or the file; nil if it
// could not be read (Err says why). Readers may hold what it returns for
// as long as they like: a chunk replaced in the cache is left to the
// collector, never reused.
func (sp *spillFile) read(k int) []byte {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, c := range sp.cache {
		if c.k == k && c.b != nil {
			return c.b
		}
	}
	b := make([]byte, sp.lens[k])
	if !sp.f.ReadAt(b, sp.offs[k]) {
		return nil
	}
	sp.cache[sp.next].k, sp.cache[sp.next].b = k, b
	sp.next = (sp.next + 1) % spillCache
	return b
}

// chunked is a packed log's bytes (TokenLog's, EventLog's): in chunks that
// are never copied to grow (a log of millions of records would otherwise
// be copied over and over), the full ones beyond SpillAfter bytes written
// to a temporary file (sp) and dropped; held counts the bytes of full
// chunks in memory; noSpill: spilling failed, keep all.
type chunked struct {
	what    string // what the bytes are, for errors
	chunks  [][]byte
	size    int // bytes in chunks
	sp      *spillFile
	held    int
	noSpill bool
}

// room is the index of a chunk with at least n bytes free: the last one,
// or a new one (the full one before it may then go to disk).
func (c *chunked) room(n int) int {
	k := len(c.chunks) - 1
	if k < 0 || cap(c.chunks[k])-len(c.chunks[k]) < n {
		if k >= 0 {
			c.spill(k)
		}
		// The first chunks are small, so that a short run's log is.
		c.chunks = append(c.chunks, make([]byte, 0, min(chunkBytes, max(4096, c.size))))
		k++
	}
	return k
}

// err is the failure to read back a spilled chunk, if one failed.
func (c *chunked) err() error {
	if c.sp == nil {
		return nil
	}
	return c.sp.f.Err()
}

// Err reports a failure to read back the log's spilled tokens: the passes
// over them stopped short, and whatever was computed from them is
// incomplete.
func (l *TokenLog) Err() error {
	if l == nil {
		return nil
	}
	return l.err()
}

// Err reports a failure to read back the log's spilled events, as
// TokenLog.Err.
func (l *EventLog) Err() error {
	if l == nil {
		return nil
	}
	return l.err()
}

// chunk returns chunk k's bytes, read back if it was spilled; nil if it
// could not be.
func (c *chunked) chunk(k int) []byte {
	if b := c.chunks[k]; b != nil {
		return b
	}
	return c.sp.read(k)
}

// spill writes the full chunk k to the spill file and drops it from
// memory, once the log holds more than SpillAfter bytes.
func (c *chunked) spill(k int) {
	c.held += cap(c.chunks[k])
	if c.held <= SpillAfter || c.noSpill {
		return
	}
	if c.sp == nil {
		c.sp = newSpillFile(c.what)
	}
	if !c.sp.write(k, c.chunks[k]) {
		c.noSpill = true
		return
	}
	c.held -= cap(c.chunks[k])
	c.chunks[k] = nil
}

// bytes is the memory the chunks hold (their capacity; 0 for one on disk).
func (c *chunked) bytes() int {
	n := 0
	for _, b := range c.chunks {
		n += cap(b)
	}
	return n
}

// reader reads a chunked log forward: the next record begins at
// chunks[chunk][at:], or at the next chunk's start when at is past the
// end of chunk. buf is chunk's bytes once read (nil before).
type reader struct {
	c         *chunked
	chunk, at int
	buf       []byte
}

// load is where the next record begins when at is not within buf (a
// chunk's end, or its bytes not read yet): the bytes and the position;
// nil bytes when a spilled chunk could not be read (Err). A reader's
// caller reads buf[at:] itself while at < len(buf), which is nearly
// every record.
func (r *reader) load() ([]byte, int) {
	if r.buf != nil { // at the end of chunk
		r.chunk, r.at = r.chunk+1, 0
	}
	r.buf = r.c.chunk(r.chunk)
	if r.buf != nil && r.at >= len(r.buf) { // a checkpoint at a chunk's end
		r.chunk, r.at = r.chunk+1, 0
		r.buf = r.c.chunk(r.chunk)
	}
	return r.buf, r.at
}
