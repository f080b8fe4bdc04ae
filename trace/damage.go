package trace

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Damage codes, stable for scripts.
const (
	// DamageUnreadable: a segment that does not decode (truncated, a bad
	// footer, a page that fails its checksum, a schema that is not its
	// table's, values outside its own statistics). Its rows are lost.
	DamageUnreadable = "segment_unreadable"
	// DamageChecksum: a segment whose bytes differ from the SHA-256 its
	// writer recorded in the manifest. Its rows are lost.
	DamageChecksum = "segment_checksum"
	// DamageMissing: a segment the manifest lists that is not there. Its
	// rows are lost.
	DamageMissing = "segment_missing"
	// DamageForeign: a segment of another run or another table (by the
	// llem.run_id and llem.table of its metadata), left out.
	DamageForeign = "segment_foreign"
	// DamageStray: a file in a table folder that is not one of the run's
	// segments (a "part-000003 (copy).parquet", a segment the manifest does
	// not list), left out.
	DamageStray = "stray_file"
	// DamageManifest: a manifest line that fails its checksum or does not
	// parse. Nothing is lost by itself; the segment it described is read
	// unverified.
	DamageManifest = "manifest_damaged"
	// DamageUnverified: a segment of a run that has a manifest, read
	// although no intact manifest line vouches for it (its line is damaged).
	// Its page checksums, schema and statistics were checked instead.
	DamageUnverified = "segment_unverified"
)

// Damage is a problem found in one file of a run: a segment that could not
// be read (its rows are lost and the time it covered is a gap), or a file
// that was left out because it is not the run's. Readers report it and go
// on: a damaged run is read, not refused.
type Damage struct {
	Table string `json:"table,omitempty"`
	// File is the path relative to the run directory.
	File   string `json:"file"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	// Lost is true when rows of the run were lost: the segment was not
	// read, or not all of it (RowsRead). A file left out, or a segment read
	// without a checksum, loses nothing.
	Lost bool `json:"lost"`
	// Rows is how many rows the segment held, -1 when unknown (no manifest
	// and no readable footer); RowsRead is how many were read before the
	// damage was met (0 nearly always: a segment is checked before its rows
	// are handed over).
	Rows     int64 `json:"rows"`
	RowsRead int64 `json:"rows_read,omitempty"`
	// StartNs and EndNs bound the time of the lost rows. SpanFrom says
	// where they come from, "" when unknown: "manifest" (what the writer
	// recorded), "footer" (the damaged segment's own statistics, which may
	// be damaged too) or "neighbours" (the last row of the segment before
	// it and the first of the one after it).
	StartNs  int64  `json:"start_ns,omitempty"`
	EndNs    int64  `json:"end_ns,omitempty"`
	SpanFrom string `json:"span_from,omitempty"`
}

// HasSpan reports whether the lost rows' time is known.
func (d Damage) HasSpan() bool { return d.SpanFrom != "" }

// String describes the damage in one line: file, why, and what is lost.
func (d Damage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", d.File, d.Reason)
	if !d.Lost {
		return b.String()
	}
	switch {
	case d.Rows >= 0:
		fmt.Fprintf(&b, "; %d of its %d rows lost", d.Rows-d.RowsRead, d.Rows)
	default:
		b.WriteString("; its rows are lost (how many is unknown)")
	}
	if d.HasSpan() {
		fmt.Fprintf(&b, ", %s to %s (%.1f s, from the %s)", fmtNs(d.StartNs), fmtNs(d.EndNs),
			float64(d.EndNs-d.StartNs)/1e9, d.SpanFrom)
	} else {
		b.WriteString(", time span unknown")
	}
	return b.String()
}

func fmtNs(ns int64) string {
	if ns == 0 {
		return "?"
	}
	return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000")
}

// report adds d to the run's damage, once per file and code.
func (r *Run) report(d Damage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.damage {
		if x.File == d.File && x.Code == d.Code {
			return
		}
	}
	r.damage = append(r.damage, d)
}

// Damage lists every problem found in the run's files so far, in table
// order, then by file. Open finds stray and missing files; the rest is
// found while tables are read, so call it after reading (or use Check to
// verify every segment at once).
func (r *Run) Damage() []Damage {
	r.mu.Lock()
	out := slices.Clone(r.damage)
	r.mu.Unlock()
	order := func(table string) int {
		if i := slices.Index(Tables, table); i >= 0 {
			return i
		}
		return len(Tables)
	}
	slices.SortStableFunc(out, func(a, b Damage) int {
		if c := order(a.Table) - order(b.Table); c != 0 {
			return c
		}
		return strings.Compare(a.File, b.File)
	})
	return out
}

// Lost reports whether any damage found so far lost rows.
func (r *Run) Lost() bool {
	for _, d := range r.Damage() {
		if d.Lost {
			return true
		}
	}
	return false
}

// Gap is a span of a run in which rows of a table are missing: a segment
// that was lost, or a break in an imported log (the tool stopped, its
// clock jumped). The rows on either side are real; nothing between them
// may be interpolated or integrated across (an energy counter read on both
// sides still gives the energy across it).
type Gap struct {
	// Table is the table with missing rows, "" for every table.
	Table string `json:"table,omitempty"`
	// GPU is the device concerned, nil for every device.
	GPU *int `json:"gpu,omitempty"`
	// StartNs and EndNs bound the gap: the last row before it and the
	// first after it for an import's gap; the earliest and latest time of
	// the lost rows for a lost segment.
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`
	// Code says what made the gap: a Damage code for a lost segment, or an
	// importer's (import_gap, import_clock_back, ...).
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Gaps lists the spans of the run with missing rows: those meta.json
// records (an importer's) and those of every lost segment whose time span
// is known, sorted by start. Like Damage, it grows as tables are read.
// A lost segment of unknown span is in Damage only.
func (r *Run) Gaps() []Gap {
	var gaps []Gap
	if r.Meta != nil {
		gaps = append(gaps, r.Meta.Gaps...)
	}
	for _, d := range r.Damage() {
		if d.Lost && d.HasSpan() {
			gaps = append(gaps, Gap{Table: d.Table, StartNs: d.StartNs, EndNs: d.EndNs, Code: d.Code, Message: d.String()})
		}
	}
	slices.SortStableFunc(gaps, func(a, b Gap) int {
		switch {
		case a.StartNs < b.StartNs:
			return -1
		case a.StartNs > b.StartNs:
			return 1
		}
		return 0
	})
	return gaps
}

// WriteDamage writes a run's damage and gaps for llem info, a line each
// (nothing when there is none): lost files, files left out, then the gaps
// no damage line already gives.
func WriteDamage(w io.Writer, dir string, ds []Damage, gaps []Gap) {
	for _, d := range ds {
		label := "damaged"
		if !d.Lost {
			label = "ignored"
		}
		fmt.Fprintf(w, "%-9s [%s] %s\n", label, d.Code, d)
	}
	for _, g := range gaps {
		if isDamageCode(g.Code) {
			continue // its damage line says it
		}
		fmt.Fprintf(w, "gap       [%s] %s\n", g.Code, g.Message)
	}
	if len(ds) > 0 {
		fmt.Fprintf(w, "          (llem check %s verifies every segment)\n", dir)
	}
}

// isDamageCode reports whether a gap's code is a lost segment's.
func isDamageCode(code string) bool {
	switch code {
	case DamageChecksum, DamageUnreadable, DamageMissing:
		return true
	}
	return false
}
