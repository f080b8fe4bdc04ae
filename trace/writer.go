package trace

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
)

// DefaultMaxSegmentRows bounds a segment's rows, and so the writer's memory,
// whatever the rotation interval: a client flooding events cannot make the
// recorder hold more than this many rows of one table.
const DefaultMaxSegmentRows = 200_000

// TableWriter buffers rows of one table and writes them as numbered Parquet
// segments. Each Flush writes one complete file under a temporary name,
// syncs it and renames it into place, so a segment either exists whole or
// not at all. A TableWriter is not safe for concurrent use: one goroutine
// owns it.
type TableWriter[T any] struct {
	dir     string // the table's folder
	table   string
	runID   string
	maxRows int
	less    func(a, b T) int
	buf     []T
	next    int // number of the next segment
	rows    int64
	bytes   int64
	out     bytes.Buffer
	enc     *segmentEncoder[T]
	key     func(*T) [2]int64 // orderKey(less), or nil
	scratch sortScratch

	// grow, when not 0, makes segments grow (SetGrow): open holds the rows
	// of the segment not yet closed, written whole at every Flush under its
	// final name; openBytes is the size of its last version.
	grow      int64
	open      []T
	openBytes int64
}

// DriverPowerSegmentSpan is how much time the recorder's driver_power
// segments grow to before they are closed (SetGrow). A segment costs ~700
// bytes of footer, page headers and statistics whatever its rows: over
// the 250 samples of a 5 s segment of one GPU that was 2.8 bytes a sample,
// over a minute's 3,000 it is 0.2. A rewrite every rotation costs one
// encoding of at most a minute's rows (3,000 a GPU).
const DriverPowerSegmentSpan int64 = 60e9

// NewTableWriter creates the table folder under runDir. cmp, if not nil,
// orders rows within a segment (by GPU, then time) so that delta encoding
// sees monotone runs.
func NewTableWriter[T any](runDir, table, runID string, cmp func(a, b T) int) (*TableWriter[T], error) {
	dir := filepath.Join(runDir, table)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating table %s: %w", table, err)
	}
	enc, err := newSegmentEncoder[T](table, runID)
	if err != nil {
		return nil, err
	}
	return &TableWriter[T]{dir: dir, table: table, runID: runID, maxRows: DefaultMaxSegmentRows, less: cmp, key: orderKey(cmp),
		enc: enc}, nil
}

// SetMaxRows changes the row bound that forces a segment to be written.
func (w *TableWriter[T]) SetMaxRows(n int) { w.maxRows = n }

// SetGrow makes each segment grow until its rows span at least span ns
// (or reach the row bound): every Flush rewrites the open segment whole,
// with the rows flushed so far, under a temporary name renamed over the
// last version, so the disk holds everything flushed (what a killed writer
// keeps is unchanged) while the table has one segment a span instead of
// one a Flush. The open segment has no manifest line until it is closed
// (at the span, or by Close): readers take a run's last segment without a
// line for the open segment of a writer that was stopped, and check it by
// its structure (docs/trace-format.md).
func (w *TableWriter[T]) SetGrow(span int64) { w.grow = span }

