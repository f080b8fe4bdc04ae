package analyze

import (
	"iter"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Reading packed samples: windows decoded a block at a time, and the
// integrals, bins, maxima and searches the analysis asks of them.

// block is the index of the block holding sample i.
func (s *Samples) block(i int) int {
	return sort.Search(len(s.blocks), func(k int) bool { return s.blocks[k].start+int(s.blocks[k].n) > i })
}

// rawRange is the stamps and raw values of samples [i, j).
func (s *Samples) rawRange(i, j int) (t, raw []int64) {
	if j <= i {
		return nil, nil
	}
	t, raw = make([]int64, 0, j-i), make([]int64, 0, j-i)
	s.eachBlock(i, j, func(bt, br []int64) {
		t, raw = append(t, bt...), append(raw, br...)
	})
	return t, raw
}

// eachBlock calls f with the stamps and raw values of samples [i, j),
// a block's part at a time, in order (f must not keep the slices).
func (s *Samples) eachBlock(i, j int, f func(t, raw []int64)) {
	for it := s.blocksOf(i, j); it.next(); {
		f(it.t, it.raw)
	}
}

// blockIter decodes samples [i, j) a block at a time: after each true
// next, t and raw are that block's part (valid until the next call).
type blockIter struct {
	s      *Samples
	k      int // the next block
	last   int // the block of sample j-1
	i, j   int
	t, raw []int64
	bt, br [blockLen]int64
	rb     readBuf // blocks read back from the store
}

func (s *Samples) blocksOf(i, j int) *blockIter {
	return &blockIter{s: s, k: s.block(i), last: s.block(j - 1), i: i, j: j}
}

func (it *blockIter) next() bool {
	s := it.s
	if it.k >= len(s.blocks) || s.blocks[it.k].start >= it.j {
		return false
	}
	b := &s.blocks[it.k]
	data := s.bytes(it.k, it.k, it.last, &it.rb)
	if data == nil && b.size > 0 {
		return false // not read back: the store's error says so
	}
	it.k++
	b.decode(data, it.bt[:], it.br[:])
	lo, hi := max(it.i-b.start, 0), min(it.j-b.start, int(b.n))
	it.t, it.raw = it.bt[lo:hi], it.br[lo:hi]
	return true
}

// Range is samples [i, j) as a Series (the plain one's memory when made
// by SamplesOf: read it, don't change it).
func (s *Samples) Range(i, j int) Series {
	i, j = max(i, 0), min(j, s.Len())
	if j <= i {
		return Series{}
	}
	if s.plain != nil {
		return Series{T: s.plain.T[i:j], V: s.plain.V[i:j]}
	}
	t, v := make([]int64, 0, j-i), make([]float64, 0, j-i)
	s.eachBlock(i, j, func(bt, br []int64) {
		t = append(t, bt...)
		for _, r := range br {
			v = append(v, float64(r)/s.scale)
		}
	})
	return Series{T: t, V: v}
}

// RawRange is the stamps and integer values of samples [i, j): for
// fields that are not quantities (the clock-event-reason bitmask).
func (s *Samples) RawRange(i, j int) (t, raw []int64) {
	i, j = max(i, 0), min(j, s.n)
	if s.plain != nil {
		if j <= i {
			return nil, nil
		}
		raw = make([]int64, j-i)
		for k, v := range s.plain.V[i:j] {
			raw[k] = int64(v)
		}
		return s.plain.T[i:j], raw
	}
	return s.rawRange(i, j)
}

// RawSlice is RawRange of the samples with startNs <= T <= endNs.
func (s *Samples) RawSlice(startNs, endNs int64) (t, raw []int64) {
	return s.RawRange(s.Index(startNs), s.IndexAfter(endNs))
}

// All is every sample as a Series.
func (s *Samples) All() Series { return s.Range(0, s.n) }

// Index is the index of the first sample stamped at or after t (Len when
// none is); IndexAfter of the first stamped after t.
func (s *Samples) Index(t int64) int      { return s.search(t, false) }
func (s *Samples) IndexAfter(t int64) int { return s.search(t, true) }

func (s *Samples) search(t int64, after bool) int {
	if s.Len() == 0 {
		return 0
	}
	past := func(x int64) bool { return x > t || (!after && x == t) }
	if s.plain != nil {
		return sort.Search(s.n, func(k int) bool { return past(s.plain.T[k]) })
	}
	k := sort.Search(len(s.blocks), func(k int) bool { return past(s.blocks[k].last) })
	if k == len(s.blocks) {
		return s.n
	}
	var rb readBuf
	d := s.decoded(k, &rb)
	if d == nil {
		return s.n // not read back: the store's error says so
	}
	return s.blocks[k].start + sort.Search(int(s.blocks[k].n), func(i int) bool { return past(d.t[i]) })
}

// Slice is the samples with startNs <= T <= endNs.
func (s *Samples) Slice(startNs, endNs int64) Series {
	if s.Len() == 0 {
		return Series{}
	}
	if s.plain != nil || endNs < startNs {
		return s.Range(s.Index(startNs), s.IndexAfter(endNs))
	}
	return s.collect(startNs, endNs, false)
}

// Around is Slice with the sample before startNs and the one after endNs:
// what interpolating or integrating over [startNs, endNs] reads, so that
// Around(a, b).Integrate(a, b) is the whole series' integral.
func (s *Samples) Around(startNs, endNs int64) Series {
	if s.Len() == 0 {
		return Series{}
	}
	if s.plain != nil || endNs < startNs {
		return s.Range(s.Index(startNs)-1, s.IndexAfter(endNs)+1)
	}
	return s.collect(startNs, endNs, true)
}

func (s *Samples) collect(a, b int64, around bool) Series {
	it := s.window(a, b, around)
	defer it.release()
	n := it.room()
	out := Series{T: make([]int64, 0, n), V: make([]float64, 0, n)}
	for it.next() {
		out.T = append(out.T, it.t...)
		for _, r := range it.raw {
			out.V = append(out.V, float64(r)/s.scale)
		}
	}
	return out
}

// windowIter hands out, a block's part at a time, the samples with a <= T
// <= b, and with around the one before a and the one after b: each block
// is decoded once, and a neighbour at a block's edge is taken from the
// header of the block beside it. A window inside one block costs one
// decode, where finding its two ends by index took two more.
type windowIter struct {
	s       *Samples
	a, b    int64
	around  bool
	k       int  // the next block
	started bool // the first block was reached
	done    bool
	t, raw  []int64 // the current part
	bt, br  [blockLen]int64
	one     [2]int64 // a single neighbour sample: stamp, raw
	rb      readBuf
	small   bool // a window of a block or two: blocks from s.recent
}

var windowIters = sync.Pool{New: func() any { return new(windowIter) }}

// recentBlocks keeps the last few blocks decoded for small windows: the
// edges of a window are asked for again and again (its energy, its
// counter reads' power, their uncertainties), each a few samples of one
// block, which decoding afresh made the larger part of their cost. A
// published block is never changed, so readers share it without a lock.
type recentBlocks [4]atomic.Pointer[decodedBlock]

type decodedBlock struct {
	k      int
	t, raw [blockLen]int64
}

// decoded is block k decoded, from recent or decoded and kept there (once
// sealed); nil if its bytes could not be read back.
func (s *Samples) decoded(k int, rb *readBuf) *decodedBlock {
	var slot *atomic.Pointer[decodedBlock]
	if s.recent != nil {
		slot = &s.recent[k%len(s.recent)]
		if d := slot.Load(); d != nil && d.k == k {
			return d
		}
	}
	b := &s.blocks[k]
	data := s.bytes(k, k, k, rb)
	if data == nil && b.size > 0 {
		return nil
	}
	d := &decodedBlock{k: k}
	b.decode(data, d.t[:], d.raw[:])
	if slot != nil {
		slot.Store(d)
	}
	return d
}

func (s *Samples) window(a, b int64, around bool) *windowIter {
	it := windowIters.Get().(*windowIter)
	// Field by field: the decode arrays need no zeroing.
	it.s, it.a, it.b, it.around = s, a, b, around
	it.started, it.done, it.t, it.raw, it.rb.b = false, false, nil, nil, it.rb.b[:0]
	it.k = sort.Search(len(s.blocks), func(k int) bool { return s.blocks[k].last >= a })
	it.small = s.recent != nil && it.k+1 < len(s.blocks) && s.blocks[it.k+1].first > b
	return it
}

func (it *windowIter) release() {
	it.s, it.t, it.raw = nil, nil, nil
	windowIters.Put(it)
}

// room is at least how many samples the window hands out: those of the
// blocks it reads, and two neighbours (the headers tell, without decoding).
func (it *windowIter) room() int {
	bl := it.s.blocks
	end := it.k + sort.Search(len(bl)-it.k, func(k int) bool { return bl[it.k+k].first > it.b })
	if it.k >= len(bl) || end <= it.k {
		return 2
	}
	return bl[end-1].start + int(bl[end-1].n) - bl[it.k].start + 2
}

// neighbour makes the current part one sample.
func (it *windowIter) neighbour(t, raw int64) bool {
	it.one = [2]int64{t, raw}
	it.t, it.raw = it.one[:1], it.one[1:2]
	return true
}

func (it *windowIter) next() bool {
	s := it.s
	if it.done {
		return false
	}
	if !it.started {
		it.started = true
		// The sample before a, where it ends the block before.
		if it.around && it.k > 0 && (it.k == len(s.blocks) || s.blocks[it.k].first >= it.a) {
			p := &s.blocks[it.k-1]
			it.done = it.k == len(s.blocks)
			return it.neighbour(p.last, p.lastRaw)
		}
	}
	if it.k >= len(s.blocks) {
		it.done = true
		return false
	}
	blk := &s.blocks[it.k]
	if blk.first > it.b {
		it.done = true
		if it.around {
			return it.neighbour(blk.first, blk.firstRaw)
		}
		return false
	}
	bt, br := it.bt[:], it.br[:]
	if it.small {
		d := s.decoded(it.k, &it.rb)
		if d == nil {
			it.done = true
			return false // not read back: the store's error says so
		}
		bt, br = d.t[:], d.raw[:]
	} else {
		data := s.bytes(it.k, it.k, len(s.blocks)-1, &it.rb)
		if data == nil && blk.size > 0 {
			it.done = true
			return false
		}
		blk.decode(data, bt, br)
	}
	it.k++
	n := int(blk.n)
	t := bt[:n]
	lo, hi := 0, n
	if blk.first < it.a {
		lo = sort.Search(n, func(i int) bool { return t[i] >= it.a })
		if it.around {
			lo-- // the sample before a is in this block
		}
	}
	if blk.last > it.b {
		hi = sort.Search(n, func(i int) bool { return t[i] > it.b })
		if it.around {
			hi++ // and so is the one after b
		}
		it.done = true
	}
	it.t, it.raw = bt[lo:hi], br[lo:hi]
	return true
}

// At is the value at t, linear between the samples around it; ok is false
// outside the samples.
func (s *Samples) At(t int64) (float64, bool) { return s.Around(t, t).At(t) }

// Integrate is Series.Integrate of the whole: the same sum, in the same
// order, of the trapezoids read block by block.
func (s *Samples) Integrate(startNs, endNs int64) (float64, bool) {
	if s.Len() < 2 {
		return 0, false
	}
	if s.plain != nil {
		return s.plain.Integrate(startNs, endNs)
	}
	if endNs <= startNs {
		return 0, false
	}
	e := s.binIntegrals(startNs, endNs-startNs, 1)[0]
	if math.IsNaN(e) {
		return 0, false
	}
	return e, true
}

// Bins is Series.Bins of the whole, in one pass over the samples.
func (s *Samples) Bins(startNs, endNs, binNs int64) []float64 {
	if s.Len() == 0 {
		return Series{}.Bins(startNs, endNs, binNs)
	}
	if s.plain != nil {
		return s.plain.Bins(startNs, endNs, binNs)
	}
	if binNs <= 0 || endNs <= startNs {
		return nil
	}
	out := s.binIntegrals(startNs, binNs, int((endNs-startNs)/binNs))
	for k, e := range out {
		if !math.IsNaN(e) {
			out[k] = e / (float64(binNs) / 1e9)
		}
	}
	return out
}

// binIntegrals is the integral (J for watts) of the samples, linear
// between them, over each of n bins of binNs from startNs: NaN for a bin
// they do not cover. Each bin's trapezoids are summed in time order from
// zero, as Series.Integrate sums them, so the results are the same.
func (s *Samples) binIntegrals(startNs, binNs int64, n int) []float64 {
	out := make([]float64, n)
	if s.n < 2 {
		for k := range out {
			out[k] = math.NaN()
		}
		return out
	}
	first, _ := s.First()
	last, _ := s.Last()
	endNs := startNs + int64(n)*binNs
	var pt int64
	var pv float64
	have := false
	cur := 0 // the first bin that ends after pt
	it := s.window(startNs, endNs, true)
	defer it.release()
	for it.next() {
		for k, ct := range it.t {
			cv := float64(it.raw[k]) / s.scale
			if have && ct > startNs && pt < endNs && ct > pt {
				for cur < n && startNs+int64(cur+1)*binNs <= pt {
					cur++
				}
				// The bins the segment (pt, ct) crosses, in order.
				for b := cur; b < n; b++ {
					lo, hi := startNs+int64(b)*binNs, startNs+int64(b+1)*binNs
					if lo >= ct {
						break
					}
					lo, hi = max(pt, lo), min(ct, hi)
					if hi > lo {
						a := pv + (cv-pv)*float64(lo-pt)/float64(ct-pt)
						z := pv + (cv-pv)*float64(hi-pt)/float64(ct-pt)
						out[b] += (a + z) / 2 * float64(hi-lo) / 1e9
					}
				}
			}
			pt, pv, have = ct, cv, true
		}
	}
	for b := range out {
		if lo := startNs + int64(b)*binNs; first > lo || last < lo+binNs {
			out[b] = math.NaN()
		}
	}
	return out
}

// maxIn is Series.maxIn of the whole.
// It reads the window's blocks in place, without a copy: it is asked of
// windows of a few samples at every window edge and counter read.
func (s *Samples) maxIn(startNs, endNs int64) float64 {
	if s.Len() == 0 {
		return math.NaN()
	}
	if s.plain != nil || endNs < startNs {
		return s.Around(startNs, endNs).maxIn(startNs, endNs)
	}
	m := math.NaN()
	it := s.window(startNs, endNs, true)
	defer it.release()
	for it.next() {
		for _, r := range it.raw {
			if v := float64(r) / s.scale; !(v <= m) { // NaN-safe max
				m = v
			}
		}
	}
	return m
}

// First and Last are the first and the last sample (Len must be > 0).
func (s *Samples) First() (t int64, v float64) {
	if s.plain != nil {
		return s.plain.T[0], s.plain.V[0]
	}
	return s.blocks[0].first, float64(s.blocks[0].firstRaw) / s.scale
}

func (s *Samples) Last() (t int64, v float64) {
	if s.plain != nil {
		return s.plain.T[s.n-1], s.plain.V[s.n-1]
	}
	b := &s.blocks[len(s.blocks)-1]
	return b.last, float64(b.lastRaw) / s.scale
}

// Values is the values of the samples with startNs <= T <= endNs, in a
// slice of their own.
func (s *Samples) Values(startNs, endNs int64) []float64 {
	if s.Len() == 0 || endNs < startNs {
		return nil
	}
	if s.plain != nil {
		return slices.Clone(s.plain.V[s.Index(startNs):s.IndexAfter(endNs)])
	}
	it := s.window(startNs, endNs, false)
	defer it.release()
	v := make([]float64, 0, it.room())
	for it.next() {
		for _, r := range it.raw {
			v = append(v, float64(r)/s.scale)
		}
	}
	return v
}

// Seq yields the samples with startNs <= T <= endNs, decoded a block at a
// time (for passes that need no slice of them).
func (s *Samples) Seq(startNs, endNs int64) iter.Seq2[int64, float64] {
	return func(yield func(int64, float64) bool) {
		if s.Len() == 0 {
			return
		}
		if s.plain != nil {
			for k := s.Index(startNs); k < s.IndexAfter(endNs); k++ {
				if !yield(s.plain.T[k], s.plain.V[k]) {
					return
				}
			}
			return
		}
		if endNs < startNs {
			return
		}
		it := s.window(startNs, endNs, false)
		defer it.release()
		for it.next() {
			for k, t := range it.t {
				if !yield(t, float64(it.raw[k])/s.scale) {
					return
				}
			}
		}
	}
}

// eachStep calls f with each two consecutive samples of [i, j) at least
// minStep apart (their stamps), in order. A block whose samples are all
// closer is not decoded: its header says so.
func (s *Samples) eachStep(i, j int, minStep int64, f func(prev, t int64)) {
	i, j = max(i, 0), min(j, s.n)
	if j-i < 2 {
		return
	}
	if s.plain != nil {
		for k := i + 1; k < j; k++ {
			if s.plain.T[k]-s.plain.T[k-1] >= minStep {
				f(s.plain.T[k-1], s.plain.T[k])
			}
		}
		return
	}
	var rb readBuf
	var bt, br [blockLen]int64
	for k := s.block(i); k < len(s.blocks) && s.blocks[k].start < j; k++ {
		b := &s.blocks[k]
		lo, hi := max(i-b.start, 0), min(j-b.start, int(b.n))
		if lo == 0 && k > 0 && b.start > i { // the step into this block
			if p := &s.blocks[k-1]; b.first-p.last >= minStep {
				f(p.last, b.first)
			}
		}
		if b.maxStep < minStep || hi-lo < 2 {
			continue
		}
		data := s.bytes(k, k, k, &rb)
		if data == nil && b.size > 0 {
			return // not read back: the store's error says so
		}
		b.decode(data, bt[:], br[:])
		for x := lo + 1; x < hi; x++ {
			if bt[x]-bt[x-1] >= minStep {
				f(bt[x-1], bt[x])
			}
		}
	}
}

// backRaw calls f with the samples stamped at or before t, latest first,
// until f returns false.
func (s *Samples) backRaw(t int64, f func(t, raw int64) bool) {
	end := s.IndexAfter(t) // samples [0, end)
	if s.plain != nil {
		for k := end - 1; k >= 0; k-- {
			if !f(s.plain.T[k], int64(s.plain.V[k])) {
				return
			}
		}
		return
	}
	var bt, br [blockLen]int64
	var rb readBuf
	for k := s.block(end - 1); k >= 0 && end > 0; k-- {
		b := &s.blocks[k]
		data := s.bytes(k, 0, k, &rb)
		if data == nil && b.size > 0 {
			return
		}
		b.decode(data, bt[:], br[:])
		for i := min(end-b.start, int(b.n)) - 1; i >= 0; i-- {
			if !f(bt[i], br[i]) {
				return
			}
		}
	}
}

// CountedAbove is how many samples a packed window must hold for
// PowerStats to count its integers rather than copy its values.
var CountedAbove = 1 << 18

// countedRange bounds the span of integers PowerStats counts (4 bytes
// each: 16 MB); a wider window copies its values.
const countedRange = 1 << 22

// PowerStats is the number of samples with startNs <= T <= endNs and
// powerStats of their values. A packed window of more than CountedAbove
// samples (a day's run has 4 million a GPU, 33 MB as a copy of values)
// is read twice instead: once for the range of its integers, once to
// count each in an array over that range. The values are the integers
// divided by a positive scale, which keeps their order, so the order
// statistics read from the counts, and every number made from them, are
// those of the copy.
func (s *Samples) PowerStats(startNs, endNs int64) (n int, p5, p95, mx Num) {
	if s.Len() == 0 || endNs < startNs || s.plain != nil || !(s.scale > 0) {
		v := s.Values(startNs, endNs)
		p5, p95, mx = powerStats(v)
		return len(v), p5, p95, mx
	}
	it := s.window(startNs, endNs, false)
	if it.room() <= CountedAbove { // the headers tell: a small window is copied, in one pass
		it.release()
		v := s.Values(startNs, endNs)
		p5, p95, mx = powerStats(v)
		return len(v), p5, p95, mx
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for it.next() {
		for _, r := range it.raw {
			lo, hi = min(lo, r), max(hi, r)
		}
		n += len(it.raw)
	}
	it.release()
	if n == 0 {
		return 0, NaN, NaN, NaN
	}
	if n <= CountedAbove || uint64(hi-lo) >= countedRange {
		p5, p95, mx = powerStats(s.Values(startNs, endNs))
		return n, p5, p95, mx
	}
	counts := make([]uint32, hi-lo+1)
	it = s.window(startNs, endNs, false)
	for it.next() {
		for _, r := range it.raw {
			counts[r-lo]++
		}
	}
	it.release()
	// The k-th smallest value (from 0), found by walking the counts.
	kth := func(k int) float64 {
		for i, c := range counts {
			if k < int(c) {
				return float64(lo+int64(i)) / s.scale
			}
			k -= int(c)
		}
		panic("analyze: order statistic beyond the counted samples")
	}
	// order.QuantileSelect's arithmetic, on the same two order statistics.
	quantile := func(q float64) Num {
		h := q * float64(n-1)
		k := int(math.Floor(h))
		a := kth(k)
		if k >= n-1 {
			return Num(a)
		}
		return Num(a + (h-float64(k))*(kth(k+1)-a))
	}
	return n, quantile(0.05), quantile(0.95), Num(float64(hi) / s.scale)
}
