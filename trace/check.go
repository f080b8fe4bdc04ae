package trace

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// CheckReport is what Check found in one run: each table's segments and
// rows, every damaged or foreign file, and the inconsistencies that are
// no single file's (row counts, time order).
type CheckReport struct {
	Dir      string `json:"dir"`
	RunID    string `json:"run_id,omitempty"`
	Status   string `json:"status,omitempty"`
	Complete bool   `json:"complete"`
	// MetaError says why meta.json could not be read (with file:line:column
	// for a syntax error); the segments are checked all the same.
	MetaError string       `json:"meta_error,omitempty"`
	Tables    []TableCheck `json:"tables"`
	Damage    []Damage     `json:"damage"`
	Problems  []Warning    `json:"problems"`
	// Partial lists leftover temporary files: the segment a killed recorder
	// was writing. They are what a kill costs, not damage.
	Partial []string `json:"partial,omitempty"`
	// Gaps are the spans with missing rows: meta.json's and the lost
	// segments'.
	Gaps []Gap `json:"gaps"`
}

// TableCheck is one table's account.
type TableCheck struct {
	Table string `json:"table"`
	// Segments counts the files read as segments; Verified those whose
	// SHA-256 matched the manifest, Validated those without a checksum
	// (format 1.0) checked by decoding them whole; Damaged those lost.
	Segments  int `json:"segments"`
	Verified  int `json:"verified"`
	Validated int `json:"validated"`
	Damaged   int `json:"damaged"`
	// Rows is the rows read; LostRows those of damaged segments, as far as
	// known (LostUnknown counts damaged segments of unknown size).
	Rows        int64 `json:"rows"`
	LostRows    int64 `json:"lost_rows"`
	LostUnknown int   `json:"lost_unknown,omitempty"`
	// MetaRows and MetaSegments are what meta.json's recorder section
	// says, when it says.
	MetaRows     *int64 `json:"meta_rows,omitempty"`
	MetaSegments *int   `json:"meta_segments,omitempty"`

	unknown   int   // LostUnknown before meta.json's count was applied
	knownLost int64 // LostRows before it
}

// Problem codes of a CheckReport.
const (
	ProblemMeta     = "meta_unreadable"   // meta.json missing or not valid
	ProblemRows     = "rows_mismatch"     // rows read plus lost differ from meta.json's count
	ProblemSegments = "segments_mismatch" // segments found differ from meta.json's count
	ProblemTime     = "time_backwards"    // a GPU's timestamps go back within a table
)

// OK reports whether the run is intact: meta.json reads, no file is
// damaged, foreign or stray, and the counts and time order hold.
func (c *CheckReport) OK() bool {
	return c.MetaError == "" && len(c.Damage) == 0 && len(c.Problems) == 0
}

// timeOrdered are the tables whose rows are in time order per GPU, across
// segments: the samples. (Events are stamped on arrival from several
// goroutines and are only ordered within a segment.)
var timeOrdered = []string{TableDriverPower, TableEnergy, TableState}

// Check verifies a run directory as fsck verifies a file system: meta.json
// parses; every segment matches its manifest checksum (or, in a run
// without one, decodes within its footer's counts and statistics) and
// decodes whole; each is this run's and this table's; the rows read and
// lost add up to meta.json's counts; every GPU's samples are in time
// order. Nothing is changed. The error is for a directory that cannot be
// listed at all; damage is in the report.
func Check(dir string) (*CheckReport, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	rep := &CheckReport{Dir: dir, Damage: []Damage{}, Problems: []Warning{}, Gaps: []Gap{}}
	m, err := ReadMeta(dir)
	if err != nil {
		rep.MetaError = err.Error()
		rep.Problems = append(rep.Problems, Warning{Code: ProblemMeta, Message: err.Error()})
		m = &Meta{} // segments are checked without a run id to compare
	}
	rep.RunID, rep.Status, rep.Complete = m.RunID, m.Status, m.Complete
	r, err := openWith(dir, m)
	if err != nil {
		return nil, err
	}
	for _, table := range Tables {
		if _, counted := m.Recorder.Rows[table]; table == TableHostEnergy && !counted && !r.hasFiles(table) {
			// An optional table added within 1.1 that this run never had:
			// left out, so that older runs report as they did before it.
			continue
		}
		tc := r.checkTable(table, rep)
		if n, ok := m.Recorder.Rows[table]; ok && m.Complete {
			tc.MetaRows = &n
			tc.unknown, tc.knownLost = tc.LostUnknown, tc.LostRows
			if tc.LostUnknown > 0 && n >= tc.Rows+tc.LostRows {
				// Segments of unknown size were lost (no manifest, no
				// footer): meta.json's count says how many rows they held.
				tc.LostRows, tc.LostUnknown = n-tc.Rows, 0
			}
			if tc.LostUnknown == 0 && tc.Rows+tc.LostRows != n {
				rep.Problems = append(rep.Problems, Warning{Code: ProblemRows, Message: fmt.Sprintf(
					"%s: %d rows read and %d lost, meta.json says %d: %d rows unaccounted for (a segment deleted or truncated)",
					table, tc.Rows, tc.LostRows, n, n-tc.Rows-tc.LostRows)})
			}
		}
		if n, ok := m.Recorder.Segments[table]; ok && m.Complete {
			tc.MetaSegments = &n
			if found := tc.Segments + r.missing(table); found != n {
				rep.Problems = append(rep.Problems, Warning{Code: ProblemSegments, Message: fmt.Sprintf(
					"%s: %d segments, meta.json says %d", table, found, n)})
			}
		}
		rep.Tables = append(rep.Tables, tc)
	}
	rep.Damage = r.Damage()
	for _, tc := range rep.Tables {
		if tc.MetaRows == nil || tc.unknown != 1 {
			continue
		}
		// One segment of unknown size lost: meta.json's count says how
		// many rows it held.
		for i, d := range rep.Damage {
			if d.Table == tc.Table && d.Lost && d.Rows < 0 {
				rep.Damage[i].Rows = tc.LostRows - tc.knownLost
			}
		}
	}
	rep.Gaps = append(rep.Gaps, r.Gaps()...)
	for _, p := range r.Partial {
		rep.Partial = append(rep.Partial, r.rel(p))
	}
	return rep, nil
}

