package analyze

import (
	"sync"

	"github.com/llem/llem/internal/spill"
)

// SamplesInMemory is how many bytes of packed GPU samples a run keeps in
// memory before it writes each further block to a temporary file of its
// own (in os.TempDir: $TMPDIR). A day of 8 GPUs packs to ~370 MB: kept,
// it was the largest part of what `llem analyze` needed, growing with the
// length of the run. Spilled, every window reads its blocks back (from the
// page cache, at memory speed), a field's consecutive blocks in one read.
// Runs that fit never touch the disk; where no temporary file can be made
// or written, the blocks stay in memory as before. 8 MB rather than 24:
// the 4 h synthetic run's peak 40 MB less, its time within 2%
// (docs/performance.md, sixth round).
var SamplesInMemory = 8 << 20

// stageBytes is how much of one field's blocks are gathered before they
// are written together: consecutive blocks of a field lie together in the
// file, so a pass over a window reads them in few calls.
const stageBytes = 64 << 10

// sampleStore is where a run's sample blocks beyond SamplesInMemory go.
type sampleStore struct {
	file *spill.File

	mu   sync.Mutex
	held int // bytes of block data kept in memory
}

func newSampleStore() *sampleStore { return &sampleStore{file: spill.New("packed GPU samples")} }

// keep says whether n more bytes of blocks stay in memory, and counts
// them if so.
func (st *sampleStore) keep(n int) bool {
	if st == nil {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.held+n <= SamplesInMemory {
		st.held += n
		return true
	}
	return false
}

func (st *sampleStore) failed() error {
	if st == nil {
		return nil
	}
	return st.file.Err()
}

// stage takes a closed block's bytes that did not stay in memory: they
// are gathered with the field's next ones and written when stageBytes are
// (or at seal).
func (s *Samples) stage(k int, d []byte) {
	s.staged = append(s.staged, d...)
	s.stagedBlocks = append(s.stagedBlocks, k)
	if len(s.staged) >= stageBytes {
		s.flushStage()
	}
}

// flushStage writes the gathered blocks; where that fails they are kept
// in memory.
func (s *Samples) flushStage() {
	if len(s.stagedBlocks) == 0 {
		return
	}
	off, ok := s.store.file.Append(s.staged)
	pos := 0
	for _, k := range s.stagedBlocks {
		b := &s.blocks[k]
		if ok {
			b.off = off + int64(pos)
		} else {
			b.data = append([]byte(nil), s.staged[pos:pos+int(b.size)]...)
		}
		pos += int(b.size)
	}
	s.staged, s.stagedBlocks = s.staged[:0], s.stagedBlocks[:0]
}

// readBuf holds blocks read back together: b is the file from off.
type readBuf struct {
	off int64
	b   []byte
}

// holds reports whether rb holds block b.
func (rb *readBuf) holds(b *sampleBlock) bool {
	return len(rb.b) > 0 && b.off >= rb.off && b.off+int64(b.size) <= rb.off+int64(len(rb.b))
}

// bytes returns block k's encoded samples: its own, else read back from
// the store into rb, with the field's blocks of lo..hi next to it in the
// file (up to stageBytes in all): the ones a pass reads next. nil if they
// could not be read.
func (s *Samples) bytes(k, lo, hi int, rb *readBuf) []byte {
	b := &s.blocks[k]
	if b.data != nil || b.size == 0 {
		return b.data
	}
	if !rb.holds(b) {
		spilled := func(n int) bool { return s.blocks[n].data == nil && s.blocks[n].size > 0 }
		from, end := b.off, b.off+int64(b.size)
		for n := k + 1; n <= hi && n < len(s.blocks) && spilled(n) && s.blocks[n].off == end &&
			end-from+int64(s.blocks[n].size) <= stageBytes; n++ {
			end += int64(s.blocks[n].size)
		}
		for n := k - 1; n >= lo && n >= 0 && spilled(n) && s.blocks[n].off+int64(s.blocks[n].size) == from &&
			end-from+int64(s.blocks[n].size) <= stageBytes; n-- {
			from = s.blocks[n].off
		}
		if int64(cap(rb.b)) < end-from {
			rb.b = make([]byte, 0, max(end-from, 4096))
		}
		rb.off, rb.b = from, rb.b[:end-from]
		if !s.store.file.ReadAt(rb.b, from) {
			rb.b = rb.b[:0]
			return nil
		}
	}
	at := b.off - rb.off
	return rb.b[at : at+int64(b.size)]
}

// Err reports a failure to read back the run's spilled GPU samples or
// tokens: what was computed from them is incomplete.
func (d *Data) Err() error {
	for _, g := range d.GPUs {
		for _, f := range g.fields() {
			if err := f.s.store.failed(); err != nil {
				return err
			}
		}
		if err := g.Reasons.store.failed(); err != nil {
			return err
		}
	}
	if err := d.RequestEvents.Err(); err != nil {
		return err
	}
	return d.Tokens.Err()
}
