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
// (format 2's driver_power) reads that column in ns. Memory is bounded by one segment's bytes and one batch
// per column. A segment that cannot be read is skipped and reported
// (Run.Damage), as by ScanTable.
func ScanColumns(r *Run, table string, columns []string, batch int, fn func(c *Columns) error) error {
	if batch <= 0 {
		batch = 8192
	}
	c := newColumns(columns, batch)
	for _, path := range r.Segments[table] {
		pf := r.openSegment(table, path)
		if pf == nil {
			continue
		}
		read, err := scanSegmentColumns(pf, c, batch, fn)
		var cb callbackError
		if errors.As(err, &cb) {
			return cb.err
		}
		if err != nil {
			r.lose(table, path, DamageUnreadable, err.Error(), pf)
			r.setRowsRead(path, read)
		}
	}
	return nil
}

func newColumns(names []string, batch int) *Columns {
	c := &Columns{names: names, vals: make([][]parquet.Value, len(names)),
		scale: make([]int64, len(names)), unsigned: make([]bool, len(names))}
	for i := range c.vals {
		c.vals[i] = make([]parquet.Value, batch)
	}
	return c
}

func scanSegmentColumns(pf *parquet.File, c *Columns, batch int, fn func(c *Columns) error) (read int64, err error) {
	index := make([]int, len(c.names))
	for i, name := range c.names {
		index[i], c.scale[i], c.unsigned[i] = -1, 1, false
		leaf, ok := pf.Schema().Lookup(name)
		if !ok && name == ColTimestampNs {
			leaf, ok = pf.Schema().Lookup(ColTimestampUs)
			c.scale[i] = 1000
		}
		if ok {
			index[i] = leaf.ColumnIndex
			if lt := leaf.Node.Type().LogicalType(); lt != nil {
				if it, isInt := lt.Value.(*format.IntType); isInt && !it.IsSigned && it.BitWidth == 32 {
					c.unsigned[i] = true
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
			n := int(min(left, int64(batch)))
			for i, cr := range readers {
				dst := c.vals[i][:n]
				if cr == nil {
					clear(dst) // the zero Value is null
					continue
				}
				if err := cr.fill(dst); err != nil {
					closeAll(readers)
					return read, fmt.Errorf("column %s: %w", c.names[i], err)
				}
			}
			c.n = n
			if err := fn(c); err != nil {
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
