package trace

import (
	"bytes"
	"fmt"
	"math"
	"sync"

	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
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
	// kept is one encoder the collector cannot take: a sync.Pool is
	// emptied by every other GC, and the recorder, writing every 5 s,
	// built a new encoder (and zeroed its tables) nearly every time.
	keptMu sync.Mutex
	kept   *kzstd.Encoder
}

func (c *windowedZstd) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *windowedZstd) Encode(dst, src []byte) ([]byte, error) {
	c.keptMu.Lock()
	e := c.kept
	c.kept = nil
	c.keptMu.Unlock()
	if e == nil {
		e, _ = c.encoders.Get().(*kzstd.Encoder)
	}
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
	out := e.EncodeAll(src, dst[:0])
	c.keptMu.Lock()
	if c.kept == nil {
		c.kept, e = e, nil
	}
	c.keptMu.Unlock()
	if e != nil {
		c.encoders.Put(e)
	}
	return out, nil
}

// segmentEncoder encodes a table's rows as one Parquet segment, reusing
// its Parquet writers (Reset) across segments to save allocations. Rows
// are stored as they are, except driver power samples, which format 2
// stores as driverPowerRow.
type segmentEncoder[T any] struct {
	table, runID string
	pw           *parquet.GenericWriter[T]
	dp           *parquet.GenericWriter[driverPowerRow]
	dpRows       []driverPowerRow
}

func newSegmentEncoder[T any](table, runID string) (*segmentEncoder[T], error) {
	var zero T
	if _, isDP := any(zero).(DriverPowerSample); isDP != (table == TableDriverPower) {
		return nil, fmt.Errorf("table %s: rows of type %T", table, zero)
	}
	return &segmentEncoder[T]{table: table, runID: runID}, nil
}

func (e *segmentEncoder[T]) options(schema *parquet.Schema) []parquet.WriterOption {
	return []parquet.WriterOption{
		// The row type's columns, with parquet-go's delta encoding
		// mended (deltaPacked).
		withFixedDelta(schema),
		// created_by names the application that wrote the file (the
		// Parquet spec); parquet-go's default names itself, with its
		// version and build, ~60 bytes in every footer.
		&parquet.WriterConfig{CreatedBy: "llem"},
		parquet.Compression(segmentCodec),
		parquet.KeyValueMetadata(KeySchemaVersion, SchemaVersion),
		parquet.KeyValueMetadata(KeyTable, e.table),
		parquet.KeyValueMetadata(KeyRunID, e.runID),
	}
}

// encode writes rows into out (reset first) as one complete Parquet file.
func (e *segmentEncoder[T]) encode(out *bytes.Buffer, rows []T) error {
	out.Reset()
	if dp, ok := any(rows).([]DriverPowerSample); ok {
		return e.encodeDriverPower(out, dp)
	}
	if e.pw == nil {
		var zero T
		e.pw = parquet.NewGenericWriter[T](out, e.options(parquet.SchemaOf(zero))...)
	} else {
		e.pw.Reset(out)
	}
	if _, err := e.pw.Write(rows); err != nil {
		return err
	}
	return e.pw.Close()
}

func (e *segmentEncoder[T]) encodeDriverPower(out *bytes.Buffer, rows []DriverPowerSample) error {
	e.dpRows = e.dpRows[:0]
	for _, r := range rows {
		if r.TimestampNs%1000 != 0 {
			return fmt.Errorf("driver power sample of GPU %d at %d ns: the format stores driver stamps in whole microseconds", r.GPU, r.TimestampNs)
		}
		if r.DriverPowerMw < 0 || r.DriverPowerMw > math.MaxUint32 {
			return fmt.Errorf("driver power sample of GPU %d at %d ns: %d mW is outside the format's uint32 (NVML's type)", r.GPU, r.TimestampNs, r.DriverPowerMw)
		}
		e.dpRows = append(e.dpRows, driverPowerRow{GPU: r.GPU, TimestampUs: r.TimestampNs / 1000, DriverPowerMw: uint32(r.DriverPowerMw)})
	}
	if e.dp == nil {
		// A segment of a minute of samples (24,000 rows for 8 GPUs) fits
		// one page a column, whose statistics would repeat the column
		// chunk's in the footer: left out, with the column index that
		// repeats them again (~0.04 bytes a sample on one GPU).
		opts := append(e.options(parquet.SchemaOf(driverPowerRow{})), parquet.DataPageStatistics(false),
			parquet.ColumnIndexSizeLimit(func([]string) int { return 0 }))
		e.dp = parquet.NewGenericWriter[driverPowerRow](out, opts...)
	} else {
		e.dp.Reset(out)
	}
	if _, err := e.dp.Write(e.dpRows); err != nil {
		return err
	}
	return e.dp.Close()
}
