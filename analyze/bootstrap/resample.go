package bootstrap

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// chunkSize resamples share one PCG stream. The chunk layout, not the number
// of goroutines, decides which stream draws which resample, so the bootstrap
// distribution for a given source is the same on any machine.
const chunkSize = 64

// distribution returns theta* for b resamples of x, drawn in parallel by up
// to workers goroutines. src only seeds the per-chunk streams, in chunk
// order, so it is read from one goroutine.
func distribution(x []float64, stat Stat, b int, src rand.Source, workers int) []float64 {
	return distributions([][]float64{x}, stat, b, src, workers)[0]
}

// distributions is distribution for several samples of one length: each
// resample's indices are drawn once and used for every sample, as
// separate calls with sources seeded alike would draw them.
func distributions(xs [][]float64, stat Stat, b int, src rand.Source, workers int) [][]float64 {
	chunks := (b + chunkSize - 1) / chunkSize
	seeds := make([][2]uint64, chunks)
	for i := range seeds {
		seeds[i] = [2]uint64{src.Uint64(), src.Uint64()}
	}
	n := len(xs[0])
	data := make([][]float64, len(xs))
	theta := make([][]float64, len(xs))
	for k, x := range xs {
		// The median's fast path reads the sorted sample; others read x as given.
		data[k] = x
		if stat.kind == kindMedian {
			data[k] = slices.Clone(x)
			slices.Sort(data[k])
		}
		theta[k] = make([]float64, b)
	}
	// The latency's three means read their samples side by side: a draw
	// reads one place in memory, not three (a day's requests outgrow the
	// cache), and the three sums stay in registers.
	var rows []float64
	if stat.kind == kindMean && len(xs) == 3 {
		rows = make([]float64, n*len(xs))
		for k, x := range xs {
			for i, v := range x {
				rows[i*len(xs)+k] = v
			}
		}
	}
	workers = max(1, min(workers, chunks))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			draw, idx := newIndexDrawer(n), make([]uint32, n)
			rs := make([]*resampler, len(data))
			for k := range data {
				rs[k] = newResampler(data[k], stat)
			}
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				draw.reset(seeds[c])
				for i := c * chunkSize; i < min(b, (c+1)*chunkSize); i++ {
					draw.fill(idx)
					if rows != nil {
						a, b, c := sumsOfRows3(rows, idx)
						theta[0][i], theta[1][i], theta[2][i] = a/float64(n), b/float64(n), c/float64(n)
						continue
					}
					for k, r := range rs {
						theta[k][i] = r.one(idx)
					}
				}
			}
		})
	}
	wg.Wait()
	return theta
}

