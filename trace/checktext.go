package trace

import (
	"fmt"
	"io"
	"strings"
)

// WriteChecks writes llem check's text: each report (only those not
// intact when quiet), then, for several runs, how many are intact.
func WriteChecks(w io.Writer, reps []*CheckReport, quiet bool) {
	first, bad := true, 0
	for _, rep := range reps {
		if !rep.OK() {
			bad++
		}
		if quiet && rep.OK() {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		writeCheck(w, rep)
	}
	if len(reps) > 1 {
		if !first {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "checked %d runs: %d intact, %d damaged\n", len(reps), len(reps)-bad, bad)
	}
}

// writeCheck writes one run's report: meta.json, each table's segments and
// rows, each damaged or left-out file, each problem and gap, the result.
func writeCheck(w io.Writer, rep *CheckReport) {
	fmt.Fprintf(w, "%-13s %s\n", "run", rep.Dir)
	if rep.MetaError != "" {
		fmt.Fprintf(w, "%-13s UNREADABLE: %s\n", "meta.json", rep.MetaError)
	} else {
		status := rep.Status
		if !rep.Complete {
			status += " (incomplete: the recorder did not finish; its last rotation interval is not in the run)"
		}
		fmt.Fprintf(w, "%-13s ok: run %s, %s\n", "meta.json", rep.RunID, status)
	}
	for _, t := range rep.Tables {
		if t.Segments == 0 && t.Damaged == 0 {
			continue
		}
		how := []string{}
		if t.Verified > 0 {
			how = append(how, fmt.Sprintf("%d verified by checksum", t.Verified))
		}
		if t.Validated > 0 {
			how = append(how, fmt.Sprintf("%d without checksums (format 1.0), decoded and checked against their footers", t.Validated))
		}
		if t.Damaged > 0 {
			how = append(how, fmt.Sprintf("%d DAMAGED", t.Damaged))
		}
		counts := ""
		if t.MetaRows != nil {
			counts = fmt.Sprintf(" (meta.json: %d)", *t.MetaRows)
		}
		fmt.Fprintf(w, "%-13s %d segments, %d rows%s: %s\n", t.Table, t.Segments, t.Rows, counts, strings.Join(how, ", "))
	}
	for _, d := range rep.Damage {
		label := "damaged"
		if !d.Lost {
			label = "ignored"
			if d.Code == DamageUnverified || d.Code == DamageManifest {
				label = "warning"
			}
		}
		fmt.Fprintf(w, "%-13s [%s] %s\n", label, d.Code, d)
	}
	for _, p := range rep.Problems {
		if p.Code == ProblemMeta {
			continue // printed above
		}
		fmt.Fprintf(w, "%-13s [%s] %s\n", "problem", p.Code, p.Message)
	}
	for _, p := range rep.Partial {
		fmt.Fprintf(w, "%-13s %s: the segment being written when the recorder stopped; holds no rows\n", "partial", p)
	}
	for _, g := range rep.Gaps {
		if isDamageCode(g.Code) {
			continue // the damage line above says it
		}
		fmt.Fprintf(w, "%-13s [%s] %s\n", "gap", g.Code, g.Message)
	}
	if rep.OK() {
		fmt.Fprintf(w, "%-13s OK: intact\n", "result")
		return
	}
	var lostRows int64
	lostSegs, unknown := 0, 0
	for _, t := range rep.Tables {
		lostRows += t.LostRows
		lostSegs += t.Damaged
		unknown += t.LostUnknown
	}
	lost := "no segment lost"
	if lostSegs > 0 {
		lost = fmt.Sprintf("%s lost: %s", count(lostSegs, "segment"), count(int(lostRows), "row"))
		if unknown > 0 {
			lost += fmt.Sprintf(" and those of %s of unknown size", count(unknown, "segment"))
		}
		if s := LostSeconds(rep.Damage); s > 0 {
			lost += fmt.Sprintf(", %.1f s of table time", s)
		}
	}
	fmt.Fprintf(w, "%-13s DAMAGED: %s; %s, %s\n", "result", lost,
		count(len(rep.Damage), "damaged or foreign file"), count(len(rep.Problems), "problem"))
}

// count is "1 row", "2 rows".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
