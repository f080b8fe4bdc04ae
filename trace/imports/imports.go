// Package imports writes runs of llem's trace format from other tools'
// logs. It is shared by every importer: an importer parses its format and
// hands rows, GPU descriptions and what the source could not tell to a
// Writer; the Writer hashes the inputs, sorts the rows and writes the run.
//
// An import is reproducible: the same input files (same bytes, given by the
// same paths) imported by the same llem give a byte-identical run
// directory. The run id is derived from the files' hashes, rows are sorted
// stably, and nothing depends on the clock or the host.
package imports

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/llem/llem/trace"
)

// DefaultSegmentRows bounds the rows of one segment of an imported table.
const DefaultSegmentRows = 100_000

// TimestampUnits is meta.json's clock.timestamp_units, as the recorder writes it.
const TimestampUnits = "ns since Unix epoch"

// Writer collects an import's rows and metadata in memory and writes the
// run directory on Close. Rows may be added in any order. A Writer is not
// safe for concurrent use.
type Writer struct {
	// LlemVersion is written to meta.json's llem_version; set it before Close.
	LlemVersion string
	// SegmentRows bounds the rows of one Parquet segment [DefaultSegmentRows].
	SegmentRows int

	dir      string
	format   string
	files    []trace.SourceFile
	runID    string
	driver   []trace.DriverPowerSample
	state    []trace.DeviceState
	energy   []trace.EnergyRead
	events   []trace.Event
	gpus     []trace.GPUInfo
	unknown  []string
	notes    map[string]string
	warnings []trace.Warning
	gaps     []trace.Gap
	closed   bool
	summary  Summary
}

// Summary describes a written run.
type Summary struct {
	Dir     string
	Rows    map[string]int64 // rows per table
	GPUs    int
	StartNs int64 // first timestamp of any row
	EndNs   int64 // last timestamp of any row
	// Warnings are those written to meta.json.
	Warnings []trace.Warning
	// Gaps are meta.json's: spans with no samples, and steps back of the
	// log's clock.
	Gaps []trace.Gap
}

// Outcome is what an import tells its user beyond the run's rows.
type Outcome struct {
	Skipped, Lines int      // of the input's data lines
	Devices        string   // what the run's devices are ["GPU(s)"]
	Zone           string   // what the times are ["time zone unknown"]
	Extra          []string // lines printed after the summary
}

// Print writes an import's one-line summary and its outcome to w, its
// warnings to errw, and the next step.
func (s Summary) Print(w, errw io.Writer, o Outcome, nfiles int) {
	span := time.Duration(s.EndNs - s.StartNs)
	start := time.Unix(0, s.StartNs).UTC().Format("2006-01-02 15:04:05.000")
	devices, zone := cmp.Or(o.Devices, "GPU(s)"), cmp.Or(o.Zone, "time zone unknown")
	fmt.Fprintf(w, "imported %d rows from %d file(s): %d %s, %.1f s from %s (%s), %d of %d lines skipped -> %s\n",
		s.TotalRows(), nfiles, s.GPUs, devices, span.Seconds(), start, zone, o.Skipped, o.Lines, s.Dir)
	for _, wn := range s.Warnings {
		fmt.Fprintf(errw, "llem: import: warning: %s\n", wn.Message)
	}
	for _, x := range o.Extra {
		fmt.Fprintln(w, x)
	}
	fmt.Fprintf(w, "see: llem analyze %s\n", s.Dir)
}

// TotalRows is the number of rows over every table.
func (s Summary) TotalRows() int64 {
	var n int64
	for _, r := range s.Rows {
		n += r
	}
	return n
}

// Create prepares an import of files, in the named format, into outDir.
// outDir must not exist or be an empty directory: an import never
// overwrites a run. Each file is hashed (SHA-256 of its bytes) into
// meta.json's source; nothing is written before Close.
func Create(outDir, format string, files []string) (*Writer, error) {
	if outDir == "" {
		return nil, errors.New("import: no output directory")
	}
	if format == "" {
		return nil, errors.New("import: no format")
	}
	if len(files) == 0 {
		return nil, errors.New("import: no input file")
	}
	if err := checkEmpty(outDir); err != nil {
		return nil, err
	}
	w := &Writer{dir: outDir, format: format, SegmentRows: DefaultSegmentRows, notes: map[string]string{}}
	seen := map[string]string{}
	id := sha256.New()
	fmt.Fprintf(id, "llem import\n%s\n", format)
	for _, path := range files {
		sf, err := hashFile(path)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[sf.SHA256]; dup {
			return nil, fmt.Errorf("import: %s and %s have the same content: give each log once", prev, path)
		}
		seen[sf.SHA256] = path
		w.files = append(w.files, sf)
		fmt.Fprintf(id, "%s\n", sf.SHA256)
	}
	w.runID = hex.EncodeToString(id.Sum(nil)[:8])
	return w, nil
}

