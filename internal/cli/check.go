package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/trace"
)

func checkCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "check",
		Usage:     "verify runs or an archive of runs: checksums, every segment decodes, row counts, time order",
		ArgsUsage: "RUN_DIR|DIR...",
		Description: `Verifies each run as fsck verifies a file system, and changes nothing:
meta.json parses (a syntax error is given as file:line:column); every segment
matches the SHA-256 its writer put in the table's manifest.jsonl (runs of
format 1.0, without one, are checked by decoding every page against the
footer's counts and statistics) and decodes whole; every segment is this
run's and this table's; the rows read plus those lost add up to meta.json's
counts; each GPU's samples are in time order. A directory that is not a run
is searched, at any depth, for runs: an archive is checked run by run.

For each damaged file it prints the file, why, and what is lost: rows and the
time span they covered, which readers (info, analyze, ...) treat as a gap.

Exit status: 0 every run is intact; 1 damage or an inconsistency was found
in some run (or a directory could not be read); 2 a bad command line.

Examples:
   llem check runs/bs8
   llem check /archive/2026            # every run below it
   llem check --json runs/bs8 | jq '.[0].damage'`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON array, one report per run"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the runs that are not intact"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usagef("check: no run given; usage: llem check RUN_DIR|DIR...")
			}
			var dirs []string
			for _, a := range c.Args().Slice() {
				if strings.HasPrefix(a, "-") {
					return usagef("check: %s: flags go before the runs: llem check [--json] RUN_DIR|DIR...", a)
				}
				found, err := trace.FindRuns(a)
				if err != nil {
					return err
				}
				dirs = append(dirs, found...)
			}
			var reports []*trace.CheckReport
			bad := 0
			for _, dir := range dirs {
				rep, err := trace.Check(dir)
				if err != nil {
					return fmt.Errorf("check: %w", err)
				}
				reports = append(reports, rep)
				if !rep.OK() {
					bad++
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			} else {
				first := true
				for _, rep := range reports {
					if c.Bool("quiet") && rep.OK() {
						continue
					}
					if !first {
						fmt.Fprintln(c.App.Writer)
					}
					first = false
					printCheck(c.App.Writer, rep)
				}
				if len(reports) > 1 {
					if !first {
						fmt.Fprintln(c.App.Writer)
					}
					fmt.Fprintf(c.App.Writer, "checked %d runs: %d intact, %d damaged\n", len(reports), len(reports)-bad, bad)
				}
			}
			if bad > 0 {
				return exitError{1}
			}
			return nil
		},
	}
}

func printCheck(w io.Writer, rep *trace.CheckReport) {
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
			if d.Code == trace.DamageUnverified || d.Code == trace.DamageManifest {
				label = "warning"
			}
		}
		fmt.Fprintf(w, "%-13s [%s] %s\n", label, d.Code, d)
	}
	for _, p := range rep.Problems {
		if p.Code == trace.ProblemMeta {
			continue // printed above
		}
		fmt.Fprintf(w, "%-13s [%s] %s\n", "problem", p.Code, p.Message)
	}
	for _, p := range rep.Partial {
		fmt.Fprintf(w, "%-13s %s: the segment being written when the recorder stopped; holds no rows\n", "partial", p)
	}
	for _, g := range rep.Gaps {
		if g.Code == trace.DamageChecksum || g.Code == trace.DamageUnreadable || g.Code == trace.DamageMissing {
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
		if s := trace.LostSeconds(rep.Damage); s > 0 {
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
