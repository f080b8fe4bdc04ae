package compare

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON writes res as one indented JSON document.
func JSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// Table writes res as benchstat-style text: one table per metric, a row
// per configuration (the baseline first) with its mean and CI, the change
// against the baseline with the CI of the ratio, and the U test's p. As in
// benchstat, the change reads "~" when p >= alpha.
func Table(w io.Writer, res *Result) error {
	s := res.Settings
	conf := fmtConf(s.Confidence)
	p := &printer{w: w}
	p.printf("configurations (the first is the baseline):\n")
	runs := map[string]RunInfo{}
	for _, r := range res.Runs {
		runs[r.Run] = r
	}
	for _, g := range res.Groups {
		var parts []string
		for _, name := range g.Runs {
			r := runs[name]
			c := "no cycles"
			switch {
			case r.Cycles == 1:
				c = "1 cycle"
			case r.Cycles > 1:
				c = fmt.Sprintf("%d cycles", r.Cycles)
			}
			if len(g.Runs) == 1 && name == g.Name {
				parts = append(parts, fmt.Sprintf("%s, labels %s", c, labelList(r.Labels)))
			} else {
				parts = append(parts, fmt.Sprintf("%s (%s)", name, c))
			}
		}
		p.printf("  %s: %s\n", g.Name, strings.Join(parts, ", "))
	}
	for _, r := range res.Runs {
		for _, n := range r.Notes {
			p.printf("note: %s: %s\n", r.Run, n)
		}
	}
	p.printf("mean with its %s BCa CI; vs base: change of the mean with the %s two-sample BCa CI of the ratio of means\n", conf, conf)
	p.printf("(%d resamples, seed %d); p: Mann-Whitney U test, two-sided; ~: no significant change (p >= %g)\n",
		s.Resamples, s.Seed, s.Alpha)

	for _, m := range res.Metrics {
		p.printf("\n%s (%s), per %s\n", m.Name, m.Unit, m.Sample)
		dec := decimals(m.Rows)
		num := func(v float64) string {
			if !finite(v) {
				return "-"
			}
			return strconv.FormatFloat(v, 'f', dec, 64)
		}
		cells := [][]string{{"", "mean", conf + " CI", "vs base", conf + " CI", "p", "n"}}
		for _, r := range m.Rows {
			est, ci := num(r.Estimate.Estimate), "-"
			if !r.Estimate.Degenerate {
				ci = "[" + num(r.Estimate.Low) + ", " + num(r.Estimate.High) + "]"
			}
			row := []string{r.Group, est, ci, "", "", "", strconv.Itoa(r.N)}
			if r.Baseline {
				row[3] = "base"
			}
			if c := r.Change; c != nil {
				row[3], row[4] = pct(float64(c.Pct)), "-"
				if !c.Ratio.Degenerate {
					row[4] = "[" + pct(float64(c.PctLow)) + ", " + pct(float64(c.PctHigh)) + "]"
				}
			}
			if t := r.Test; t != nil {
				if t.P.Valid() {
					row[5] = fmt.Sprintf("p=%.3f", float64(t.P))
					if !t.Significant {
						row[3] = "~"
					}
				} else {
					row[5] = "no test"
				}
			}
			cells = append(cells, row)
		}
		p.table(cells, []bool{false, true, false, true, false, false, true})
		for _, n := range m.Notes {
			p.printf("note: %s\n", n)
		}
		// Rows with fewer than two samples on either side are explained
		// by the notes above.
		for _, r := range m.Rows {
			if r.Baseline || r.N < 2 || m.Rows[0].N < 2 {
				continue
			}
			if r.Test != nil && r.Test.Note != "" {
				p.printf("note: %s: %s\n", r.Group, r.Test.Note)
			}
			if r.Change != nil && r.Change.Ratio.Degenerate && r.Change.Ratio.Note != "" {
				p.printf("note: %s: no CI of the change: %s\n", r.Group, r.Change.Ratio.Note)
			}
		}
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// table writes cells in columns two spaces apart; right[i] aligns column
// i to the right. Trailing blanks are trimmed.
func (p *printer) table(cells [][]string, right []bool) {
	width := make([]int, len(right))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if right[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		p.printf("%s\n", strings.TrimRight(b.String(), " "))
	}
}

// decimals gives every number of a table the same decimals: four
// significant digits of the smallest estimate (at most 6 decimals).
func decimals(rows []Row) int {
	small := math.Inf(1)
	for _, r := range rows {
		if v := math.Abs(r.Estimate.Estimate); finite(v) && v > 0 {
			small = min(small, v)
		}
	}
	if math.IsInf(small, 1) {
		return 2
	}
	return max(0, min(6, 3-int(math.Floor(math.Log10(small)))))
}

func pct(v float64) string {
	if !finite(v) {
		return "-"
	}
	return fmt.Sprintf("%+.2f%%", v)
}

// fmtConf writes 0.95 as 95%.
func fmtConf(c float64) string {
	return strconv.FormatFloat(c*100, 'f', -1, 64) + "%"
}

// CSVHeader is the first row CSV writes.
var CSVHeader = []string{"metric", "unit", "sample", "group", "baseline", "runs", "n",
	"mean", "ci_low", "ci_high", "confidence",
	"change_pct", "change_ci_low_pct", "change_ci_high_pct", "ratio", "ratio_ci_low", "ratio_ci_high",
	"test", "u", "z", "p", "alpha", "significant", "note"}

// CSV writes one row per metric and configuration. Missing numbers are
// empty; runs of a configuration are separated by ";".
func CSV(w io.Writer, res *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, m := range res.Metrics {
		for _, r := range m.Rows {
			var runs []string
			for _, g := range res.Groups {
				if g.Name == r.Group {
					runs = g.Runs
				}
			}
			var notes []string
			if r.Estimate.Note != "" {
				notes = append(notes, "estimate: "+r.Estimate.Note)
			}
			rec := []string{m.Key, m.Unit, m.Sample, r.Group, strconv.FormatBool(r.Baseline), strings.Join(runs, ";"),
				strconv.Itoa(r.N), csvNum(r.Estimate.Estimate), csvNum(r.Estimate.Low), csvNum(r.Estimate.High),
				csvNum(r.Estimate.Confidence)}
			if c := r.Change; c != nil {
				rec = append(rec, csvNum(float64(c.Pct)), csvNum(float64(c.PctLow)), csvNum(float64(c.PctHigh)),
					csvNum(c.Ratio.Estimate), csvNum(c.Ratio.Low), csvNum(c.Ratio.High))
				if c.Ratio.Note != "" {
					notes = append(notes, "change: "+c.Ratio.Note)
				}
			} else {
				rec = append(rec, "", "", "", "", "", "")
			}
			if t := r.Test; t != nil {
				sig := ""
				if t.P.Valid() {
					sig = strconv.FormatBool(t.Significant)
				}
				rec = append(rec, t.Method, csvNum(float64(t.U)), csvNum(float64(t.Z)), csvNum(float64(t.P)),
					csvNum(t.Alpha), sig)
				if t.Note != "" {
					notes = append(notes, "test: "+t.Note)
				}
			} else {
				rec = append(rec, "", "", "", "", "", "")
			}
			rec = append(rec, strings.Join(notes, "; "))
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvNum(v float64) string {
	if !finite(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
