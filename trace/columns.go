package trace

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Columns is a batch of rows of some columns of a table, read without
// building row structs: the fast path for tables with millions of rows
// (events with one row per token), where decoding into structs with
// optional pointer fields and strings costs a microsecond a row.
type Columns struct {
	names []string
	vals  [][]parquet.Value
	n     int
	// Per column, for the segment being read: scale multiplies a column
	// read in other units than asked (timestamp_us for timestamp_ns);
	// unsigned marks a uint32 column (format 2's driver_power_mw), whose
	// values parquet-go hands over as int32.
	scale    []int64
	unsigned []bool
}

// Len is the number of rows in the batch.
func (c *Columns) Len() int { return c.n }

// Int is column col's value at row i; ok is false for null.
func (c *Columns) Int(col, i int) (v int64, ok bool) {
	x := c.vals[col][i]
	if x.IsNull() {
		return 0, false
	}
	if c.unsigned[col] {
		return int64(x.Uint32()) * c.scale[col], true
	}
	return x.Int64() * c.scale[col], true
}

// Bytes is column col's byte-array value at row i (nil for null). It is
// valid only until the callback returns: copy it (or intern it) to keep it.
func (c *Columns) Bytes(col, i int) []byte {
	x := c.vals[col][i]
	if x.IsNull() {
		return nil
	}
	return x.ByteArray()
}

// ScanColumns streams the named columns of a table in batches of at most
// batch rows. A column missing from a segment (an older minor version)
// reads as null; timestamp_ns asked of a segment that stores timestamp_us
// (format 2's driver_power) reads that column in ns. A segment that cannot
// be read is skipped and reported (Run.Damage), as by ScanTable.
//
// The batches are decoded one step ahead of fn on another goroutine
// (decompressing and decoding pages is about half of a scan of the events
// table, fn's own work the other half), so a scan takes two cores where
// it has them. fn still sees every batch in order, one at a time. Memory
// is bounded by one segment's bytes and scanAhead+2 batches per column.
func ScanColumns(r *Run, table string, columns []string, batch int, fn func(c *Columns) error) error {
	if batch <= 0 {
		batch = 8192
	}
	s := &scan{names: columns, batch: batch, full: make(chan *Columns, scanAhead),
		free: make(chan *Columns, scanAhead+2), stop: make(chan struct{})}
	go s.decode(r, table)
	var err error
	for c := range s.full {
		if err == nil {
			if err = fn(c); err != nil {
				close(s.stop) // the decoder stops at its next batch
			}
		}
		s.recycle(c)
	}
	return err
}

// scanAhead is how many decoded batches may wait for fn.
const scanAhead = 2

// scan hands batches from the decoding goroutine to ScanColumns' caller:
// decoded ones on full (closed when the table is read, or when stop is
// closed because fn failed), used ones back on free.
type scan struct {
	names      []string
	batch      int
	full, free chan *Columns
	stop       chan struct{}
}

// stopped reports whether the caller's function has failed.
func (s *scan) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// decode reads every segment of the table, in order, into batches.
func (s *scan) decode(r *Run, table string) {
	defer close(s.full)
	for _, path := range r.Segments[table] {
		if s.stopped() {
			return
		}
		pf := r.openSegment(table, path)
		if pf == nil {
			continue
		}
		read, err := scanSegmentColumns(pf, s.names, s.batch, s)
		if errors.Is(err, errStopped) {
			return
		}
		if err != nil {
			r.lose(table, path, DamageUnreadable, err.Error(), pf)
			r.setRowsRead(path, read)
		}
	}
}

// errStopped ends a segment's decoding when the caller's function failed.
var errStopped = errors.New("scan stopped")

func newColumns(names []string, batch int) *Columns {
	c := &Columns{names: names, vals: make([][]parquet.Value, len(names)),
		scale: make([]int64, len(names)), unsigned: make([]bool, len(names))}
	for i := range c.vals {
		c.vals[i] = make([]parquet.Value, batch)
	}
	return c
}

