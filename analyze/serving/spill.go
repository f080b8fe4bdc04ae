package serving

import "github.com/llem/llem/internal/spill"

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

// spillFile holds a log's spilled chunks: where each is in the file.
type spillFile struct {
	f    *spill.File
	offs []int64 // chunk k's offset in f (for the chunks spilled)
	lens []int32 // and its length
}

func newSpillFile(what string) *spillFile { return &spillFile{f: spill.New(what)} }

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

// read reads spilled chunk k into into's memory (made larger if it is too
// small) and returns it; nil if it could not be read (Err says why).
func (sp *spillFile) read(k int, into []byte) []byte {
	n := int(sp.lens[k])
	if cap(into) < n {
		into = make([]byte, n)
	}
	if !sp.f.ReadAt(into[:n], sp.offs[k]) {
		return nil
	}
	return into[:n]
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

// chunkLen is the length of chunk k, in memory or spilled.
func (c *chunked) chunkLen(k int) int {
	if b := c.chunks[k]; b != nil {
		return len(b)
	}
	return int(c.sp.lens[k])
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
//
// A spilled chunk is read back into the reader's own buffer (own), the
// same memory for every chunk: reading each into new memory made a day's
// passes over its tokens fault in and zero a gigabyte each
// (docs/performance.md, tenth round). A copy of a reader (Cursor.Range
// looks one record ahead and goes back to the copy) shares that buffer;
// it stays right because a reader loads only at the end of its buffer,
// where the copy is too, so the copy's next record loads the chunk again.
type reader struct {
	c         *chunked
	chunk, at int
	buf       []byte
	own       []byte
}

// load is where the next record begins when at is not within buf (a
// chunk's end, or its bytes not read yet): the bytes and the position;
// nil bytes when a spilled chunk could not be read (Err). A reader's
// caller reads buf[at:] itself while at < len(buf), which is nearly
// every record.
func (r *reader) load() ([]byte, int) {
	if r.buf != nil { // at the end of chunk
		r.chunk, r.at = r.chunk+1, 0
	} else if r.at >= r.c.chunkLen(r.chunk) { // a checkpoint at a chunk's end
		r.chunk, r.at = r.chunk+1, 0
	}
	if r.buf = r.c.chunks[r.chunk]; r.buf == nil {
		r.buf = r.c.sp.read(r.chunk, r.own)
		if r.buf != nil {
			r.own = r.buf
		}
	}
	return r.buf, r.at
}
