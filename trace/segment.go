package trace

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// tableSchemas are the columns each table's segments must have (format 2;
// v1Schemas has format 1's where they differ).
var tableSchemas = map[string]*parquet.Schema{
	TableDriverPower: parquet.SchemaOf(driverPowerRow{}),
	TableEnergy:      parquet.SchemaOf(EnergyRead{}),
	TableState:       parquet.SchemaOf(DeviceState{}),
	TableEvents:      parquet.SchemaOf(Event{}),
	TableBadEvents:   parquet.SchemaOf(BadEvent{}),
}

// segStatus is what is known of a segment once it has been opened.
var v1Schemas = map[string]*parquet.Schema{
	TableDriverPower: parquet.SchemaOf(DriverPowerSample{}),
}

// schemaFor is the schema a segment of table must have in format major.
func schemaFor(table string, major int) (*parquet.Schema, bool) {
	if major == 1 {
		if s, ok := v1Schemas[table]; ok {
			return s, true
		}
	}
	s, ok := tableSchemas[table]
	return s, ok
}

// versionOf splits a segment's llem.schema_version (0, 0 if it has none
// that parses; checkIdentity has refused such a segment already).
func versionOf(pf *parquet.File) (major, minor int) {
	v, _ := pf.Lookup(KeySchemaVersion)
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return 0, 0
	}
	return major, minor
}

type segStatus uint8

const (
	segUnknown segStatus = iota
	segGood              // verified (checksum) or validated (decoded whole)
	segBad               // damaged: reported once, skipped afterwards
)

// decodeFailure turns a panic of the Parquet decoder into an error. The
// decoder trusts lengths and offsets it reads from the file, and damaged
// bytes have made it index out of range; a damaged segment must be an
// error like any other, never a crash of llem. Only calls into parquet-go
// are wrapped, so a panic in llem's own code is not hidden.
func decodeFailure(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("the Parquet decoder failed on damaged data (%v)", p)
	}
}