// sumsOfRows3 sums, for each of three samples side by side in rows, the
// values picked by idx, in the order of idx: the sums a resample of each
// gives.
func sumsOfRows3(rows []float64, idx []uint32) (a, b, c float64) {
	for _, k := range idx {
		row := rows[3*int(k) : 3*int(k)+3 : 3*int(k)+3]
		a, b, c = a+row[0], b+row[1], c+row[2]
	}
	return a, b, c
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// indexDrawer draws uniform indices in [0, n) with Lemire's multiply-shift
// method ("Fast random integer generation in an interval", 2019) on 32-bit
// halves of the PCG output: two indices per 64-bit draw, which is most of the
// cost of a resample. A draw is rejected only when its low word falls below
// 2^32 mod n (probability below n/2^32), so the indices are exactly uniform.
// It calls the concrete PCG, not an interface, so the hot loop has no
// dynamic dispatch.
type indexDrawer struct {
	pcg    rand.PCG
	n      uint64
	thresh uint32
	bits   uint64 // unused half of the last draw
	half   bool   // whether bits holds one
}

// maxN bounds the sample size for 32-bit index draws.
const maxN = math.MaxUint32

func newIndexDrawer(n int) indexDrawer {
	return indexDrawer{n: uint64(n), thresh: -uint32(n) % uint32(n)}
}

// reset starts a new chunk's stream and drops any buffered half.
func (d *indexDrawer) reset(seed [2]uint64) {
	d.pcg.Seed(seed[0], seed[1])
	d.half = false
}

func (d *indexDrawer) next() int {
	for {
		var r uint32
		if d.half {
			r = uint32(d.bits)
		} else {
			d.bits = d.pcg.Uint64()
			r = uint32(d.bits >> 32)
			d.bits &= math.MaxUint32
		}
		d.half = !d.half
		m := uint64(r) * d.n
		if uint32(m) >= d.thresh {
			return int(m >> 32)
		}
	}
}

// fill draws len(idx) indices, the same as len(idx) calls of next, with
// the common case (both halves of a draw accepted) in one step: no
// buffered half carried through the loop.
func (d *indexDrawer) fill(idx []uint32) {
	i := 0
	for d.half && i < len(idx) { // the half left by the previous resample
		idx[i] = uint32(d.next())
		i++
	}
	for i+1 < len(idx) {
		bits := d.pcg.Uint64()
		m1, m2 := (bits>>32)*d.n, (bits&math.MaxUint32)*d.n
		if uint32(m1) >= d.thresh && uint32(m2) >= d.thresh {
			idx[i], idx[i+1] = uint32(m1>>32), uint32(m2>>32)
			i += 2
			continue
		}
		if uint32(m1) >= d.thresh { // a rejected half is skipped, as by next
			idx[i] = uint32(m1 >> 32)
			i++
		}
		if uint32(m2) >= d.thresh {
			idx[i] = uint32(m2 >> 32)
			i++
		}
	}
	if i < len(idx) {
		idx[i] = uint32(d.next())
	}
}

// resampler evaluates the statistic on one resample at a time, reusing its
// buffers so that no resample allocates.
type resampler struct {
	data   []float64 // x, or x sorted for the median
	stat   Stat
	counts []uint32  // median: how often each sorted value was drawn
	buf    []float64 // generic: the resample itself
}

func newResampler(data []float64, stat Stat) *resampler {
	r := &resampler{data: data, stat: stat}
	switch stat.kind {
	case kindMedian:
		r.counts = make([]uint32, len(data))
	case kindGeneric:
		r.buf = make([]float64, len(data))
	}
	return r
}

// one is the statistic of the resample that picks the values at idx.
func (r *resampler) one(idx []uint32) float64 {
	n := len(r.data)
	switch r.stat.kind {
	case kindMean:
		// A resample's mean is the mean of n random picks: no resample is stored.
		s := 0.0
		for _, k := range idx {
			s += r.data[k]
		}
		return s / float64(n)
	case kindMedian:
		return r.oneMedian(idx)
	}
	for i, k := range idx {
		r.buf[i] = r.data[k]
	}
	return r.stat.Func(r.buf)
}

// oneMedian selects the median of a resample without sorting it: a
// resample of the sorted data is fully described by how often each value
// was drawn, so one pass over the counts (a counting selection) finds the
// middle order statistics. That is O(n) per resample, like quickselect, but
// with sequential memory access and no data-dependent worst case.
func (r *resampler) oneMedian(idx []uint32) float64 {
	n := len(r.data)
	for _, k := range idx {
		r.counts[k]++
	}
	k1, k2 := (n-1)/2, n/2 // 0-based ranks of the middle values (equal for odd n)
	i, cum := 0, 0
	for ; ; i++ {
		cum += int(r.counts[i])
		if cum > k1 {
			break
		}
	}
	lo, hi := r.data[i], r.data[i]
	if cum <= k2 { // rank k2 is the next value drawn at least once
		for i++; r.counts[i] == 0; i++ {
		}
		hi = r.data[i]
	}
	clear(r.counts)
	if n%2 == 1 {
		return lo
	}
	return (lo + hi) / 2
}
