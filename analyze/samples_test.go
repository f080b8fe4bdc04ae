package analyze

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// randomSamples is n samples like a trace's: stamps about stepNs apart
// with jitter, sometimes repeated, sometimes with a gap, and (unsorted)
// a few out of order; raw values wandering, with jumps.
func randomSamples(r *rand.Rand, n int, stepNs int64, unsorted bool) (t, raw []int64) {
	ts, v := int64(1_700_000_000_000_000_000)+r.Int64N(1e9), int64(r.IntN(700_000))
	for range n {
		switch x := r.IntN(100); {
		case x < 2: // a repeated stamp
		case x < 4:
			ts += stepNs * int64(10+r.IntN(200)) // a gap
		default:
			ts += stepNs + r.Int64N(stepNs/10+1) - stepNs/20
		}
		switch x := r.IntN(100); {
		case x < 5:
			v = int64(r.IntN(700_000)) - 1000 // a jump, sometimes below zero
		default:
			v += int64(r.IntN(2001)) - 1000
		}
		t, raw = append(t, ts), append(raw, v)
	}
	if unsorted && n > 1 {
		for range n/50 + 1 {
			i, j := r.IntN(n), r.IntN(n)
			t[i], t[j] = t[j], t[i]
		}
	}
	return t, raw
}

// plainOf is what loading into a plain Series gave: values divided by the
// scale, sorted stably by stamp.
func plainOf(t, raw []int64, scale float64) Series {
	idx := make([]int, len(t))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(t[a], t[b]) })
	var s Series
	for _, i := range idx {
		s.add(t[i], float64(raw[i])/scale)
	}
	return s
}

func packed(t, raw []int64, scale float64) (Samples, bool) {
	return packedIn(nil, t, raw, scale)
}

// packedIn is packed with the blocks beyond SamplesInMemory in store.
func packedIn(store *sampleStore, t, raw []int64, scale float64) (Samples, bool) {
	s := newSamples(scale)
	s.store = store
	for i := range t {
		s.appendRaw(t[i], raw[i])
	}
	return s, s.seal()
}

func sameSeries(a, b Series) bool {
	return slices.Equal(a.T, b.T) && slices.EqualFunc(a.V, b.V, func(x, y float64) bool {
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	})
}

// TestSamplesAreTheSeries: every read of packed samples gives what the
// same read of the plain series gives, bit for bit, on random traces
// (sorted and not, short and several blocks long), for random windows,
// including ones reaching past either end.
//
// With a store and little memory, most blocks are written to its file and
// read back (in runs of several, and one at a time): the same again.
func TestSamplesAreTheSeries(t *testing.T) {
	t.Run("in memory", func(t *testing.T) { samplesAreTheSeries(t, nil) })
	t.Run("spilled", func(t *testing.T) {
		defer func(n int) { SamplesInMemory = n }(SamplesInMemory)
		SamplesInMemory = 3000
		store := newSampleStore()
		samplesAreTheSeries(t, store)
		if store.file.Written() == 0 {
			t.Fatal("nothing was spilled")
		}
		if err := store.failed(); err != nil {
			t.Fatal(err)
		}
	})
}

