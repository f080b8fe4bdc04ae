package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/trace"
)

func infoCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "info",
		Usage:     "summarise recorded runs: duration, GPUs, sample rates, counter energy, events, warnings",
		ArgsUsage: "RUN_DIR...",
		Description: `Prints what a run holds, with no methodology applied: use llem analyze for
measured windows, baselines and confidence intervals.

Examples:
   llem info llem-run-20261126-101500-gpu01
   llem info --json runs/* | jq '.[].gpus[0].driver_power_hz'`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON array, one object per run"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usagef("info: no run given; usage: llem info RUN_DIR...")
			}
			var all []*trace.Summary
			for _, dir := range c.Args().Slice() {
				r, err := trace.Open(dir)
				if err != nil {
					return err
				}
				s, err := trace.Summarize(r)
				if err != nil {
					return err
				}
				all = append(all, s)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			for i, s := range all {
				if i > 0 {
					fmt.Fprintln(c.App.Writer)
				}
				printSummary(c.App.Writer, s)
			}
			return nil
		},
	}
}

func printSummary(w io.Writer, s *trace.Summary) {
	fmt.Fprintf(w, "run       %s\n", s.Dir)
	status := s.Status
	if !s.Complete {
		status += " (INCOMPLETE: the recorder did not finish; the last segment interval may be missing)"
	}
	fmt.Fprintf(w, "status    %s\n", status)
	fmt.Fprintf(w, "device    %s\n", s.Device)
	if len(s.Command) > 0 {
		code := "?"
		if s.ExitCode != nil {
			code = fmt.Sprint(*s.ExitCode)
		}
		fmt.Fprintf(w, "command   %s (exit %s)\n", strings.Join(s.Command, " "), code)
	}
	fmt.Fprintf(w, "duration  %.1f s\n", s.DurationS)
	fmt.Fprintf(w, "size      %.1f KiB\n", float64(s.Bytes)/1024)
	for _, g := range s.GPUs {
		lost := ""
		if g.Lost {
			lost = "  LOST during the run"
		}
		fmt.Fprintf(w, "gpu %d     %s%s\n", g.Index, g.Name, lost)
		fmt.Fprintf(w, "  driver power  %d samples, %.1f Hz, largest gap %.0f ms, mean %.1f W\n",
			g.DriverPowerRows, g.DriverPowerHz, g.MaxDriverGapMs, g.MeanDriverPowerW)
		fmt.Fprintf(w, "  state         %d rows, %.1f Hz\n", g.StateRows, g.StateHz)
		resets := ""
		if g.CounterResets > 0 {
			resets = fmt.Sprintf(" (%d counter reset(s))", g.CounterResets)
		}
		fmt.Fprintf(w, "  energy        %.1f J from the counter over %d reads%s\n", g.CounterEnergyJ, g.EnergyReads, resets)
	}
	kinds := make([]string, 0, len(s.EventKinds))
	for k := range s.EventKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.EventKinds[k]))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "events    %s\n", strings.Join(parts, ", "))
	if s.BadEvents > 0 {
		fmt.Fprintf(w, "bad       %d bad event line(s) (see the bad_events table)\n", s.BadEvents)
	}
	if s.SimTruth != nil {
		fmt.Fprintf(w, "truth     %.1f J (simulated), steady from %.1f s at %.1f W\n",
			s.SimTruth.EnergyJ, s.SimTruth.SteadyStartS, s.SimTruth.SteadyMeanPowerW)
	}
	if len(s.Warnings) == 0 && len(s.Damage) == 0 && len(s.Gaps) == 0 {
		fmt.Fprintf(w, "warnings  none\n")
	}
	for _, wn := range s.Warnings {
		fmt.Fprintf(w, "warning   %s\n", wn.Message)
	}
	for _, d := range s.Damage {
		label := "damaged"
		if !d.Lost {
			label = "ignored"
		}
		fmt.Fprintf(w, "%-9s [%s] %s\n", label, d.Code, d)
	}
	for _, g := range s.Gaps {
		if g.Code == trace.DamageChecksum || g.Code == trace.DamageUnreadable || g.Code == trace.DamageMissing {
			continue // its damage line says it
		}
		fmt.Fprintf(w, "gap       [%s] %s\n", g.Code, g.Message)
	}
	if len(s.Damage) > 0 {
		fmt.Fprintf(w, "          (llem check %s verifies every segment)\n", s.Dir)
	}
}
