package analyze

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
)

// Samples is one field of one GPU over a whole run. The analysis asks for
// windows of it (Slice, Around, Values, Seq) and for integrals, bins and
// maxima over them, never for the whole as one slice, so that a long run's
// samples can be packed: a few bytes each however long the run is, rather
// than 16 (a stamp and a float64). A day of 8 GPUs' 50 Hz driver samples
// is 35 million.
//
// The trace stores every field as an integer (mW, C, MHz, %, uJ): a
// packed sample is kept as that integer (raw) and read as
// float64(raw)/scale, the very operation a plain load does, so every
// value, and every result computed from it, is the same. In blocks of
// blockLen samples, each sample after a block's first is the change of
// its stamp's step from the step before (regular sampling makes it small)
// and the change of its raw value, at the fewest bytes that hold the
// block's (closeBlock); beyond SamplesInMemory a run's blocks go to a
// temporary file (samplestore.go).
//
// A short run's fields are held plain (PackSamplesAbove), as is a Series
// wrapped by SamplesOf (tests, data made in code: its values need not be
// integers).
type Samples struct {
	n      int
	scale  float64 // value = float64(raw) / scale
	blocks []sampleBlock
	plain  *Series // when made by SamplesOf
	// store takes the blocks beyond what the run keeps in memory (nil:
	// all are kept); staged are the bytes of stagedBlocks, not yet
	// written to it.
	store        *sampleStore
	staged       []byte
	stagedBlocks []int

	// recent are the last blocks decoded for small windows, shared by
	// the goroutines reading the samples (made at seal).
	recent *recentBlocks

	// The block being filled while loading (seal closes it).
	open             *openBlock
	prevT            int64
	unsorted, sealed bool
}

// openBlock is the samples of the block being filled, as read.
type openBlock struct {
	n      int
	t, raw [blockLen]int64
	buf    []byte
}

// sampleBlock is up to blockLen consecutive samples.
type sampleBlock struct {
	start             int   // index of its first sample in the whole
	n                 int32 // samples
	first, last       int64 // stamps of its first and last sample
	firstRaw, lastRaw int64
	unit              int64 // stamps step by multiples of it (1000 when all are whole microseconds)
	wStep, wRaw       uint8 // bytes of each change of step, of raw value
	maxStep           int64 // the longest step between two of its samples
	// data are the changes of step, then of raw value, after the first
	// sample: size bytes, here or (data nil) at off in the run's store.
	data []byte
	size int32
	off  int64
}

// blockLen bounds what a window lookup decodes beyond the window: a
// block is about 20 s of driver samples. Each block has a ~110-byte
// header in memory: at 256 samples a block, a day's headers of 8 GPUs
// were 35 MB of its peak; at 1024 the day's peak RSS was 35 MB lower
// (450-458 against 486-497 MB) at no cost in time the dev VM could tell.
const blockLen = 1024

// newSamples is an empty Samples whose raw values are divided by scale.
func newSamples(scale float64) Samples { return Samples{scale: scale} }

// SamplesOf holds s as given (its values need not be integers).
func SamplesOf(s Series) Samples {
	return Samples{n: s.Len(), plain: &s, sealed: true}
}

// plainSamples is an empty Samples that loads as a plain Series (values
// float64(raw)/scale), made room for n samples: a short run's fields,
// read faster so (PackSamplesAbove).
func plainSamples(scale float64, n int) Samples {
	return Samples{scale: scale, plain: &Series{T: make([]int64, 0, n), V: make([]float64, 0, n)}}
}

// appendRaw adds a sample; stamps may come out of order (seal sorts them).
func (s *Samples) appendRaw(t, raw int64) {
	if s.n > 0 && t < s.prevT {
		s.unsorted = true
	}
	if s.plain != nil {
		s.plain.add(t, float64(raw)/s.scale)
		s.prevT = t
		s.n++
		return
	}
	if s.open == nil {
		s.open = &openBlock{}
	}
	o := s.open
	if o.n == blockLen {
		s.closeBlock()
	}
	o.t[o.n], o.raw[o.n] = t, raw
	o.n++
	s.prevT = t
	s.n++
}

// closeBlock encodes the open block. After its first sample, each
// sample is the change of its step (from the sample before) from the step
// before, in the block's stamp unit, and the change of its raw value;
// each kind is stored at the fewest bytes (0, 1, 2, 4 or 8) that hold
// every change of the block: regular stamps and steady values take one
// or two, a constant field none, and they are read back in tight loops.
func (s *Samples) closeBlock() {
	o := s.open
	if o == nil || o.n == 0 {
		return
	}
	t, raw := o.t[:o.n], o.raw[:o.n]
	unit := int64(1000)
	for _, x := range t {
		if (x-t[0])%unit != 0 {
			unit = 1
			break
		}
	}
	var steps, changes [blockLen]int64
	prevStep, maxStep := int64(0), int64(0)
	for k := 1; k < len(t); k++ {
		step := (t[k] - t[k-1]) / unit
		steps[k-1], changes[k-1] = step-prevStep, raw[k]-raw[k-1]
		prevStep, maxStep = step, max(maxStep, t[k]-t[k-1])
	}
	m := len(t) - 1
	wStep, wRaw := width(steps[:m]), width(changes[:m])
	d := o.buf[:0]
	d = pack(d, steps[:m], wStep)
	d = pack(d, changes[:m], wRaw)
	s.blocks = append(s.blocks, sampleBlock{start: s.n - o.n, n: int32(o.n), first: t[0], last: t[len(t)-1],
		firstRaw: raw[0], lastRaw: raw[len(raw)-1], unit: unit, wStep: wStep, wRaw: wRaw, maxStep: maxStep, size: int32(len(d))})
	if s.store.keep(len(d)) {
		s.blocks[len(s.blocks)-1].data = slices.Clone(d)
	} else {
		s.stage(len(s.blocks)-1, d)
	}
	o.buf, o.n = d, 0
}

