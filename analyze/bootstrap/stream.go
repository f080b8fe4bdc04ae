package bootstrap

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// pcgState is the 128-bit state of a math/rand/v2 PCG. The generator is
// an LCG on that state (state = state*mul + inc mod 2^128) with an output
// function on top, so the state k draws ahead is one affine map of the
// state now, found in O(log k) steps: a stream that one goroutine would
// draw in order can be split into parts that start where the stream will
// be, and drawn on every core, giving the same numbers.
type pcgState struct{ hi, lo uint64 }

// The LCG's constants, as in math/rand/v2's pcg.go (PCG.next).
const (
	pcgMulHi = 2549297995355413924
	pcgMulLo = 4865540595714422341
	pcgIncHi = 6364136223846793005
	pcgIncLo = 1442695040888963407
)

// seeded is the state of rand.NewPCG(seed1, seed2): the seeds are the state.
func seeded(seed1, seed2 uint64) pcgState { return pcgState{seed1, seed2} }

// stateOf reads a PCG's state through its binary encoding ("pcg:", then
// the high and low words, big-endian), the only way the package shows it.
func stateOf(p *rand.PCG) pcgState {
	var buf [20]byte
	b, _ := p.AppendBinary(buf[:0])
	return pcgState{binary.BigEndian.Uint64(b[4:12]), binary.BigEndian.Uint64(b[12:20])}
}

// pcg is a generator that starts at the state.
func (s pcgState) pcg() *rand.PCG { return rand.NewPCG(s.hi, s.lo) }

func mul128(aHi, aLo, bHi, bLo uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(aLo, bLo)
	return hi + aHi*bLo + aLo*bHi, lo
}

func add128(aHi, aLo, bHi, bLo uint64) (hi, lo uint64) {
	lo, c := bits.Add64(aLo, bLo, 0)
	hi, _ = bits.Add64(aHi, bHi, c)
	return hi, lo
}

// advance is the state after k draws (Uint64 calls). It composes the
// LCG's affine map with itself by squaring (F. Brown, "Random number
// generation with arbitrary strides", 1994): after k steps the state is
// A*state + C with A = mul^k and C = inc*(mul^(k-1) + ... + 1).
func (s pcgState) advance(k uint64) pcgState {
	accMulHi, accMulLo, accIncHi, accIncLo := uint64(0), uint64(1), uint64(0), uint64(0)
	curMulHi, curMulLo, curIncHi, curIncLo := uint64(pcgMulHi), uint64(pcgMulLo), uint64(pcgIncHi), uint64(pcgIncLo)
	for ; k > 0; k >>= 1 {
		if k&1 == 1 {
			accMulHi, accMulLo = mul128(accMulHi, accMulLo, curMulHi, curMulLo)
			h, l := mul128(accIncHi, accIncLo, curMulHi, curMulLo)
			accIncHi, accIncLo = add128(h, l, curIncHi, curIncLo)
		}
		// inc' = (mul + 1) * inc; mul' = mul^2
		h, l := add128(curMulHi, curMulLo, 0, 1)
		curIncHi, curIncLo = mul128(h, l, curIncHi, curIncLo)
		curMulHi, curMulLo = mul128(curMulHi, curMulLo, curMulHi, curMulLo)
	}
	h, l := mul128(accMulHi, accMulLo, s.hi, s.lo)
	hi, lo := add128(h, l, accIncHi, accIncLo)
	return pcgState{hi, lo}
}

// intN draws from [0, n) exactly as rand.New(p).IntN(n) does on a 64-bit
// machine (math/rand/v2's uint64n: a mask for a power of two, else
// Lemire's multiply with rejection), but on the concrete PCG, without an
// interface call per draw. A rejection, less than n/2^64 likely, costs
// one more draw.
func intN(p *rand.PCG, n uint64) int {
	if n&(n-1) == 0 {
		return int(p.Uint64() & (n - 1))
	}
	hi, lo := bits.Mul64(p.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(p.Uint64(), n)
		}
	}
	return int(hi)
}