func openParquet(b []byte) (pf *parquet.File, err error) {
	defer decodeFailure(&err)
	// The page index and bloom filters are not needed to read a segment
	// from start to end, and a damaged page index made parquet-go panic
	// ("makeslice: len out of range"): they are never read.
	return parquet.OpenFile(bytes.NewReader(b), int64(len(b)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
}

// openSegment reads segment path of table whole, checks it and opens it.
// It returns nil when the segment must be skipped, after reporting why as
// damage. A segment its manifest line vouches for must match the line's
// size and SHA-256 before anything of it is decoded. One that no line
// vouches for (format 1.0, or its line damaged) must pass checkFooter
// before parquet-go reads its footer, checkPages before it reads a page,
// and validateSegment (every page decoded within the footer's counts and
// statistics) before any row is handed over. Both must carry this run's
// llem.run_id and this table's llem.table, and the table's columns. A
// segment found good or bad is not checked again.
//
// With a buffer (buf not nil), the segment is read into buf's memory,
// grown as needed, and the file returned holds it until the caller opens
// the next segment with the same buffer: the caller must be done with the
// file, its pages and whatever points into them by then. A scan of a
// day's 8,800 segments per 4 hours read each into new memory, which the
// kernel faulted in page by page (most of read(2)'s 3.3 s of CPU in the
// 24 h run).
func (r *Run) openSegment(table, path string, buf *bytes.Buffer) *parquet.File {
	r.mu.Lock()
	status := r.status[path]
	r.mu.Unlock()
	if status == segBad {
		return nil
	}
	entry, listed := r.entry(table, path)
	var b []byte
	var err error
	if buf == nil {
		b, err = os.ReadFile(path)
	} else {
		b, err = readInto(path, buf)
	}
	if err != nil {
		r.lose(table, path, DamageUnreadable, err.Error(), nil)
		return nil
	}
	if r.OnRead != nil {
		r.OnRead(int64(len(b)))
	}
	if listed && status != segGood {
		why := ""
		if int64(len(b)) != entry.Bytes {
			why = fmt.Sprintf("%d bytes, the manifest says %d: the file was cut short or changed after it was written", len(b), entry.Bytes)
		} else if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != entry.SHA256 {
			why = "its SHA-256 differs from the manifest's: the file was changed after it was written"
		}
		if why != "" {
			// Say whose segment it is, when its footer is whole enough.
			if checkFooter(b) == nil {
				if pf, err := openParquet(b); err == nil {
					if id, ok := pf.Lookup(KeyRunID); ok && r.Meta.RunID != "" && id != r.Meta.RunID {
						why += fmt.Sprintf(" (it holds a segment of run %s)", id)
					}
				}
			}
			r.lose(table, path, DamageChecksum, why, nil)
			return nil
		}
	}
	if !listed {
		if err := checkFooter(b); err != nil {
			r.lose(table, path, DamageUnreadable, "not a readable Parquet file: "+err.Error(), nil)
			return nil
		}
	}
	pf, err := openParquet(b)
	if err != nil {
		r.lose(table, path, DamageUnreadable, "not a readable Parquet file: "+err.Error(), nil)
		return nil
	}
	if !listed && status != segGood {
		if err := checkPages(b, pf.Metadata()); err != nil {
			r.lose(table, path, DamageUnreadable, err.Error(), pf)
			return nil
		}
	}
	if err := r.checkIdentity(table, pf); err != nil {
		var foreign foreignError
		if errors.As(err, &foreign) {
			r.report(Damage{Table: table, File: r.rel(path), Code: DamageForeign, Reason: err.Error() + ": left out", Rows: pf.NumRows()})
			r.setStatus(path, segBad)
			return nil
		}
		r.lose(table, path, DamageUnreadable, err.Error(), pf)
		return nil
	}
	if err := checkSchema(table, pf); err != nil {
		r.lose(table, path, DamageUnreadable, err.Error(), pf)
		return nil
	}
	if !listed && status != segGood {
		if err := validateSegment(pf); err != nil {
			r.lose(table, path, DamageUnreadable, err.Error(), pf)
			return nil
		}
	}
	r.setStatus(path, segGood)
	return pf
}

// readInto reads the file at path whole into buf (reset first) and
// returns its bytes, valid until buf is next used.
func readInto(path string, buf *bytes.Buffer) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (r *Run) setStatus(path string, s segStatus) {
	r.mu.Lock()
	r.status[path] = s
	r.mu.Unlock()
}

// entry is the manifest line of a segment, if its table has a manifest
// and the line is intact.
func (r *Run) entry(table, path string) (ManifestEntry, bool) {
	m := r.Manifests[table]
	if m == nil {
		return ManifestEntry{}, false
	}
	e, ok := m.Entries[filepath.Base(path)]
	return e, ok
}

func (r *Run) rel(path string) string {
	if rel, err := filepath.Rel(r.Dir, path); err == nil {
		return rel
	}
	return path
}

// lose reports a segment whose rows are lost, with what is known of its
// rows and time span, and marks it to be skipped from now on. pf is the
// segment's own footer when it could be read, else nil.
func (r *Run) lose(table, path, code, why string, pf *parquet.File) {
	r.setStatus(path, segBad)
	d := Damage{Table: table, File: r.rel(path), Code: code, Reason: why, Lost: true, Rows: -1}
	if e, ok := r.entry(table, path); ok {
		d.Rows, d.StartNs, d.EndNs, d.SpanFrom = e.Rows, e.FirstNs, e.LastNs, "manifest"
	} else if pf != nil {
		if lo, hi, ok := footerSpan(pf); ok {
			d.StartNs, d.EndNs, d.SpanFrom = lo, hi, "footer"
		}
		if n := pf.NumRows(); n >= 0 {
			d.Rows = n
		}
	}
	if !d.HasSpan() {
		if start, end, ok := r.neighbourSpan(table, path); ok {
			d.StartNs, d.EndNs, d.SpanFrom = start, end, "neighbours"
		}
	}
	r.report(d)
}

// neighbourSpan bounds the time of a segment whose own footer is lost by
// the segments either side of it: a table's rows are in time order across
// segments, so its rows lie after the previous segment's last and before
// the next one's first. An end that cannot be read is 0.
func (r *Run) neighbourSpan(table, path string) (start, end int64, ok bool) {
	segs := r.Segments[table]
	i := slices.Index(segs, path)
	if i <= 0 || i+1 >= len(segs) {
		return 0, 0, false // half a span would read as a point in time
	}
	_, start, okBefore := fileSpan(segs[i-1])
	end, _, okAfter := fileSpan(segs[i+1])
	return start, end, okBefore && okAfter && start <= end
}

// fileSpan is a segment file's time span from its footer.
func fileSpan(path string) (lo, hi int64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil || checkFooter(b) != nil {
		return 0, 0, false
	}
	pf, err := openParquet(b)
	if err != nil {
		return 0, 0, false
	}
	return footerSpan(pf)
}

// footerSpan is the range of a segment's timestamp_ns column (or, in ns,
// its timestamp_us column) from the statistics of its footer.
func footerSpan(pf *parquet.File) (lo, hi int64, ok bool) {
	defer func() {
		if recover() != nil { // statistics of the wrong size in a damaged footer
			lo, hi, ok = 0, 0, false
		}
	}()
	scale := int64(1)
	leaf, found := pf.Schema().Lookup(ColTimestampNs)
	if !found {
		leaf, found = pf.Schema().Lookup(ColTimestampUs)
		scale = 1000
	}
	if !found {
		return 0, 0, false
	}
	lo, hi = math.MaxInt64, math.MinInt64
	for _, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		if leaf.ColumnIndex >= len(chunks) {
			return 0, 0, false
		}
		fc, isFile := chunks[leaf.ColumnIndex].(*parquet.FileColumnChunk)
		if !isFile {
			return 0, 0, false
		}
		mn, mx, have := fc.Bounds()
		if !have || mn.Kind() != parquet.Int64 || mx.Kind() != parquet.Int64 {
			return 0, 0, false
		}
		lo, hi = min(lo, mn.Int64()*scale), max(hi, mx.Int64()*scale)
	}
	return lo, hi, lo <= hi
}

// foreignError is a segment that belongs to another run or table.
type foreignError struct{ msg string }

func (e foreignError) Error() string { return e.msg }

// checkIdentity checks a segment's llem metadata: a version this reader
// reads, and this run's table and id.
func (r *Run) checkIdentity(table string, pf *parquet.File) error {
	v, ok := pf.Lookup(KeySchemaVersion)
	if !ok {
		return fmt.Errorf("no %s metadata: not an llem segment", KeySchemaVersion)
	}
	if err := CheckVersion(v); err != nil {
		return err
	}
	if t, ok := pf.Lookup(KeyTable); ok && t != table {
		return foreignError{fmt.Sprintf("a segment of table %s (%s), not %s", t, KeyTable, table)}
	}
	if id, ok := pf.Lookup(KeyRunID); ok && r.Meta.RunID != "" && id != r.Meta.RunID {
		return foreignError{fmt.Sprintf("a segment of run %s (%s), not of this run %s", id, KeyRunID, r.Meta.RunID)}
	}
	return nil
}

// checkSchema checks that a segment has every column of its table, with
// the type and nullability the format gives it. A damaged column name
// would otherwise read as a column of nulls. Columns this reader does not
// know are allowed only from a newer minor version, which may add them.
func checkSchema(table string, pf *parquet.File) (err error) {
	defer decodeFailure(&err) // a damaged footer can make a schema node parquet-go cannot describe
	v, _ := pf.Lookup(KeySchemaVersion)
	major, _ := versionOf(pf)
	want, ok := schemaFor(table, major)
	if !ok {
		return nil
	}
	got := pf.Schema()
	absent := 0 // columns of a later minor version than the segment's
	for _, path := range want.Columns() {
		wl, _ := want.Lookup(path...)
		gl, found := got.Lookup(path...)
		if !found && olderThanColumn(v, table, path[0]) {
			absent++
			continue
		}
		if !found {
			return fmt.Errorf("no column %s: the segment's schema is not its table's", path[0])
		}
		if gl.Node.Type().Kind() != wl.Node.Type().Kind() || gl.Node.Optional() != wl.Node.Optional() ||
			gl.Node.Repeated() != wl.Node.Repeated() {
			return fmt.Errorf("column %s is %s, the format says %s", path[0], describeNode(gl.Node), describeNode(wl.Node))
		}
	}
	if len(got.Columns()) != len(want.Columns())-absent {
		if !newerMinor(v) {
			return fmt.Errorf("%d columns, the format %s has %d", len(got.Columns()), v, len(want.Columns()))
		}
	}
	return nil
}

func describeNode(n parquet.Node) string {
	s := n.Type().Kind().String()
	if n.Optional() {
		s = "optional " + s
	}
	if n.Repeated() {
		s = "repeated " + s
	}
	return s
}

// columnSince is the version that added a column, for the columns added
// after 1.0: a segment of an older version lacks them, and reads them as
// null.
var columnSince = map[string]map[string][2]int{
	TableEvents: {ColTask: {1, 1}},
}

// olderThanColumn reports whether a segment of version v predates the
// column of table.
func olderThanColumn(v, table, column string) bool {
	since, ok := columnSince[table][column]
	if !ok {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major < since[0] || major == since[0] && minor < since[1]
}

// newerMinor reports whether v is a minor version after this reader's.
func newerMinor(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major == SchemaMajor && minor > SchemaMinor
}

// validateSegment decodes every page of every column and checks what the
// footer says against what the pages hold: values per column equal to the
// row count, nulls equal to the statistics' null count, every value within
// the statistics' min and max. It is what stands in for a checksum for a
// segment without one: a data page carries a CRC, but page headers,
// dictionary pages and the footer do not.
func validateSegment(pf *parquet.File) (err error) {
	defer decodeFailure(&err)
	var rows int64
	names := pf.Schema().Columns()
	meta := pf.Metadata()
	for g, rg := range pf.RowGroups() {
		n := rg.NumRows()
		rows += n
		for c, cc := range rg.ColumnChunks() {
			name := fmt.Sprint(c)
			if c < len(names) {
				name = names[c][0]
			}
			var stats *columnStats
			if g < len(meta.RowGroups) && c < len(meta.RowGroups[g].Columns) {
				s := meta.RowGroups[g].Columns[c].MetaData.Statistics
				stats = &columnStats{nulls: s.NullCount}
			}
			if err := validateChunk(cc, n, stats); err != nil {
				return fmt.Errorf("column %s: %w", name, err)
			}
		}
	}
	if rows != pf.NumRows() {
		return fmt.Errorf("row groups hold %d rows, the footer says %d", rows, pf.NumRows())
	}
	return nil
}

type columnStats struct{ nulls int64 }

func validateChunk(cc parquet.ColumnChunk, rows int64, stats *columnStats) error {
	if cc.NumValues() != rows {
		return fmt.Errorf("%d values for %d rows", cc.NumValues(), rows)
	}
	typ := cc.Type()
	pages := cc.Pages()
	defer pages.Close()
	var values, nulls int64
	var lo, hi parquet.Value
	seen := false
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		// The values the page yields must be those its levels promise: a
		// damaged null count in a page header makes the page yield fewer
		// values than it has rows, and rows then borrow their neighbours'.
		got, gotNulls, err := countValues(p, buf)
		if err != nil {
			parquet.Release(p)
			return err
		}
		if got != p.NumValues() || gotNulls != p.NumNulls() {
			parquet.Release(p)
			return fmt.Errorf("a page yields %d values (%d null) for %d rows (%d null)", got, gotNulls, p.NumValues(), p.NumNulls())
		}
		values += got
		nulls += gotNulls
		if mn, mx, ok := p.Bounds(); ok {
			if !seen || typ.Compare(mn, lo) < 0 {
				lo = mn.Clone()
			}
			if !seen || typ.Compare(mx, hi) > 0 {
				hi = mx.Clone()
			}
			seen = true
		}
		parquet.Release(p)
	}
	if values != rows {
		return fmt.Errorf("its pages hold %d values, the footer says %d", values, rows)
	}
	if stats != nil && nulls != stats.nulls {
		return fmt.Errorf("%d nulls, the footer's statistics say %d", nulls, stats.nulls)
	}
	if fc, ok := cc.(*parquet.FileColumnChunk); ok && seen {
		if mn, mx, ok := fc.Bounds(); ok && (typ.Compare(lo, mn) < 0 || typ.Compare(hi, mx) > 0) {
			return fmt.Errorf("values %v..%v outside the footer's statistics %v..%v", lo, hi, mn, mx)
		}
	}
	return nil
}

// countValues reads a page's values to the end, counting them and the nulls.
func countValues(p parquet.Page, buf []parquet.Value) (n, nulls int64, err error) {
	r := p.Values()
	for {
		k, err := r.ReadValues(buf)
		n += int64(k)
		for _, v := range buf[:k] {
			if v.IsNull() {
				nulls++
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nulls, nil
		}
		if err != nil {
			return n, nulls, err
		}
		if k == 0 {
			return n, nulls, fmt.Errorf("a page stopped yielding values after %d", n)
		}
	}
}
