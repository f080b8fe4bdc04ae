package trace

import (
	"encoding/binary"
	"math/bits"

	"github.com/parquet-go/parquet-go/encoding/delta"
)

// deltaPacked is Parquet's DELTA_BINARY_PACKED encoding, written as
// parquet-go writes it except for a page's last, partial block.
//
// parquet-go (v0.32) pads that block with zeros before taking the deltas,
// so its smallest delta is 0 minus the page's last value: every delta of
// the block is then stored in as many bits as the values themselves (a
// timestamp in us: 51 bits instead of ~14). A page of driver power
// samples has one such block, up to 127 stamps: 0.7 of the 4.4 bytes a
// sample took on disk in a 28 s recording under load, and ~0.3 in a 60 s
// segment. Here the smallest delta is taken over the block's values only,
// as the format intends; full blocks are encoded byte for byte as
// parquet-go encodes them (TestDeltaPackedMatchesParquetGo), and every
// reader decodes both the same way, since the smallest delta is stored in
// the block's header. Decoding is parquet-go's.
type deltaPacked struct {
	delta.BinaryPackedEncoding
}

// fixedDelta is the one deltaPacked every schema of the writers uses.
var fixedDelta deltaPacked

// The format's layout: blocks of 128 deltas, each in 4 miniblocks of 32
// packed at the miniblock's own bit width (parquet-go's choice too).
const (
	deltaBlock     = 128
	deltaMiniBlock = 32
	deltaMinis     = deltaBlock / deltaMiniBlock
)

func (deltaPacked) EncodeInt32(dst []byte, src []int32) ([]byte, error) {
	return encodeDelta(dst[:0], src, 32), nil
}

func (deltaPacked) EncodeInt64(dst []byte, src []int64) ([]byte, error) {
	return encodeDelta(dst[:0], src, 64), nil
}

// encodeDelta appends src in DELTA_BINARY_PACKED form. Deltas wrap around
// at the type's width (size bits), as the format says they do.
func encodeDelta[T int32 | int64](dst []byte, src []T, size uint) []byte {
	first := int64(0)
	if len(src) > 0 {
		first = int64(src[0])
	}
	dst = binary.AppendUvarint(dst, deltaBlock)
	dst = binary.AppendUvarint(dst, deltaMinis)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	dst = binary.AppendVarint(dst, first)
	if len(src) < 2 {
		return dst
	}
	var block [deltaBlock]uint64
	mask := ^uint64(0) >> (64 - size)
	for i := 1; i < len(src); i += deltaBlock {
		n := min(deltaBlock, len(src)-i)
		minDelta := int64(0)
		for j := range n {
			d := src[i+j] - src[i+j-1] // wraps at the type's width
			if j == 0 || int64(d) < minDelta {
				minDelta = int64(d)
			}
			block[j] = uint64(int64(d))
		}
		var widths [deltaMinis]byte
		for j := range deltaBlock {
			if j < n {
				block[j] = (block[j] - uint64(minDelta)) & mask
			} else {
				block[j] = 0 // padding: its miniblocks are empty or packed as 0
			}
			widths[j/deltaMiniBlock] = max(widths[j/deltaMiniBlock], byte(bits.Len64(block[j])))
		}
		dst = binary.AppendVarint(dst, minDelta)
		dst = append(dst, widths[:]...)
		for m, w := range widths {
			if w != 0 {
				dst = packBits(dst, block[m*deltaMiniBlock:(m+1)*deltaMiniBlock], uint(w))
			}
		}
	}
	return dst
}

// packBits appends vals (each below 2^width) packed least significant bit
// first, the format's bit packing; 32 values of any width fill whole bytes.
func packBits(dst []byte, vals []uint64, width uint) []byte {
	var acc uint64
	var n uint // bits held in acc
	for _, v := range vals {
		acc |= v << n
		if n+width < 64 {
			n += width
			continue
		}
		dst = binary.LittleEndian.AppendUint64(dst, acc)
		if n == 0 {
			acc = 0 // width 64: v went whole
		} else {
			acc = v >> (64 - n)
		}
		n = n + width - 64
	}
	for ; n > 0; n -= 8 {
		dst = append(dst, byte(acc))
		acc >>= 8
	}
	return dst
}