// width is the fewest bytes, of 0, 1, 2, 4 and 8, that hold every x as
// a signed integer.
func width(x []int64) uint8 {
	var lo, hi int64
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	switch {
	case lo == 0 && hi == 0:
		return 0
	case lo >= math.MinInt8 && hi <= math.MaxInt8:
		return 1
	case lo >= math.MinInt16 && hi <= math.MaxInt16:
		return 2
	case lo >= math.MinInt32 && hi <= math.MaxInt32:
		return 4
	}
	return 8
}

// pack appends each x as w little-endian bytes.
func pack(d []byte, x []int64, w uint8) []byte {
	n := len(d)
	d = slices.Grow(d, len(x)*int(w))[:n+len(x)*int(w)]
	b := d[n:]
	switch w {
	case 1:
		for i, v := range x {
			b[i] = byte(v)
		}
	case 2:
		for i, v := range x {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
	case 4:
		for i, v := range x {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
	case 8:
		for i, v := range x {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
	}
	return d
}

// unpack reads len(x) signed integers of w bytes from d into x, and
// returns the rest of d.
func unpack(d []byte, x []int64, w uint8) []byte {
	n := len(x) * int(w)
	b := d[:n]
	switch w {
	case 0:
		clear(x)
	case 1:
		for i := range x {
			x[i] = int64(int8(b[i]))
		}
	case 2:
		for i := range x {
			x[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case 4:
		for i := range x {
			x[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case 8:
		for i := range x {
			x[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return d[n:]
}

// seal ends loading: the open block is closed, and samples that came out
// of time order are sorted by stamp (stably, as they were read). It
// reports whether they had to be.
func (s *Samples) seal() (sorted bool) {
	if s.sealed {
		return false
	}
	if s.plain != nil {
		s.sealed = true
		if s.unsorted {
			sortSeries(s.plain)
		}
		return s.unsorted
	}
	s.closeBlock()
	s.flushStage()
	s.open, s.sealed, s.staged, s.stagedBlocks = nil, true, nil, nil
	s.recent = new(recentBlocks)
	if !s.unsorted {
		return false
	}
	t, raw := s.rawRange(0, s.n)
	idx := make([]int, len(t))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(t[a], t[b]) })
	s.repack(len(idx), func(k int) (int64, int64) { return t[idx[k]], raw[idx[k]] })
	return true
}

// sortSeries sorts x by stamp, stably.
func sortSeries(x *Series) {
	idx := make([]int, len(x.T))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(x.T[a], x.T[b]) })
	t, v := make([]int64, len(idx)), make([]float64, len(idx))
	for k, i := range idx {
		t[k], v[k] = x.T[i], x.V[i]
	}
	x.T, x.V = t, v
}

// repack rebuilds s from n samples given in time order by at.
func (s *Samples) repack(n int, at func(k int) (t, raw int64)) {
	*s = Samples{scale: s.scale, store: s.store}
	for k := range n {
		s.appendRaw(at(k))
	}
	s.closeBlock()
	s.flushStage()
	s.open, s.sealed, s.staged, s.stagedBlocks = nil, true, nil, nil
	s.recent = new(recentBlocks)
}

// mapTimes replaces every stamp t by f(t); f keeps their order.
func (s *Samples) mapTimes(f func(int64) int64) {
	if s.plain != nil {
		for i := range s.plain.T {
			s.plain.T[i] = f(s.plain.T[i])
		}
		return
	}
	t, raw := s.rawRange(0, s.n)
	s.repack(len(t), func(k int) (int64, int64) { return f(t[k]), raw[k] })
}

// Len is the number of samples. A nil *Samples has none (a GPU without
// a power series).
func (s *Samples) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// decode writes block b's stamps and raw values into t and raw (each
// at least b.n long) from its bytes, data.
func (b *sampleBlock) decode(data []byte, t, raw []int64) {
	n := int(b.n)
	t, raw = t[:n], raw[:n]
	d := unpack(data, t[1:], b.wStep)
	unpack(d, raw[1:], b.wRaw)
	t[0], raw[0] = b.first, b.firstRaw
	step, unit := int64(0), b.unit
	for k := 1; k < n; k++ {
		step += t[k]
		t[k] = t[k-1] + step*unit
		raw[k] += raw[k-1]
	}
}
