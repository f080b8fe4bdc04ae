package trace

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sync"

	abrotli "github.com/andybalholm/brotli"
	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/brotli"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding"
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

// powerCodec compresses driver_power's power column (the one column whose
// struct tag names brotli). A driver sample's power is a uint32 of mW whose
// low two bytes are nearly random and high two nearly constant; zstd's
// literal coding mixes the four, where brotli's literals are coded in the
// context of the bytes before them. On the shipped H100 runs, in segments
// of a minute, the column takes 1.64 bytes a sample under a matmul (zstd:
// 1.90) and 1.14 under inference (1.36), which brings a loaded GPU's
// sample under issue 11's 4 bytes. A minute's segment took 0.9-1.5 ms to
// write with quality 5, 0.3-1.2 ms with zstd's default level; qualities 6
// to 9 saved under 0.04 bytes more, 10 and 11 up to 0.21 at 15-35 ms. The
// window (2^17) holds a whole page of 8 GPUs' minute (96 KB).
var powerCodec compress.Codec = &keptBrotli{}

const (
	powerQuality = 5
	powerWindow  = 17
)

// keptBrotli is brotli with one writer kept for every page: parquet-go's
// codec pools them, and a pool loses them to the collector between the
// recorder's flushes, each new one allocating its ~1 MB of hash tables.
type keptBrotli struct {
	brotli.Codec // String, CompressionCodec and Decode
	mu           sync.Mutex
	w            *abrotli.Writer
}