// batches is where scanSegmentColumns gets the batches it fills and
// sends them: the read-ahead of ScanColumns, or one batch handed straight
// to a function (syncBatches).
type batches interface {
	take() *Columns      // a batch to fill; nil stops the scan
	give(*Columns) error // a filled batch
	drop(*Columns)       // a batch taken but not filled (the segment failed)
}

func (s *scan) take() *Columns {
	if s.stopped() {
		return nil
	}
	select {
	case c := <-s.free:
		return c
	default: // fn holds one, full the others: the decoder runs ahead by at most full's room
		return newColumns(s.names, s.batch)
	}
}

func (s *scan) give(c *Columns) error { s.full <- c; return nil }
func (s *scan) drop(c *Columns)       { s.recycle(c) }

// recycle keeps a used batch for the decoder when there is room.
func (s *scan) recycle(c *Columns) {
	select {
	case s.free <- c:
	default:
	}
}

// syncBatches fills one batch and calls fn on it, on the caller's goroutine.
type syncBatches struct {
	c  *Columns
	fn func(*Columns) error
}

func (b syncBatches) take() *Columns        { return b.c }
func (b syncBatches) give(c *Columns) error { return b.fn(c) }
func (b syncBatches) drop(*Columns)         {}

// scanSegmentColumns decodes one segment's rows into batches of at most
// batch rows of the named columns. read counts the rows given before an
// error; an error of give is returned as a callbackError, a stop as
// errStopped.
func scanSegmentColumns(pf *parquet.File, names []string, batch int, to batches) (read int64, err error) {
	index := make([]int, len(names))
	scale, unsigned := make([]int64, len(names)), make([]bool, len(names))
	for i, name := range names {
		index[i], scale[i] = -1, 1
		leaf, ok := pf.Schema().Lookup(name)
		if !ok && name == ColTimestampNs {
			leaf, ok = pf.Schema().Lookup(ColTimestampUs)
			scale[i] = 1000
		}
		if ok {
			index[i] = leaf.ColumnIndex
			if lt := leaf.Node.Type().LogicalType(); lt != nil {
				if it, isInt := lt.Value.(*format.IntType); isInt && !it.IsSigned && it.BitWidth == 32 {
					unsigned[i] = true
				}
			}
		}
	}
	for _, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		readers := make([]*columnReader, len(index))
		for i, ci := range index {
			if ci >= 0 {
				readers[i] = &columnReader{pages: chunks[ci].Pages()}
			}
		}
		for left := rg.NumRows(); left > 0; {
			c := to.take()
			if c == nil {
				closeAll(readers)
				return read, errStopped
			}
			n := int(min(left, int64(batch)))
			copy(c.scale, scale)
			copy(c.unsigned, unsigned)
			for i, cr := range readers {
				dst := c.vals[i][:n]
				if cr == nil {
					clear(dst) // the zero Value is null
					continue
				}
				if err := cr.fill(dst); err != nil {
					to.drop(c)
					closeAll(readers)
					return read, fmt.Errorf("column %s: %w", names[i], err)
				}
			}
			c.n = n
			if err := to.give(c); err != nil {
				closeAll(readers)
				return read, callbackError{err}
			}
			left -= int64(n)
			read += int64(n)
		}
		closeAll(readers)
	}
	return read, nil
}

// columnReader reads one column chunk's values across its pages.
type columnReader struct {
	pages parquet.Pages
	cur   parquet.ValueReader
}

// fill reads exactly len(dst) values.
func (r *columnReader) fill(dst []parquet.Value) (err error) {
	defer decodeFailure(&err)
	for len(dst) > 0 {
		if r.cur == nil {
			p, err := r.pages.ReadPage()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("%d values missing", len(dst))
				}
				return err
			}
			r.cur = p.Values()
		}
		n, err := r.cur.ReadValues(dst)
		dst = dst[n:]
		if errors.Is(err, io.EOF) {
			r.cur = nil
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			r.cur = nil
		}
	}
	return nil
}

func closeAll(rs []*columnReader) {
	for _, r := range rs {
		if r != nil {
			r.pages.Close()
		}
	}
}
