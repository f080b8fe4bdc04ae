package trace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
)

// Run is an opened run directory: its metadata and the segment files of
// each table, in order.
//
// A damaged run is read, not refused: a segment that cannot be read or
// fails its checks is skipped, the rest is read, and each problem is kept
// as a Damage (Run.Damage), with the time it covered as a gap (Run.Gaps).
type Run struct {
	Dir  string
	Meta *Meta
	// Segments lists, per table, the files read as its segments, in order.
	Segments map[string][]string
	// Partial lists leftover temporary files (a segment being written when
	// the recorder was killed); they hold no readable rows and are ignored.
	Partial []string
	// Manifests holds each table's manifest (format 1.1 and later); a table
	// of an older run has none, and its segments are validated instead.
	Manifests map[string]*Manifest
	// OnRead, when set, is called with the size of each segment file as
	// it is read: how a long analysis shows its progress. It may be
	// called from several goroutines when tables are read in parallel.
	OnRead func(bytes int64)

	mu     sync.Mutex
	damage []Damage
	status map[string]segStatus // by segment path
}

// Open reads meta.json and lists the segments of every table. Files that
// are not the run's segments are left out and reported (Run.Damage), as
// are segments the manifest lists that are missing.
func Open(dir string) (*Run, error) {
	m, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	return openWith(dir, m)
}