// hasFiles reports whether the run has anything of a table: segments,
// leftover temporary files, a manifest or damage.
func (r *Run) hasFiles(table string) bool {
	if len(r.Segments[table]) > 0 || r.Manifests[table] != nil {
		return true
	}
	for _, p := range r.Partial {
		if filepath.Base(filepath.Dir(p)) == table {
			return true
		}
	}
	for _, d := range r.Damage() {
		if d.Table == table {
			return true
		}
	}
	return false
}

// missing counts the segments of a table that the manifest lists and that
// are gone.
func (r *Run) missing(table string) int {
	n := 0
	for _, d := range r.Damage() {
		if d.Table == table && d.Code == DamageMissing {
			n++
		}
	}
	return n
}

func (r *Run) checkTable(table string, rep *CheckReport) TableCheck {
	tc := TableCheck{Table: table, Segments: len(r.Segments[table])}
	ordered := slices.Contains(timeOrdered, table)
	last := map[int64]int64{} // GPU -> last timestamp
	backwards := map[int64]bool{}
	for _, path := range r.Segments[table] {
		pf := r.openSegment(table, path, nil)
		if pf == nil {
			continue
		}
		e, listed := r.entry(table, path)
		if listed {
			// The checksum proves the bytes are those written; decoding
			// them whole proves the writer wrote a readable segment.
			if err := validateSegment(pf); err != nil {
				r.lose(table, path, DamageUnreadable, err.Error(), pf)
				continue
			}
			tc.Verified++
		} else {
			tc.Validated++
		}
		var rows int64
		c := newColumns([]string{ColGPU, ColTimestampNs}, 8192)
		_, err := scanSegmentColumns(pf, c.names, 8192, func() *Columns { return c }, func(c *Columns) error {
			for i := 0; i < c.Len(); i++ {
				rows++
				if !ordered {
					continue
				}
				g, _ := c.Int(0, i)
				t, _ := c.Int(1, i)
				if prev, ok := last[g]; ok && t < prev && !backwards[g] {
					backwards[g] = true
					gi := int(g)
					rep.Problems = append(rep.Problems, Warning{Code: ProblemTime, GPU: &gi, Message: fmt.Sprintf(
						"%s: GPU %d: timestamps go back in %s, row %d: %s after %s (rows out of order: a segment from elsewhere, or damage)",
						table, g, r.rel(path), rows, fmtNs(t), fmtNs(prev))})
				}
				last[g] = t
			}
			return nil
		})
		if err != nil {
			r.lose(table, path, DamageUnreadable, err.Error(), pf)
			continue
		}
		if listed && rows != e.Rows {
			r.lose(table, path, DamageUnreadable, fmt.Sprintf("%d rows, the manifest says %d", rows, e.Rows), pf)
			continue
		}
		tc.Rows += rows
	}
	for _, d := range r.Damage() {
		if d.Table == table && d.Code == DamageForeign {
			tc.Segments-- // not this run's
		}
		if d.Table != table || !d.Lost {
			continue
		}
		tc.Damaged++
		if d.Rows >= 0 {
			tc.LostRows += d.Rows - d.RowsRead
		} else {
			tc.LostUnknown++
		}
	}
	return tc
}

// ArchiveRuns lists the runs under root: root itself if it is a run, else
// every directory below it that is one, at any depth, in name order. A
// run is a directory with meta.json or with a table folder (so that a run
// whose meta.json was lost is still found). An archive of runs is
// checked by checking each.
func ArchiveRuns(root string) ([]string, error) {
	if isRunDir(root) {
		return []string{root}, nil
	}
	var runs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || p == root {
			return nil
		}
		if isRunDir(p) {
			runs = append(runs, p)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: not an llem run (no %s and no table folders) and no runs inside it", root, MetaFile)
	}
	sort.Strings(runs)
	return runs, nil
}

func isRunDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil {
		return true
	}
	for _, t := range Tables {
		if st, err := os.Stat(filepath.Join(dir, t)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// LostSeconds sums the time spans of the damage that lost rows (spans of
// one table that overlap are counted once; those of different tables add).
func LostSeconds(ds []Damage) float64 {
	byTable := map[string][][2]int64{}
	for _, d := range ds {
		if d.Lost && d.HasSpan() {
			byTable[d.Table] = append(byTable[d.Table], [2]int64{d.StartNs, d.EndNs})
		}
	}
	var total float64
	for _, spans := range byTable {
		sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
		end := int64(math.MinInt64)
		for _, s := range spans {
			lo := max(s[0], end)
			if s[1] > lo {
				total += float64(s[1]-lo) / 1e9
			}
			end = max(end, s[1])
		}
	}
	return total
}