func samplesAreTheSeries(t *testing.T, store *sampleStore) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 60 {
		n := []int{0, 1, 2, 3, blockLen - 1, blockLen, blockLen + 1, 1000, 5000}[trial%9]
		unsorted := trial%2 == 1
		ts, raw := randomSamples(r, n, 20_000_000, unsorted)
		scale := []float64{1000, 1, 1e6}[trial%3]
		if store != nil {
			store.held = 0 // each trial keeps its first blocks in memory, the rest go
		}
		s, sorted := packedIn(store, ts, raw, scale)
		want := plainOf(ts, raw, scale)
		if s.Len() != want.Len() {
			t.Fatalf("trial %d: %d samples, want %d", trial, s.Len(), want.Len())
		}
		if wantSorted := !slices.IsSorted(ts); sorted != wantSorted {
			t.Errorf("trial %d: seal says sorted=%v, want %v", trial, sorted, wantSorted)
		}
		if !sameSeries(s.All(), want) {
			t.Fatalf("trial %d (n %d, unsorted %v): All differs from the plain series", trial, n, unsorted)
		}
		if n == 0 {
			continue
		}
		if ft, fv := s.First(); ft != want.T[0] || fv != want.V[0] {
			t.Errorf("trial %d: First %d %g, want %d %g", trial, ft, fv, want.T[0], want.V[0])
		}
		if lt, lv := s.Last(); lt != want.T[n-1] || lv != want.V[n-1] {
			t.Errorf("trial %d: Last %d %g, want %d %g", trial, lt, lv, want.T[n-1], want.V[n-1])
		}
		lo, hi := want.T[0], want.T[n-1]
		for range 40 {
			a := lo - 1e9 + r.Int64N(hi-lo+2e9+1)
			if r.IntN(4) == 0 { // a window edge on a sample
				a = want.T[r.IntN(n)]
			}
			b := a + r.Int64N(max(hi-a+2e9, 1))
			i, j := want.Span(a, b)
			if gi, gj := s.Index(a), s.IndexAfter(b); gi != i || gj != j {
				t.Fatalf("trial %d: Index/IndexAfter %d %d, want %d %d", trial, gi, gj, i, j)
			}
			if !sameSeries(s.Slice(a, b), want.Slice(a, b)) {
				t.Fatalf("trial %d: Slice(%d, %d) differs", trial, a, b)
			}
			if v := s.Values(a, b); !slices.Equal(v, want.Slice(a, b).V) {
				t.Fatalf("trial %d: Values(%d, %d) differs", trial, a, b)
			}
			ge, gok := s.Integrate(a, b)
			we, wok := want.Integrate(a, b)
			if ge != we || gok != wok {
				t.Fatalf("trial %d: Integrate(%d, %d) = %v %v, want %v %v", trial, a, b, ge, gok, we, wok)
			}
			bin := 1 + r.Int64N(max((b-a)/3, 1))
			if got, w := s.Bins(a, b, bin), want.Bins(a, b, bin); !sameSeries(Series{V: got}, Series{V: w}) {
				t.Fatalf("trial %d: Bins(%d, %d, %d) differs:\n got %v\nwant %v", trial, a, b, bin, got, w)
			}
			gv, gok := s.At(a)
			wv, wok := want.At(a)
			if gv != wv || gok != wok {
				t.Fatalf("trial %d: At(%d) = %v %v, want %v %v", trial, a, gv, gok, wv, wok)
			}
			if g, w := s.maxIn(a, b), want.maxIn(a, b); g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Fatalf("trial %d: maxIn(%d, %d) = %v, want %v", trial, a, b, g, w)
			}
			// The steps of at least a random length, as a gap search reads them.
			minStep := 1 + r.Int64N(200_000_000)
			var steps, wantSteps [][2]int64
			s.eachStep(i-1, j+1, minStep, func(p, t int64) { steps = append(steps, [2]int64{p, t}) })
			for k := max(i-1, 0) + 1; k < min(j+1, n); k++ {
				if want.T[k]-want.T[k-1] >= minStep {
					wantSteps = append(wantSteps, [2]int64{want.T[k-1], want.T[k]})
				}
			}
			if !slices.Equal(steps, wantSteps) {
				t.Fatalf("trial %d: eachStep(%d, %d, %d) gave %d steps, want %d", trial, i-1, j+1, minStep, len(steps), len(wantSteps))
			}
			var back []int64
			s.backRaw(b, func(t, _ int64) bool { back = append(back, t); return len(back) < 300 })
			var wantBack []int64
			for k := j - 1; k >= 0 && len(wantBack) < 300; k-- {
				wantBack = append(wantBack, want.T[k])
			}
			if !slices.Equal(back, wantBack) {
				t.Fatalf("trial %d: backRaw(%d) gave %d stamps, want %d", trial, b, len(back), len(wantBack))
			}
		}
		// Shifting stamps (a job's clock correction) keeps the values.
		s.mapTimes(func(t int64) int64 { return t + 12345 })
		for i := range want.T {
			want.T[i] += 12345
		}
		if !sameSeries(s.All(), want) {
			t.Fatalf("trial %d: mapTimes differs", trial)
		}
	}
}

// TestSamplesUnreadable: a spilled block that cannot be read back ends
// the pass, and the store (Data.Err) says why, rather than the samples
// silently counting short.
func TestSamplesUnreadable(t *testing.T) {
	defer func(n int) { SamplesInMemory = n }(SamplesInMemory)
	SamplesInMemory = 0
	store := newSampleStore()
	ts, raw := driverLike(rand.New(rand.NewPCG(7, 8)), 10*blockLen)
	s, _ := packedIn(store, ts, raw, 1000)
	if got := s.All(); got.Len() != len(ts) {
		t.Fatalf("read back %d samples, want %d", got.Len(), len(ts))
	}
	store.file.Close()
	if got := s.All(); got.Len() >= len(ts) {
		t.Errorf("with the file closed, %d samples were read", got.Len())
	}
	d := &Data{GPUs: []*GPU{{DriverPower: s}}}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "reading back the packed GPU samples") {
		t.Errorf("Data.Err = %v", err)
	}
}