// checkEmpty accepts a directory that does not exist or holds nothing.
func checkEmpty(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("import: %s exists and is not a directory: give a new directory for the run", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("import: %s already exists and is not empty (it holds %s): give a new directory; an import never overwrites a run",
			dir, entries[0].Name())
	}
	return nil
}

func hashFile(path string) (trace.SourceFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return trace.SourceFile{}, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return trace.SourceFile{}, fmt.Errorf("import: reading %s: %w", path, err)
	}
	return trace.SourceFile{Path: filepath.Clean(path), SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: n}, nil
}

// Dir is the run directory the Writer writes.
func (w *Writer) Dir() string { return w.dir }

// RunID is the run's id: derived from the format and the input files'
// hashes, so re-importing the same files gives the same id.
func (w *Writer) RunID() string { return w.runID }

// Files are the input files with their hashes, in the order given.
func (w *Writer) Files() []trace.SourceFile { return slices.Clone(w.files) }

// Driver adds driver power-buffer samples.
func (w *Writer) Driver(rows ...trace.DriverPowerSample) { w.driver = append(w.driver, rows...) }

// State adds device-state rows. The Writer keeps its own copy of the row
// structs but not of the values they point to: do not change those later.
func (w *Writer) State(rows ...trace.DeviceState) { w.state = append(w.state, rows...) }

// TakeState adds device-state rows as State does, but takes rows itself
// when it is the first: a large log's rows are then held once, not twice
// (a 206 MB nvidia-smi log is 2.5 million rows). The caller must not use
// rows afterwards.
func (w *Writer) TakeState(rows []trace.DeviceState) {
	if len(w.state) == 0 {
		w.state = rows
		return
	}
	w.state = append(w.state, rows...)
}

// Energy adds energy-counter reads.
func (w *Writer) Energy(rows ...trace.EnergyRead) { w.energy = append(w.energy, rows...) }

// Events adds events.
func (w *Writer) Events(rows ...trace.Event) { w.events = append(w.events, rows...) }

// SetGPUs describes the GPUs (replacing any earlier description). A GPU
// that has rows but no description gets a minimal one on Close.
func (w *Writer) SetGPUs(gpus []trace.GPUInfo) {
	w.gpus = slices.Clone(gpus)
	for i := range w.gpus {
		if w.gpus[i].Processes == nil {
			w.gpus[i].Processes = []trace.GPUProcess{}
		}
	}
}

// Unknown records something the source could not tell ("energy counter",
// "driver power samples", "persistence mode"). Repeats are kept once, in
// the order first given.
func (w *Writer) Unknown(field string) {
	if !slices.Contains(w.unknown, field) {
		w.unknown = append(w.unknown, field)
	}
}

// Note records a fact about the source in meta.json's source.notes; a
// later note with the same key replaces the earlier one.
func (w *Writer) Note(key, value string) { w.notes[key] = value }

// Warn adds a warning to meta.json; llem info and llem analyze print it.
func (w *Writer) Warn(wn trace.Warning) { w.warnings = append(w.warnings, wn) }

// Gap records a span with no data, for meta.json's gaps. Close adds those
// it finds itself: every step forward in a device's samples longer than
// GapPeriods periods and MinGap.
func (w *Writer) Gap(g trace.Gap) { w.gaps = append(w.gaps, g) }

// SkippedLines records that an importer skipped lines it could not read:
// a warning quoting the first reasons, and the count in the notes.
func SkippedLines[E error](w *Writer, skipped, dataLines int, reasons []E) {
	if skipped == 0 {
		return
	}
	var parts []string
	for _, r := range reasons {
		parts = append(parts, r.Error())
	}
	more := ""
	if skipped > len(reasons) {
		more = "; ..."
	}
	w.Warn(trace.Warning{Code: "import_skipped_lines", Message: fmt.Sprintf(
		"%d of %d data lines could not be read and were skipped: %s%s", skipped, dataLines, strings.Join(parts, "; "), more)})
	w.Note("skipped_lines", fmt.Sprint(skipped))
}

// Summary describes the written run; it is valid after a successful Close.
func (w *Writer) Summary() Summary { return w.summary }

