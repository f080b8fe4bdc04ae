package trace

import (
	"sync"

	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// segmentWindow is the zstd window of the segments' pages. parquet-go's
// codec takes the level's default window, 8 MB, and each pooled encoder
// then keeps an 8 MB history buffer: a sync.Pool holds up to two per P,
// which made 32 of the 66 MB a 50,000 events/s recorder held live, and
// its RSS grow as more Ps cached one. A page is at most parquet-go's page
// buffer (256 KiB) plus a row, so a 1 MiB window finds every match the
// 8 MB one did: the bytes written are the same (TestSegmentCodecBytes).
const segmentWindow = 1 << 20

// segmentCodec compresses the pages of every segment: zstd at its default
// level, as parquet-go's own codec, with encoders pooled (building one per
// segment was the recorder's largest allocation).
var segmentCodec compress.Codec = &windowedZstd{}

type windowedZstd struct {
	zstd.Codec // String, CompressionCodec and Decode
	encoders   sync.Pool
}

func (c *windowedZstd) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *windowedZstd) Encode(dst, src []byte) ([]byte, error) {
	e, _ := c.encoders.Get().(*kzstd.Encoder)
	if e == nil {
		var err error
		e, err = kzstd.NewWriter(nil,
			kzstd.WithEncoderConcurrency(1),
			kzstd.WithEncoderLevel(kzstd.SpeedDefault),
			kzstd.WithWindowSize(segmentWindow),
			kzstd.WithZeroFrames(true),
			kzstd.WithEncoderCRC(false),
		)
		if err != nil {
			return nil, err
		}
	}
	defer c.encoders.Put(e)
	return e.EncodeAll(src, dst[:0]), nil
}
