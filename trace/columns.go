package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// Columns is a batch of rows of some columns of a table, read without
// building row structs: the fast path for tables with millions of rows
// (events with one row per token), where decoding into structs with
// optional pointer fields and strings costs a microsecond a row. The
// values are kept typed, copied out of the decoded pages: a parquet.Value
// per cell (24 bytes with a pointer, written under the collector's write
// barrier) cost a scan of the events table more than decoding its pages.
type Columns struct {
	names []string
	cols  []column
	n     int
}

// column is one column's values for the rows of a batch.
type column struct {
	null []bool  // per row
	ints []int64 // an integer column's values, in the unit asked (0 for null)
	// A byte-array column's values: row i is data[start[i]:end[i]]. The
	// rows of a dictionary page share its values, copied into data once.
	data       []byte
	start, end []uint32
}

// Len is the number of rows in the batch.
func (c *Columns) Len() int { return c.n }

// Int is column col's value at row i; ok is false for null, and for a
// column that does not hold integers.
func (c *Columns) Int(col, i int) (v int64, ok bool) {
	x := &c.cols[col]
	if x.null[i] || i >= len(x.ints) {
		return 0, false
	}
	return x.ints[i], true
}

// Bytes is column col's byte-array value at row i (nil for null, and for
// a column that does not hold byte arrays). It is valid only until the
// callback returns: copy it (or intern it) to keep it.
func (c *Columns) Bytes(col, i int) []byte {
	x := &c.cols[col]
	if x.null[i] || i >= len(x.start) {
		return nil
	}
	return x.data[x.start[i]:x.end[i]:x.end[i]]
}

// ScanColumns streams the named columns of a table in batches of at most
// batch rows. A column missing from a segment (an older minor version)
// reads as null; timestamp_ns asked of a segment that stores timestamp_us
// (format 2's driver_power) reads that column in ns. A segment that cannot
// be read is skipped and reported (Run.Damage), as by ScanTable.
//
// The batches are decoded ahead of fn on other goroutines, scanDecoders
// of them taking the segments in turn (decompressing and decoding pages
// is about half of a scan of the events table, fn's own work the other
// half; with one decoder a day's events took 9 s on 1.35 cores), so a
// scan takes the cores it has. fn still sees every batch in order, one at
// a time. Memory is bounded by one segment's bytes and scanAhead+2
// batches per decoder.
func ScanColumns(r *Run, table string, columns []string, batch int, fn func(c *Columns) error) error {
	if batch <= 0 {
		batch = 8192
	}
	segs := r.Segments[table]
	s := &scan{names: columns, batch: batch, free: make(chan *Columns, scanDecoders*(scanAhead+2)),
		stop: make(chan struct{}), decoders: make([]decoder, max(min(scanDecoders, len(segs)), 1))}
	for w := range s.decoders {
		s.decoders[w].full = make(chan *Columns, scanAhead)
		go s.decode(r, table, w)
	}
	var err error
	// Segment k's batches come from decoder k mod the decoders, then its
	// end (segmentEnd); a decoder's channel closes after its last segment.
	for k := 0; ; k++ {
		full := s.decoders[k%len(s.decoders)].full
		c, ok := <-full
		for ; ok && c != segmentEnd; c, ok = <-full {
			if err == nil {
				if err = fn(c); err != nil {
					close(s.stop) // the decoders stop at their next batch
				}
			}
			s.recycle(c)
		}
		if !ok {
			break
		}
	}
	for w := range s.decoders { // after a failure, what the others decoded
		for c := range s.decoders[w].full {
			s.recycle(c)
		}
	}
	return err
}

// scanAhead is how many decoded batches may wait for fn, per decoder.
const scanAhead = 2

// scanDecoders is how many goroutines decode a table's segments.
const scanDecoders = 2

// segmentEnd follows the batches of each segment a decoder hands over.
var segmentEnd = &Columns{}

// scan hands batches from the decoding goroutines to ScanColumns'
// caller: decoded ones on each decoder's full, used ones back on free.
type scan struct {
	names    []string
	batch    int
	free     chan *Columns
	stop     chan struct{} // closed when fn fails
	decoders []decoder
}

