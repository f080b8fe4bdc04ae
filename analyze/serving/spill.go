package serving

import (
	"sync"

	"github.com/llem/llem/internal/spill"
)

// SpillAfter is how many bytes of packed tokens a TokenLog holds in memory
// before it writes each further full chunk to a temporary file of its own
// (in os.TempDir: $TMPDIR) and drops it. A day of a busy 8-GPU server is
// ~100 million token events, a gigabyte packed: kept, it was the largest
// part of what `llem analyze` needed, growing with the length of the run.
// Spilled, the memory stays at SpillAfter and a few chunks being read,
// while every pass over the tokens reads them back in order (from the page
// cache, at memory speed). Runs whose tokens fit never touch the disk.
// Where no temporary file can be made or written, the log keeps its
// chunks in memory as before.
var SpillAfter = 16 << 20

// spillCache is how many read-back chunks a log keeps for the passes and
// seeks reading it at once (each up to chunkBytes).
const spillCache = 8

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

func newSpillFile() *spillFile {
	sp := &spillFile{f: spill.New("packed tokens")}
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

// Err reports a failure to read back the log's spilled tokens: the passes
// over them stopped short, and whatever was computed from them is
// incomplete.
func (l *TokenLog) Err() error {
	if l == nil || l.sp == nil {
		return nil
	}
	return l.sp.f.Err()
}

// chunk returns chunk k's bytes, read back if it was spilled; nil if it
// could not be.
func (l *TokenLog) chunk(k int) []byte {
	if b := l.chunks[k]; b != nil {
		return b
	}
	return l.sp.read(k)
}

// spill writes the full chunk k to the spill file and drops it from
// memory, once the log holds more than SpillAfter bytes.
func (l *TokenLog) spill(k int) {
	l.held += cap(l.chunks[k])
	if l.held <= SpillAfter || l.noSpill {
		return
	}
	if l.sp == nil {
		l.sp = newSpillFile()
	}
	if !l.sp.write(k, l.chunks[k]) {
		l.noSpill = true
		return
	}
	l.held -= cap(l.chunks[k])
	l.chunks[k] = nil
}