// driverLike is n samples like the driver's power buffer: stamps in whole
// microseconds 20 ms apart within 100 us, power (mW) wandering by up to
// 2 W a sample, with a load step one sample in 500.
func driverLike(r *rand.Rand, n int) (t, raw []int64) {
	ts, v := int64(1_700_000_000_000_000_000), int64(300_000)
	for range n {
		ts += 20_000_000 + (r.Int64N(201)-100)*1000
		v += int64(r.IntN(4001)) - 2000
		if r.IntN(500) == 0 {
			v = int64(80_000 + r.IntN(600_000))
		}
		t, raw = append(t, ts), append(raw, v)
	}
	return t, raw
}

// TestNoSamples: a GPU without a field (nil or empty samples) answers as
// an empty series does.
func TestNoSamples(t *testing.T) {
	for _, s := range []*Samples{nil, {}, new(newSamples(1000))} {
		if s.Len() != 0 || s.Slice(0, 10).Len() != 0 || s.Around(0, 10).Len() != 0 || len(s.Values(0, 10)) != 0 {
			t.Errorf("%v: samples where there are none", s)
		}
		if _, ok := s.Integrate(0, 10); ok {
			t.Errorf("%v: an integral of nothing", s)
		}
		if _, ok := s.At(5); ok {
			t.Errorf("%v: a value of nothing", s)
		}
		if !math.IsNaN(s.maxIn(0, 10)) || len(s.Bins(0, 10, 5)) != 2 || !math.IsNaN(s.Bins(0, 10, 5)[0]) {
			t.Errorf("%v: a maximum or bins of nothing", s)
		}
		for range s.Seq(0, 10) {
			t.Errorf("%v: a sample in the sequence of nothing", s)
		}
	}
}

// TestSamplesAreSmall: driver samples take a few bytes each (a plain
// series takes 16), block headers included.
func TestSamplesAreSmall(t *testing.T) {
	ts, raw := driverLike(rand.New(rand.NewPCG(3, 4)), 100_000)
	s, _ := packed(ts, raw, 1000)
	bytes := len(s.blocks) * int(unsafe.Sizeof(sampleBlock{}))
	for _, b := range s.blocks {
		bytes += cap(b.data)
	}
	if per := float64(bytes) / float64(s.Len()); per > 6 {
		t.Errorf("%.2f bytes a sample, want at most 6", per)
	}
}

func BenchmarkSamplesIntegrate(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	ts, raw := driverLike(r, 720_000)
	s, _ := packed(ts, raw, 1000)
	plain := s.All()
	lo, hi := plain.T[0], plain.T[len(plain.T)-1]
	b.Run("packed", func(b *testing.B) {
		for b.Loop() {
			s.Integrate(lo, hi)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Len()), "ns/sample")
	})
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			plain.Integrate(lo, hi)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Len()), "ns/sample")
	})
	b.Run("values", func(b *testing.B) {
		for b.Loop() {
			s.Values(lo, hi)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Len()), "ns/sample")
	})
}

// PowerStats of packed samples, counted or copied, is powerStats of the
// plain window's values, bit for bit: windows of every size, raw ranges
// narrow and too wide to count, and negative values.
func TestPowerStatsCounted(t *testing.T) {
	defer func(v int) { CountedAbove = v }(CountedAbove)
	r := rand.New(rand.NewPCG(41, 42))
	for _, counted := range []int{0, 1 << 30} {
		CountedAbove = counted
		for trial := range 20 {
			var tt, raw []int64
			if trial%2 == 0 {
				tt, raw = driverLike(r, 3000+r.IntN(5000))
			} else {
				tt, raw = randomSamples(r, 3000+r.IntN(5000), 20_000_000, trial%4 == 1)
			}
			if trial == 3 {
				raw[len(raw)/2] = 1 << 40 // wider than countedRange: values copied
			}
			s, _ := packed(tt, raw, 1000)
			plain := plainOf(tt, raw, 1000)
			first, last := plain.T[0], plain.T[len(plain.T)-1]
			for _, w := range [][2]int64{{first, last}, {first - 1, first}, {first + (last-first)/3, last - (last-first)/4}, {last + 1, last + 5}} {
				v := plain.Slice(w[0], w[1]).V
				wantP5, wantP95, wantMax := powerStats(slices.Clone(v))
				n, p5, p95, mx := s.PowerStats(w[0], w[1])
				same := func(a, b Num) bool { return a == b || (a != a && b != b) }
				if n != len(v) || !same(p5, wantP5) || !same(p95, wantP95) || !same(mx, wantMax) {
					t.Fatalf("counted above %d, trial %d, window %v: %d samples p5 %v p95 %v max %v; the values give %d, %v, %v, %v",
						counted, trial, w, n, p5, p95, mx, len(v), wantP5, wantP95, wantMax)
				}
			}
		}
	}
}