// Close sorts and writes every table that has rows, then meta.json (last,
// so a directory without meta.json is never mistaken for a run). On an
// error it removes what it wrote.
func (w *Writer) Close() (err error) {
	if w.closed {
		return errors.New("import: Close called twice")
	}
	w.closed = true
	if err := checkEmpty(w.dir); err != nil {
		return err
	}
	createdDir := false
	if _, statErr := os.Stat(w.dir); errors.Is(statErr, os.ErrNotExist) {
		createdDir = true
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer func() {
		if err != nil { // the directory was empty at Create: remove only what this wrote
			for _, t := range trace.Tables {
				os.RemoveAll(filepath.Join(w.dir, t))
			}
			os.Remove(filepath.Join(w.dir, trace.MetaFile))
			os.Remove(filepath.Join(w.dir, trace.MetaFile+".tmp"))
			if createdDir {
				os.Remove(w.dir)
			}
		}
	}()

	start, end := int64(math.MaxInt64), int64(math.MinInt64)
	span := func(ts int64) { start, end = min(start, ts), max(end, ts) }
	present := map[int32]bool{}
	for _, r := range w.driver {
		span(r.TimestampNs)
		present[r.GPU] = true
	}
	for _, r := range w.state {
		span(r.TimestampNs)
		present[r.GPU] = true
	}
	for _, r := range w.energy {
		span(r.TimestampNs)
		present[r.GPU] = true
	}
	for _, r := range w.events {
		span(r.TimestampNs)
	}
	if start > end {
		return errors.New("import: nothing to write: no rows were read")
	}

	rows := map[string]int64{}
	segs := map[string]int{}
	// Rows are sorted by time, then GPU, so that segments are slices of
	// time as the recorder writes them; TableWriter orders each segment
	// by GPU, then time.
	if err := writeTable(w, trace.TableDriverPower, w.driver, trace.CompareDriverPower,
		func(a, b trace.DriverPowerSample) int {
			return cmp.Or(cmp.Compare(a.TimestampNs, b.TimestampNs), cmp.Compare(a.GPU, b.GPU))
		}, rows, segs); err != nil {
		return err
	}
	if err := writeTable(w, trace.TableEnergy, w.energy, trace.CompareEnergy,
		func(a, b trace.EnergyRead) int {
			return cmp.Or(cmp.Compare(a.TimestampNs, b.TimestampNs), cmp.Compare(a.GPU, b.GPU))
		}, rows, segs); err != nil {
		return err
	}
	if err := writeTable(w, trace.TableState, w.state, trace.CompareState,
		func(a, b trace.DeviceState) int {
			return cmp.Or(cmp.Compare(a.TimestampNs, b.TimestampNs), cmp.Compare(a.GPU, b.GPU))
		}, rows, segs); err != nil {
		return err
	}
	if err := writeTable(w, trace.TableEvents, w.events, trace.CompareEvent, trace.CompareEvent, rows, segs); err != nil {
		return err
	}
	rows[trace.TableBadEvents], segs[trace.TableBadEvents] = 0, 0 // importers have no client lines

	gpus := slices.Clone(w.gpus)
	for i := range present {
		if i < 0 {
			continue
		}
		if !slices.ContainsFunc(gpus, func(g trace.GPUInfo) bool { return g.Index == int(i) }) {
			gpus = append(gpus, trace.GPUInfo{Index: int(i), Name: "unknown GPU", Processes: []trace.GPUProcess{}})
		}
	}
	slices.SortStableFunc(gpus, func(a, b trace.GPUInfo) int { return cmp.Compare(a.Index, b.Index) })
	indexes := []int{}
	for _, g := range gpus {
		indexes = append(indexes, g.Index)
	}
	w.writeGaps()
	warnings := slices.Clone(w.warnings)
	if warnings == nil {
		warnings = []trace.Warning{}
	}
	var notes map[string]string
	if len(w.notes) > 0 {
		notes = w.notes
	}
	m := &trace.Meta{
		SchemaVersion: trace.SchemaVersion,
		RunID:         w.runID,
		LlemVersion:   w.LlemVersion,
		Complete:      true,
		Status:        trace.StatusComplete,
		Device:        "import:" + w.format,
		Clock:         trace.ClockAnchor{WallStartNs: start, TimestampUnits: TimestampUnits},
		Settings:      trace.RecordSettings{GPUs: indexes},
		GPUs:          gpus,
		Warnings:      warnings,
		Recorder:      trace.RecorderStats{Rows: rows, Segments: segs, Loops: map[string]trace.LoopStats{}},
		Source: &trace.SourceInfo{
			Format:  w.format,
			Files:   w.files,
			Unknown: w.unknown,
			Notes:   notes,
		},
		Gaps: w.gaps,
	}
	if err := trace.WriteMeta(w.dir, m); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	w.summary = Summary{Dir: w.dir, Rows: rows, GPUs: len(gpus), StartNs: start, EndNs: end, Warnings: warnings, Gaps: w.gaps}
	return nil
}

// writeTable sorts rows with order and writes them as segments of at most
// w.SegmentRows rows, each ordered by within. A table without rows writes
// nothing, not even its folder.
func writeTable[T any](w *Writer, table string, rows []T, within, order func(a, b T) int,
	counts map[string]int64, segs map[string]int) error {
	counts[table], segs[table] = 0, 0
	if len(rows) == 0 {
		return nil
	}
	slices.SortStableFunc(rows, order)
	tw, err := trace.NewTableWriter(w.dir, table, w.runID, within)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	n := w.SegmentRows
	if n <= 0 {
		n = DefaultSegmentRows
	}
	tw.SetMaxRows(n)
	if err := tw.Add(rows...); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	counts[table], segs[table] = tw.Rows(), tw.Segments()
	return nil
}
