package bootstrap

import (
	"math/rand/v2"
	"testing"
)

// advance(k) is where k draws take a PCG, for small and composed strides.
func TestAdvanceIsKDraws(t *testing.T) {
	s0 := seeded(7, clusterStream)
	p := s0.pcg()
	for k := uint64(0); k <= 1000; k++ {
		if got, want := s0.advance(k), stateOf(p); got != want {
			t.Fatalf("advance(%d) = %v, %d draws give %v", k, got, k, want)
		}
		p.Uint64()
	}
	for _, k := range []uint64{1 << 20, 123456789, 1<<40 + 3} {
		if a, b := s0.advance(k).advance(k+5), s0.advance(2*k+5); a != b {
			t.Errorf("advance(%d) twice (+5) = %v, advance(%d) = %v", k, a, 2*k+5, b)
		}
	}
	// The state read back is the one a generator continues from.
	q := s0.advance(1 << 20).pcg()
	r := s0.pcg()
	for range 1 << 20 {
		r.Uint64()
	}
	for range 10 {
		if a, b := q.Uint64(), r.Uint64(); a != b {
			t.Fatalf("jumped %d, stepped %d", a, b)
		}
	}
}

// intN draws what rand.Rand.IntN draws, from the same stream.
func TestIntNIsRandIntN(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 1000, 23988, 1 << 20, 1<<31 - 1, 1<<40 + 1} {
		p := rand.NewPCG(uint64(n), 99)
		r := rand.New(rand.NewPCG(uint64(n), 99))
		for i := range 2000 {
			if a, b := intN(p, uint64(n)), r.IntN(n); a != b {
				t.Fatalf("n=%d draw %d: intN %d, IntN %d", n, i, a, b)
			}
		}
	}
}

// serialCluster is the cluster bootstrap's distribution as one stream in
// order, the definition clusterDistribution must reproduce.
func serialCluster(num, den []float64, seed uint64, b int) []float64 {
	r := rand.New(rand.NewPCG(seed, clusterStream))
	n := len(num)
	out := make([]float64, b)
	for i := range out {
		a, c := 0.0, 0.0
		for range n {
			k := r.IntN(n)
			a, c = a+num[k], c+den[k]
		}
		out[i] = a / c
	}
	return out
}

// Drawn in parts on several goroutines, the distribution is the serial
// stream's, bit for bit, also where the parts start in the wrong place
// (as after a rejected draw) and must be drawn again in order.
func TestClusterDistributionIsTheSerialStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	wrong := func(every int) func(pcgState, uint64) pcgState {
		return func(s pcgState, draws uint64) pcgState {
			if every > 0 && int(draws)%every == 0 && (draws > 0 || every == 1) {
				return s.advance(draws + 1)
			}
			return s.advance(draws)
		}
	}
	for _, n := range []int{2, 3, 16, 97, 1000} {
		num, den := make([]float64, n), make([]float64, n)
		for i := range num {
			num[i], den[i] = rng.Float64(), 1+float64(rng.IntN(50))
		}
		for _, b := range []int{1, 63, 64, 65, 2000} {
			seed := uint64(n*b + 1)
			want := serialCluster(num, den, seed, b)
			for _, workers := range []int{1, 2, 7} {
				for _, every := range []int{0, 1, 3 * clusterChunk * n} {
					got := clusterDistribution(num, den, seeded(seed, clusterStream), b, workers, wrong(every))
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("n=%d b=%d workers=%d wrong guesses every %d draws: resample %d is %v, the serial stream's %v",
								n, b, workers, every, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// fill draws the indices next draws, one at a time, across resamples of
// any length (odd lengths leave half a draw to the next) and where halves
// are rejected (n near 2^32 rejects about a third of them).
func TestFillIsNext(t *testing.T) {
	for _, n := range []int{1, 2, 3, 1000, 1<<31 + 1, 3_000_000_000} {
		a, b := newIndexDrawer(n), newIndexDrawer(n)
		a.reset([2]uint64{uint64(n), 5})
		b.reset([2]uint64{uint64(n), 5})
		for _, k := range []int{1, 2, 5, 1000, 0, 3, 997, 64, 1} {
			idx := make([]uint32, k)
			a.fill(idx)
			for i, got := range idx {
				if want := b.next(); int(got) != want {
					t.Fatalf("n=%d, a resample of %d: index %d is %d, next gives %d", n, k, i, got, want)
				}
			}
		}
	}
}