// decoder is one decoding goroutine's hand-over: its batches, each of its
// segments ended by segmentEnd, closed after its last; and the memory it
// reads segments into, reused for the next (the batches hold copies of
// the values, never a segment's bytes).
type decoder struct {
	full chan *Columns
	buf  bytes.Buffer
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

// decode reads segments w, w+n, w+2n... of the table (n decoders), in
// order, into batches, as decoder w.
func (s *scan) decode(r *Run, table string, w int) {
	d := &s.decoders[w]
	defer close(d.full)
	segs := r.Segments[table]
	give := func(c *Columns) error { d.full <- c; return nil }
	for k := w; k < len(segs); k += len(s.decoders) {
		if s.stopped() {
			return
		}
		path := segs[k]
		if pf := r.openSegment(table, path, &d.buf); pf != nil {
			read, err := scanSegmentColumns(pf, s.names, s.batch, s.take, give)
			if errors.Is(err, errStopped) {
				return
			}
			if err != nil {
				r.lose(table, path, DamageUnreadable, err.Error(), pf)
				r.setRowsRead(path, read)
			}
		}
		d.full <- segmentEnd
	}
}

// errStopped ends a segment's decoding when the caller's function failed.
var errStopped = errors.New("scan stopped")

func newColumns(names []string, batch int) *Columns {
	c := &Columns{names: names, cols: make([]column, len(names))}
	for i := range c.cols {
		c.cols[i].null = make([]bool, batch)
	}
	return c
}

// take is a batch for scanSegmentColumns to fill: a used one, or a new
// one when the caller holds every used one (the decoder then runs ahead by
// at most full's room); nil once the caller's function has failed.
func (s *scan) take() *Columns {
	if s.stopped() {
		return nil
	}
	select {
	case c := <-s.free:
		return c
	default:
		return newColumns(s.names, s.batch)
	}
}

// recycle keeps a used batch for the decoder when there is room.
func (s *scan) recycle(c *Columns) {
	select {
	case s.free <- c:
	default:
	}
}

// scanSegmentColumns decodes one segment's rows into batches of at most
// batch rows of the named columns: each batch from take (nil stops the
// scan: errStopped), filled, then handed to give (whose error is returned
// as a callbackError). read counts the rows given before an error.
func scanSegmentColumns(pf *parquet.File, names []string, batch int,
	take func() *Columns, give func(*Columns) error) (read int64, err error) {
	index := make([]int, len(names))
	proto := make([]columnReader, len(names)) // each column's reading, for this segment
	for i, name := range names {
		index[i], proto[i].scale = -1, 1
		leaf, ok := pf.Schema().Lookup(name)
		if !ok && name == ColTimestampNs {
			leaf, ok = pf.Schema().Lookup(ColTimestampUs)
			proto[i].scale = 1000
		}
		if ok {
			index[i], proto[i].maxDef = leaf.ColumnIndex, byte(leaf.MaxDefinitionLevel)
			if lt := leaf.Node.Type().LogicalType(); lt != nil {
				if it, isInt := lt.Value.(*format.IntType); isInt && !it.IsSigned && it.BitWidth == 32 {
					proto[i].unsigned = true
				}
			}
		}
	}
	for _, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		readers := make([]*columnReader, len(index))
		for i, ci := range index {
			if ci >= 0 {
				r := proto[i]
				r.pages = chunks[ci].Pages()
				readers[i] = &r
			}
		}
		for left := rg.NumRows(); left > 0; {
			c := take()
			if c == nil {
				closeAll(readers)
				return read, errStopped
			}
			n := int(min(left, int64(batch)))
			for i, cr := range readers {
				dst := &c.cols[i]
				if cr == nil {
					*dst = column{null: dst.null}
					for k := range n {
						dst.null[k] = true // a column the segment lacks reads as null
					}
					continue
				}
				if err := cr.fill(dst, n); err != nil {
					closeAll(readers)
					return read, fmt.Errorf("column %s: %w", names[i], err)
				}
			}
			c.n = n
			if err := give(c); err != nil {
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

// columnReader reads one column chunk's values across its pages, typed
// (pages' decoded buffers, parquet.Page.Data), not as parquet.Values.
type columnReader struct {
	pages    parquet.Pages
	page     parquet.Page // the open page, whose buffers the slices below are
	maxDef   byte         // the definition level of a present value (0: a required column)
	scale    int64        // multiplies every integer (timestamp_us asked as ns)
	unsigned bool         // an INT32 column of uint32 values

	levels []byte  // the page's definition levels; nil when every row has a value
	rows   int     // rows in the page
	row    int     // the next row of the page
	next   int     // the next value of the page (values skip nulls)
	dict   []int32 // the page's dictionary indexes, when it is dictionary-encoded
	kind   encoding.Kind
	i32    []int32
	i64    []int64
	data   []byte
	off    []uint32
	// dictAt is where the open page's dictionary values start in the
	// batch's data, -1 until they are copied there.
	dictAt int
}

// maxSharedDict is the largest dictionary (bytes of values) that a batch
// holds once for its rows to share; a larger one is copied row by row.
const maxSharedDict = 4096

// fill reads the next n rows into dst.
func (r *columnReader) fill(dst *column, n int) (err error) {
	defer decodeFailure(&err)
	dst.data, dst.start, dst.end = dst.data[:0], dst.start[:0], dst.end[:0]
	r.dictAt = -1 // a new batch's data
	for k := 0; k < n; {
		if r.row == r.rows { // the page is read (or none is open yet)
			if err := r.nextPage(); err != nil {
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("%d values missing", n-k)
				}
				return err
			}
			continue
		}
		if k > 0 && (r.kind == encoding.ByteArray) != (len(dst.start) > 0) {
			return fmt.Errorf("values of type %s after values of another type", r.kind)
		}
		m := min(n-k, r.rows-r.row)
		r.take(dst, k, m)
		k += m
	}
	if r.kind == encoding.ByteArray {
		dst.ints = dst.ints[:0]
	} else {
		dst.ints = dst.ints[:n]
	}
	return nil
}

// nextPage opens the chunk's next page.
func (r *columnReader) nextPage() error {
	r.release()
	p, err := r.pages.ReadPage()
	if err != nil {
		return err
	}
	r.page = p
	r.levels, r.rows, r.row, r.next, r.dict, r.dictAt = p.DefinitionLevels(), int(p.NumValues()), 0, 0, nil, -1
	if len(r.levels) == 0 {
		r.levels = nil
	} else if len(r.levels) != r.rows {
		return fmt.Errorf("%d definition levels for %d values", len(r.levels), r.rows)
	}
	vals := p.Data()
	if d := p.Dictionary(); d != nil {
		r.dict = vals.Int32()
		vals = d.Page().Data()
	}
	r.kind, r.i32, r.i64 = vals.Kind(), nil, nil
	switch r.kind {
	case encoding.Int32:
		r.i32 = vals.Int32()
	case encoding.Int64:
		r.i64 = vals.Int64()
	case encoding.ByteArray:
		r.data, r.off = vals.ByteArray()
	default:
		return fmt.Errorf("values of type %s, not integers or byte arrays", r.kind)
	}
	return nil
}

// take puts m rows of the page into dst, from the batch's row k, with a
// loop for each kind of value. A value out of the page's range panics:
// fill recovers it as damage.
func (r *columnReader) take(dst *column, k, m int) {
	null := dst.null[k : k+m]
	levels := r.levels
	if levels != nil {
		levels = levels[r.row : r.row+m]
		for j, l := range levels {
			null[j] = l != r.maxDef
		}
	} else {
		clear(null)
	}
	r.row += m
	if r.kind == encoding.ByteArray {
		r.takeBytes(dst, null)
		return
	}
	if cap(dst.ints) < len(dst.null) {
		dst.ints = make([]int64, len(dst.null))
	}
	dst.ints = dst.ints[:len(dst.null)] // fill cuts it to the batch's rows
	out := dst.ints[k : k+m]
	next, dict, scale := r.next, r.dict, r.scale
	for j := range out {
		if null[j] {
			out[j] = 0
			continue
		}
		v := next
		next++
		if dict != nil {
			v = int(dict[v])
		}
		switch {
		case r.kind == encoding.Int64:
			out[j] = r.i64[v] * scale
		case r.unsigned:
			out[j] = int64(uint32(r.i32[v])) * scale
		default:
			out[j] = int64(r.i32[v]) * scale
		}
	}
	r.next = next
}

// takeBytes appends the byte arrays of rows (null says which are null).
// A dictionary page's values are copied into the batch once, and its rows
// point at them: copying "token" into every row of the events table was
// most of a scan's copying. It appends to locals, stored once: a slice
// stored into *dst at every row is a write barrier at every row while the
// collector runs.
func (r *columnReader) takeBytes(dst *column, null []bool) {
	data, start, end := dst.data, dst.start, dst.end
	if start == nil {
		start, end = make([]uint32, 0, len(dst.null)), make([]uint32, 0, len(dst.null))
	}
	next, dict, vals, ends := r.next, r.dict, r.data, r.off
	shared := dict != nil && len(vals) <= maxSharedDict
	if shared && r.dictAt < 0 {
		r.dictAt = len(data)
		data = append(data, vals...)
	}
	for _, isNull := range null {
		if isNull {
			start, end = append(start, 0), append(end, 0)
			continue
		}
		v := next
		next++
		if dict != nil {
			v = int(dict[v])
		}
		if shared {
			start, end = append(start, uint32(r.dictAt)+ends[v]), append(end, uint32(r.dictAt)+ends[v+1])
			continue
		}
		start = append(start, uint32(len(data)))
		data = append(data, vals[ends[v]:ends[v+1]]...)
		end = append(end, uint32(len(data)))
	}
	dst.data, dst.start, dst.end, r.next = data, start, end, next
}

// release gives the open page's buffers back to parquet-go's pools, once
// its values are taken: a page not released is garbage, and every page
// read then made (and zeroed) new buffers, 5% of a 4 h run's analysis.
func (r *columnReader) release() {
	if r.page != nil {
		parquet.Release(r.page)
		r.page = nil
		r.levels, r.dict, r.i32, r.i64, r.data, r.off = nil, nil, nil, nil, nil, nil
	}
}

func closeAll(rs []*columnReader) {
	for _, r := range rs {
		if r != nil {
			r.release()
			r.pages.Close()
		}
	}
}