// Add buffers rows, writing a segment whenever the buffer reaches the row bound.
func (w *TableWriter[T]) Add(rows ...T) error {
	for len(rows) > 0 {
		room := w.maxRows - len(w.buf)
		n := min(room, len(rows))
		w.buf = append(w.buf, rows[:n]...)
		rows = rows[n:]
		if len(w.buf) >= w.maxRows {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Buffered is the number of rows not yet in a segment.
func (w *TableWriter[T]) Buffered() int { return len(w.buf) }

// Rows is the number of rows written to segments so far.
func (w *TableWriter[T]) Rows() int64 { return w.rows + int64(len(w.open)) }

// Segments is the number of segments written so far, an open one included.
func (w *TableWriter[T]) Segments() int {
	if len(w.open) > 0 {
		return w.next + 1
	}
	return w.next
}

// Bytes is the size on disk of the segments written so far.
func (w *TableWriter[T]) Bytes() int64 { return w.bytes + w.openBytes }

// Flush writes the buffered rows as one segment. It does nothing when the
// buffer is empty, so an idle table creates no files.
func (w *TableWriter[T]) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.grow == 0 {
		if w.less != nil {
			sortSegment(w.buf, w.less, w.key, &w.scratch)
		}
		if err := w.closeSegment(w.buf); err != nil {
			return err
		}
		clear(w.buf) // drop references so the collector can free them
		w.buf = w.buf[:0]
		return nil
	}
	w.open = append(w.open, w.buf...)
	clear(w.buf)
	w.buf = w.buf[:0]
	if w.less != nil {
		// The open rows are one sorted run and the new ones another (or a
		// few): sortSegment merges them in one pass.
		sortSegment(w.open, w.less, w.key, &w.scratch)
	}
	if err := w.writeOpen(); err != nil {
		return err
	}
	if first, last := timeSpan(w.open); last-first >= w.grow || len(w.open) >= w.maxRows {
		return w.closeOpen()
	}
	return nil
}

// Close writes what is buffered and closes the open segment of a growing
// table. The writer may not be used afterwards.
func (w *TableWriter[T]) Close() error {
	if err := w.Flush(); err != nil {
		return err
	}
	if w.grow != 0 && len(w.open) > 0 {
		return w.closeOpen()
	}
	return nil
}

// writeTmp encodes rows into w.out and writes them, synced, to the
// temporary name of the next segment, whose final path it returns.
func (w *TableWriter[T]) writeTmp(rows []T) (string, error) {
	if err := w.enc.encode(&w.out, rows); err != nil {
		return "", fmt.Errorf("encoding %s segment: %w", w.table, err)
	}
	path := filepath.Join(w.dir, SegmentName(w.next))
	if err := writeFileSynced(path+".tmp", w.out.Bytes()); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// closeSegment writes rows as the next segment, with its manifest line.
// The segment is written and synced under a temporary name, its line
// (checksum, rows, time span) appended and synced, and only then renamed
// into place: a killed writer leaves either a leftover .tmp or a complete
// segment with its line, never a segment that cannot be verified.
func (w *TableWriter[T]) closeSegment(rows []T) error {
	path, err := w.writeTmp(rows)
	if err != nil {
		return err
	}
	if err := w.appendEntry(rows); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	w.next++
	w.rows += int64(len(rows))
	w.bytes += int64(w.out.Len())
	return nil
}

// writeOpen writes the open segment's current rows over its last version
// (w.out keeps them for closeOpen).
func (w *TableWriter[T]) writeOpen() error {
	path, err := w.writeTmp(w.open)
	if err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	w.openBytes = int64(w.out.Len())
	return nil
}

// closeOpen closes the open segment whose last version writeOpen has just
// written: it appends its manifest line. The order is the reverse of
// closeSegment's: the name already holds a version without a line, and a
// line written first would condemn it if the writer were killed before the
// rename (its checksum would be the new version's). Killed before the line,
// the segment is the run's last without a line, which readers check by its
// structure.
func (w *TableWriter[T]) closeOpen() error {
	if err := w.appendEntry(w.open); err != nil {
		return err
	}
	w.next++
	w.rows += int64(len(w.open))
	w.bytes += w.openBytes
	w.openBytes = 0
	clear(w.open)
	w.open = w.open[:0]
	return nil
}

// appendEntry appends the manifest line of rows, just encoded into w.out,
// as the next segment.
func (w *TableWriter[T]) appendEntry(rows []T) error {
	sum := sha256.Sum256(w.out.Bytes())
	e := ManifestEntry{Segment: SegmentName(w.next), Rows: int64(len(rows)), Bytes: int64(w.out.Len()), SHA256: hex.EncodeToString(sum[:])}
	e.FirstNs, e.LastNs = timeSpan(rows)
	if err := appendManifest(w.dir, e); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(w.dir, ManifestFile), err)
	}
	return nil
}

// sortSegment orders rows by less, keeping rows that compare equal in the
// order they came: the order slices.SortStableFunc gives, at a fraction of
// its cost. A segment is often sorted already (one GPU, one client), which
// one pass finds. Otherwise (the events of several connections, each in
// order, interleaved batch by batch) the stable sort moved whole rows
// (~180 bytes an event) in its insertion sorts and rotations: 12% of the
// recorder's CPU at 50,000 events/s. Here only small keys move: key, when
// not nil, gives each row the pair of numbers less orders by (orderKey),
// and the keys' ascending runs are merged (stable, and ~3 times faster than
// the stable sort on a segment of 50,000 interleaved events); without a
// key, pdqsort orders row indexes through less, ties broken by index,
// which makes the order total and so equal to the stable one. Then every
// row moves once, to its place.
func sortSegment[T any](rows []T, less func(a, b T) int, key func(*T) [2]int64, scratch *sortScratch) {
	if slices.IsSortedFunc(rows, less) {
		return
	}
	p := scratch.perm[:0]
	if key != nil {
		ks := scratch.keys[:0]
		for i := range rows {
			k := key(&rows[i])
			ks = append(ks, rowKey{k[0], k[1], int32(i)})
		}
		sorted, other := mergeRuns(ks, scratch.tmp)
		for _, k := range sorted {
			p = append(p, k.i)
		}
		scratch.keys, scratch.tmp = sorted, other
	} else {
		for i := range rows {
			p = append(p, int32(i))
		}
		slices.SortFunc(p, func(a, b int32) int {
			if c := less(rows[a], rows[b]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	}
	permute(rows, p)
	scratch.perm = p
}

type rowKey struct {
	major, minor int64
	i            int32
}

// sortScratch is sortSegment's memory, kept by a writer across segments.
type sortScratch struct {
	perm      []int32
	keys, tmp []rowKey
}

// orderKey returns the sort key that orders rows exactly as cmp does, when
// cmp is one of this package's orderings (compared by identity, so another
// function, even an equivalent one, gets nil and the generic sort).
func orderKey[T any](cmp func(a, b T) int) func(*T) [2]int64 {
	if cmp == nil {
		return nil
	}
	var key any
	switch reflect.ValueOf(cmp).Pointer() {
	case reflect.ValueOf(CompareEvent).Pointer():
		key = func(r *Event) [2]int64 { return [2]int64{r.TimestampNs, 0} }
	case reflect.ValueOf(CompareDriverPower).Pointer():
		key = func(r *DriverPowerSample) [2]int64 { return [2]int64{int64(r.GPU), r.TimestampNs} }
	case reflect.ValueOf(CompareEnergy).Pointer():
		key = func(r *EnergyRead) [2]int64 { return [2]int64{int64(r.GPU), r.TimestampNs} }
	case reflect.ValueOf(CompareState).Pointer():
		key = func(r *DeviceState) [2]int64 { return [2]int64{int64(r.GPU), r.TimestampNs} }
	}
	f, _ := key.(func(*T) [2]int64)
	return f
}

// permute reorders rows in place so that the row at i is the one that was
// at p[i], following each cycle of the permutation; p is left the
// identity.
func permute[T any](rows []T, p []int32) {
	for i := range p {
		if int(p[i]) == i {
			continue
		}
		tmp := rows[i]
		j := i
		for {
			k := int(p[j])
			p[j] = int32(j)
			if k == i {
				rows[j] = tmp
				break
			}
			rows[j] = rows[k]
			j = k
		}
	}
}

// timeSpan is the earliest and latest timestamp of rows of a trace table
// (0, 0 for other row types). One type switch on the slice, not one
// interface conversion per row.
func timeSpan[T any](rows []T) (first, last int64) {
	switch rs := any(rows).(type) {
	case []DriverPowerSample:
		return spanOf(rs, func(r *DriverPowerSample) int64 { return r.TimestampNs })
	case []EnergyRead:
		return spanOf(rs, func(r *EnergyRead) int64 { return r.TimestampNs })
	case []DeviceState:
		return spanOf(rs, func(r *DeviceState) int64 { return r.TimestampNs })
	case []Event:
		return spanOf(rs, func(r *Event) int64 { return r.TimestampNs })
	case []BadEvent:
		return spanOf(rs, func(r *BadEvent) int64 { return r.TimestampNs })
	}
	return 0, 0
}

func spanOf[T any](rows []T, ts func(*T) int64) (first, last int64) {
	if len(rows) == 0 {
		return 0, 0
	}
	first, last = ts(&rows[0]), ts(&rows[0])
	for i := range rows {
		t := ts(&rows[i])
		first, last = min(first, t), max(last, t)
	}
	return first, last
}

// SegmentName is the file name of segment n.
func SegmentName(n int) string { return fmt.Sprintf("part-%06d.parquet", n) }

// Orderings used by the recorder and importers for the per-GPU tables.
func CompareDriverPower(a, b DriverPowerSample) int {
	if a.GPU != b.GPU {
		return int(a.GPU - b.GPU)
	}
	return cmp.Compare(a.TimestampNs, b.TimestampNs)
}

func CompareEnergy(a, b EnergyRead) int {
	if a.GPU != b.GPU {
		return int(a.GPU - b.GPU)
	}
	return cmp.Compare(a.TimestampNs, b.TimestampNs)
}

func CompareState(a, b DeviceState) int {
	if a.GPU != b.GPU {
		return int(a.GPU - b.GPU)
	}
	return cmp.Compare(a.TimestampNs, b.TimestampNs)
}

func CompareEvent(a, b Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) }

// mergeRuns sorts keys that come as ascending runs (each connection's
// batch of events is one) by merging neighbouring runs pairwise, using tmp
// (grown to len(keys)) as the other buffer; it returns the sorted keys,
// which are keys or tmp.
func mergeRuns(keys, tmp []rowKey) ([]rowKey, []rowKey) {
	n := len(keys)
	if cap(tmp) < n {
		tmp = make([]rowKey, n)
	}
	tmp = tmp[:n]
	// Run boundaries: runs[k] is where run k starts; a final n closes them.
	var runs []int
	runs = append(runs, 0)
	for i := 1; i < n; i++ {
		if keyLess(keys[i], keys[i-1]) {
			runs = append(runs, i)
		}
	}
	runs = append(runs, n)
	src, dst := keys, tmp
	for len(runs) > 2 {
		next := runs[:0:0]
		for k := 0; k+1 < len(runs); k += 2 {
			lo := runs[k]
			if k+2 >= len(runs) { // an odd run out: copy it over
				copy(dst[lo:], src[lo:runs[k+1]])
				next = append(next, lo)
				continue
			}
			mid, hi := runs[k+1], runs[k+2]
			i, j, o := lo, mid, lo
			for i < mid && j < hi {
				if keyLess(src[j], src[i]) {
					dst[o] = src[j]
					j++
				} else {
					dst[o] = src[i]
					i++
				}
				o++
			}
			o += copy(dst[o:], src[i:mid])
			copy(dst[o:], src[j:hi])
			next = append(next, lo)
		}
		runs = append(next, n)
		src, dst = dst, src
	}
	if &src[0] == &keys[0] {
		return keys, tmp
	}
	return src, keys
}

func keyLess(a, b rowKey) bool {
	if a.major != b.major {
		return a.major < b.major
	}
	return a.minor < b.minor
}