// openWith lists the tables of a run whose meta.json has been read (or,
// for Check, could not be: then m is empty and no run id is checked).
func openWith(dir string, m *Meta) (*Run, error) {
	r := &Run{Dir: dir, Meta: m, Segments: map[string][]string{}, Manifests: map[string]*Manifest{},
		status: map[string]segStatus{}}
	for _, t := range Tables {
		if err := r.listTable(t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// listTable lists a table folder: its segments, leftover temporary files,
// its manifest, and what does not belong there.
func (r *Run) listTable(table string) error {
	tableDir := filepath.Join(r.Dir, table)
	entries, err := os.ReadDir(tableDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	man, err := readManifest(tableDir)
	if err != nil {
		return err
	}
	if man != nil {
		r.Manifests[table] = man
		for _, why := range man.Damaged {
			rel, _ := filepath.Rel(r.Dir, tableDir)
			r.report(Damage{Table: table, File: filepath.Join(rel, ManifestFile), Code: DamageManifest, Rows: -1,
				Reason: strings.TrimPrefix(why, filepath.Join(tableDir, ManifestFile)+":") + "; the segment it described is read unverified"})
		}
	}
	present := map[string]bool{}
	var tmp []string
	open := r.openSegmentName(table, entries)
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(tableDir, name)
		switch {
		case name == ManifestFile:
		case strings.HasSuffix(name, ".tmp"):
			tmp = append(tmp, name)
			r.Partial = append(r.Partial, path)
		case !e.Type().IsRegular() || !isSegmentName(name):
			r.report(Damage{Table: table, File: r.rel(path), Code: DamageStray, Rows: -1,
				Reason: "not a segment (segments are named part-NNNNNN.parquet): left out"})
		case name == open && man != nil && !hasEntry(man, name) && afterListed(man, path):
			// A segment that grows is listed when it is closed
			// (TableWriter.SetGrow): a recorder stopped before that left it
			// without a line.
			r.report(Damage{Table: table, File: r.rel(path), Code: DamageUnverified, Rows: -1,
				Reason: "the last segment, still open when the recorder stopped (it had no manifest line yet): read without a checksum, its pages, schema and statistics checked instead"})
			r.Segments[table] = append(r.Segments[table], path)
			present[name] = true
		case man != nil && !hasEntry(man, name) && len(man.Damaged) == 0 && !man.Torn:
			r.report(Damage{Table: table, File: r.rel(path), Code: DamageStray, Rows: -1,
				Reason: "not listed in " + ManifestFile + ": not written by this run's writer; left out"})
		default:
			if man != nil && !hasEntry(man, name) {
				r.report(Damage{Table: table, File: r.rel(path), Code: DamageUnverified, Rows: -1,
					Reason: "its manifest line is damaged or cut short: read without its checksum, its pages, schema and statistics checked instead"})
			}
			r.Segments[table] = append(r.Segments[table], path)
			present[name] = true
		}
	}
	sort.Strings(r.Segments[table]) // zero-padded numbers sort in write order
	if man == nil {
		return nil
	}
	for name, e := range man.Entries {
		// A segment renamed into place after its line was written; a kill
		// between the two leaves its .tmp, which is what a killed writer
		// loses anyway (docs/trace-format.md).
		if present[name] || slices.Contains(tmp, name+".tmp") {
			continue
		}
		rel, _ := filepath.Rel(r.Dir, filepath.Join(tableDir, name))
		r.report(Damage{Table: table, File: rel, Code: DamageMissing, Lost: true, Rows: e.Rows,
			Reason: "listed in " + ManifestFile + " but not there: deleted or moved", StartNs: e.FirstNs, EndNs: e.LastNs, SpanFrom: "manifest"})
	}
	return nil
}

// openSegmentName is the name of a table's last segment when its segments
// grow (driver_power from format 2 on; any version, for a run whose
// meta.json could not be read), else "".
func (r *Run) openSegmentName(table string, entries []os.DirEntry) string {
	if table != TableDriverPower {
		return ""
	}
	var major int
	if _, err := fmt.Sscanf(r.Meta.SchemaVersion, "%d.", &major); err == nil && major < 2 {
		return ""
	}
	last := ""
	for _, e := range entries {
		if isSegmentName(e.Name()) && e.Type().IsRegular() && e.Name() > last {
			last = e.Name()
		}
	}
	return last
}

// afterListed reports whether the segment at path, by its footer, begins
// after every segment the manifest lists ends, as the open segment of a
// growing table does; a copy of a listed segment, or one from elsewhere,
// does not.
func afterListed(m *Manifest, path string) bool {
	lo, _, ok := fileSpan(path)
	if !ok {
		return false
	}
	for _, e := range m.Entries {
		if e.LastNs >= lo {
			return false
		}
	}
	return true
}

func hasEntry(m *Manifest, name string) bool {
	_, ok := m.Entries[name]
	return ok
}

// callbackError carries an error of the caller's function through a scan,
// so that it is returned, not taken for damage.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// ScanTable streams a table segment by segment, calling fn with batches of
// at most batch rows. Memory stays bounded by one segment's bytes and one
// batch, whatever the length of the run. A segment that cannot be read is
// skipped and reported (Run.Damage); the error returned is fn's, or one
// that stops the whole run from being read.
func ScanTable[T any](r *Run, table string, batch int, fn func(rows []T) error) error {
	if batch <= 0 {
		batch = 8192
	}
	buf := make([]T, batch)
	for _, path := range r.Segments[table] {
		pf := r.openSegment(table, path, nil)
		if pf == nil {
			continue
		}
		read, err := scanSegment(pf, buf, fn)
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

// setRowsRead records how many rows of a lost segment were handed over
// before the damage was met.
func (r *Run) setRowsRead(path string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rel := r.rel(path)
	for i := range r.damage {
		if r.damage[i].File == rel && r.damage[i].Lost {
			r.damage[i].RowsRead = n
		}
	}
}

func scanSegment[T any](pf *parquet.File, buf []T, fn func(rows []T) error) (read int64, err error) {
	if dp, ok := any(buf).([]DriverPowerSample); ok {
		if major, _ := versionOf(pf); major >= 2 {
			f := any(fn).(func([]DriverPowerSample) error)
			return scanDriverPower(pf, dp, f)
		}
	}
	return scanRows(pf, buf, fn)
}

// scanDriverPower reads a format 2 driver_power segment (driverPowerRow)
// as DriverPowerSample rows.
func scanDriverPower(pf *parquet.File, buf []DriverPowerSample, fn func(rows []DriverPowerSample) error) (int64, error) {
	stored := make([]driverPowerRow, len(buf))
	return scanRows(pf, stored, func(rows []driverPowerRow) error {
		out := buf[:len(rows)]
		for i, r := range rows {
			out[i] = DriverPowerSample{GPU: r.GPU, TimestampNs: r.TimestampUs * 1000, DriverPowerMw: int64(r.DriverPowerMw)}
		}
		return fn(out)
	})
}

func scanRows[T any](pf *parquet.File, buf []T, fn func(rows []T) error) (read int64, err error) {
	rd := parquet.NewGenericReader[T](pf)
	defer rd.Close()
	// Never ask for more rows than the segment has left: parquet-go
	// v0.32 decodes a page header for every row requested past the end of
	// a column chunk, which made a 16k-row buffer cost ~15 ms per small
	// segment (bench/synth: 11 s for 29k energy rows in 720 segments).
	left := pf.NumRows()
	for left > 0 {
		want := buf
		if int64(len(want)) > left {
			want = want[:left]
		}
		n, err := readRows(rd, want)
		left -= int64(n)
		read += int64(n)
		if n > 0 {
			if ferr := fn(buf[:n]); ferr != nil {
				return read, callbackError{ferr}
			}
		}
		if errors.Is(err, io.EOF) {
			if left > 0 {
				return read, fmt.Errorf("%d rows promised by the footer could not be read", left)
			}
			return read, nil
		}
		if err != nil {
			return read, err
		}
		if n == 0 {
			return read, fmt.Errorf("%d rows promised by the footer could not be read", left)
		}
	}
	return read, nil
}

// readRows is one Read of the decoder, a panic on damaged data included.
func readRows[T any](rd *parquet.GenericReader[T], rows []T) (n int, err error) {
	defer decodeFailure(&err)
	return rd.Read(rows)
}

// ReadTable loads a whole table into memory. Use ScanTable for long runs.
func ReadTable[T any](r *Run, table string) ([]T, error) {
	var all []T
	err := ScanTable(r, table, 0, func(rows []T) error {
		all = append(all, rows...)
		return nil
	})
	return all, err
}

func fileBytes(paths []string) int64 {
	var n int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}