func (c *keptBrotli) Encode(dst, src []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := bytes.NewBuffer(dst[:0])
	if c.w == nil {
		c.w = abrotli.NewWriterOptions(out, abrotli.WriterOptions{Quality: powerQuality, LGWin: powerWindow})
	} else {
		c.w.Reset(out)
	}
	if _, err := c.w.Write(src); err != nil {
		return nil, err
	}
	if err := c.w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// withFixedCodecs is schema with every DELTA_BINARY_PACKED column encoded
// by deltaPacked and every brotli column compressed by powerCodec;
// columns, order and types are unchanged (parquet-go compares schemas
// without their encodings and codecs, so a writer of the row type keeps
// its direct path). An integer column whose tag names no encoding is
// DELTA_BINARY_PACKED too (format 2.3): parquet-go's tags cannot say
// "delta" of an optional (pointer) field, which it would write PLAIN, 8
// bytes a value for zstd to search (an event's client stamp and count:
// 16 of the ~35 bytes a token event gave zstd).
// With noDicts, dictionary-encoded columns are DELTA_LENGTH_BYTE_ARRAY
// instead (the segments whose strings could make too large a dictionary:
// segmentEncoder.encode).
func withFixedCodecs(schema *parquet.Schema, noDicts bool) *parquet.Schema {
	return parquet.NewSchema(schema.Name(), fixedGroup{schema, noDicts})
}

// fixedGroup is the root of a table's schema, its columns given llem's
// encoder and codec where parquet-go's would do worse. Every table is flat
// (no nested groups), so only the root's own columns are looked at.
type fixedGroup struct {
	parquet.Node
	noDicts bool
}

func (g fixedGroup) Fields() []parquet.Field {
	fields := g.Node.Fields()
	out := make([]parquet.Field, len(fields))
	for i, f := range fields {
		out[i] = f
		if !f.Leaf() {
			continue
		}
		var fixed fixedField
		switch e, kind := f.Encoding(), f.Type().Kind(); {
		case e != nil && e.Encoding() == format.DeltaBinaryPacked,
			e == nil && (kind == parquet.Int32 || kind == parquet.Int64):
			fixed.enc = &fixedDelta
		case e != nil && e.Encoding() == format.RLEDictionary && g.noDicts:
			fixed.enc = &parquet.DeltaLengthByteArray
		}
		if c := f.Compression(); c != nil && c.CompressionCodec() == format.Brotli {
			fixed.codec = powerCodec
		}
		if fixed.enc != nil || fixed.codec != nil {
			fixed.Field = f
			out[i] = fixed
		}
	}
	return out
}

// fixedField is a column with llem's encoder (enc) or codec in place of
// the one its struct tag names.
type fixedField struct {
	parquet.Field
	enc   encoding.Encoding
	codec compress.Codec
}

func (f fixedField) Encoding() encoding.Encoding {
	if f.enc != nil {
		return f.enc
	}
	return f.Field.Encoding()
}

func (f fixedField) Compression() compress.Codec {
	if f.codec != nil {
		return f.codec
	}
	return f.Field.Compression()
}

// segmentEncoder encodes a table's rows as one Parquet segment. Rows are
// stored as they are, except driver power samples, which format 2 stores
// as driverPowerRow.
//
// Each segment gets a new Parquet writer. parquet-go's Writer.Reset (v0.32)
// clears the column paths its footers are written from, so every file after
// a writer's first had an empty path_in_schema in each column chunk
// (parquet-go/parquet-go#602): Arrow and DuckDB read such files, Spark and
// Athena refuse them. TestSegmentsNameTheirColumns checks every table.
type segmentEncoder[T any] struct {
	opts   []parquet.WriterOption // every segment's writer's
	dpRows []driverPowerRow
	// noDicts is opts with no dictionary-encoded column, for a segment
	// whose strings are too long for one (maxDictBytes).
	noDicts []parquet.WriterOption
}

// maxDictBytes bounds the strings a segment's dictionaries may hold. A
// column's dictionary is one page, which parquet-go grows with every new
// value, and a reader refuses pages over 16 MiB (maxPageBytes): a client's
// request ids or names may be up to a line's 64 KiB each, and never
// repeat. A segment whose strings are more than this, all told, spells
// them out; one of 50,000 token events with 30-byte ids holds ~2 MB.
const maxDictBytes = 8 << 20

func newSegmentEncoder[T any](table, runID string) (*segmentEncoder[T], error) {
	var zero T
	_, isDP := any(zero).(DriverPowerSample)
	if isDP != (table == TableDriverPower) {
		return nil, fmt.Errorf("table %s: rows of type %T", table, zero)
	}
	schema := parquet.SchemaOf(zero)
	if isDP {
		schema = parquet.SchemaOf(driverPowerRow{})
	}
	opts := []parquet.WriterOption{
		// created_by names the application that wrote the file (the
		// Parquet spec); parquet-go's default names itself, with its
		// version and build, ~60 bytes in every footer.
		&parquet.WriterConfig{CreatedBy: "llem"},
		// The segment goes to memory (a bytes.Buffer) and is written
		// out whole: parquet-go's 32 KiB write buffer, allocated by each
		// segment's writer, would copy it once more.
		parquet.WriteBufferSize(0),
		// No min/max in each data page's header (format 2.3): the column
		// index holds every page's, and the footer the chunk's. parquet-go
		// computes a page's bounds once for each, and for a dictionary
		// column that is a string comparison a value: the header's copy
		// was ~5% of the events table's encoding (BenchmarkEventsSegment).
		parquet.DataPageStatistics(false),
		parquet.Compression(segmentCodec),
		parquet.KeyValueMetadata(KeySchemaVersion, SchemaVersion),
		parquet.KeyValueMetadata(KeyTable, table),
		parquet.KeyValueMetadata(KeyRunID, runID),
	}
	if isDP {
		// A segment of a minute of samples (24,000 rows for 8 GPUs) fits
		// one page a column, whose column index would repeat the column
		// chunk's statistics in the footer: left out (with the page
		// headers' statistics, ~0.04 bytes a sample on one GPU).
		opts = append(opts, parquet.ColumnIndexSizeLimit(func([]string) int { return 0 }))
	}
	// The row type's columns, with parquet-go's delta encoding mended
	// (deltaPacked) and brotli tuned (powerCodec); with and without
	// dictionaries.
	return &segmentEncoder[T]{
		opts:    append(opts, withFixedCodecs(schema, false)),
		noDicts: append(slices.Clip(opts), withFixedCodecs(schema, true)),
	}, nil
}

// encode writes rows into out (reset first) as one complete Parquet file.
func (e *segmentEncoder[T]) encode(out *bytes.Buffer, rows []T) error {
	out.Reset()
	if dp, ok := any(rows).([]DriverPowerSample); ok {
		return e.encodeDriverPower(out, dp)
	}
	opts := e.opts
	if stringBytes(rows) > maxDictBytes {
		opts = e.noDicts
	}
	pw := parquet.NewGenericWriter[T](out, opts...)
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
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
	dp := parquet.NewGenericWriter[driverPowerRow](out, e.opts...)
	if _, err := dp.Write(e.dpRows); err != nil {
		return err
	}
	return dp.Close()
}

// stringBytes is the length of rows' dictionary-encoded strings, all told:
// at least what their dictionaries would hold.
func stringBytes[T any](rows []T) int {
	n := 0
	switch rs := any(rows).(type) {
	case []Event:
		for i := range rs {
			n += len(rs[i].Kind) + len(rs[i].Name) + len(rs[i].RequestID) + len(rs[i].Source)
		}
	case []BadEvent:
		for i := range rs {
			n += len(rs[i].Reason)
		}
	}
	return n
}
