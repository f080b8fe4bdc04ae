package report

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/llem/llem/analyze/bootstrap"
	"github.com/llem/llem/trace"
)

// Info writes `llem info`'s summary of a run: what it holds, with no
// methodology applied.
func Info(w io.Writer, s *trace.Summary) {
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
		// Absent data says "none", never a 0 that reads as a measurement.
		if g.DriverPowerRows > 0 {
			fmt.Fprintf(w, "  driver power  %d samples, %.1f Hz, largest gap %.0f ms, mean %.1f W\n",
				g.DriverPowerRows, g.DriverPowerHz, g.MaxDriverGapMs, g.MeanDriverPowerW)
		} else {
			fmt.Fprintf(w, "  driver power  none\n")
		}
		if g.StateRows > 0 {
			fmt.Fprintf(w, "  state         %d rows, %.1f Hz\n", g.StateRows, g.StateHz)
		} else {
			fmt.Fprintf(w, "  state         none\n")
		}
		resets := ""
		if g.CounterResets > 0 {
			resets = fmt.Sprintf(" (%d counter reset(s))", g.CounterResets)
		}
		switch {
		case g.EnergyReads >= 2:
			fmt.Fprintf(w, "  energy        %.1f J from the counter over %d reads%s\n", g.CounterEnergyJ, g.EnergyReads, resets)
		case g.EnergyReads == 1:
			fmt.Fprintf(w, "  energy        none (1 counter read)\n")
		default:
			fmt.Fprintf(w, "  energy        none (no counter)\n")
		}
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
	hostLines(w, s.Host)
	if len(s.Warnings) == 0 {
		fmt.Fprintf(w, "warnings  none\n")
	}
	for _, wn := range s.Warnings {
		fmt.Fprintf(w, "warning   %s\n", wn.Message)
	}
}

// hostLines writes the host's RAPL energy, apart from the GPUs', or why
// it was not recorded.
func hostLines(w io.Writer, h *trace.HostSummary) {
	if h == nil {
		return
	}
	if len(h.Domains) == 0 {
		fmt.Fprintf(w, "host      energy not recorded: %s\n", h.Reason)
		return
	}
	fmt.Fprintf(w, "host      RAPL energy, not included in the GPUs' energy\n")
	for _, d := range h.Domains {
		extra := ""
		if d.Wraps > 0 {
			extra += fmt.Sprintf(", %d wrap(s)", d.Wraps)
		}
		if d.Unexplained > 0 {
			extra += fmt.Sprintf(", %d unexplained decrease(s) left out", d.Unexplained)
		}
		if d.Reads >= 2 {
			fmt.Fprintf(w, "  %-14s%.1f J over %d reads%s\n", d.Name, d.EnergyJ, d.Reads, extra)
		} else {
			fmt.Fprintf(w, "  %-14snone (%d read(s))\n", d.Name, d.Reads)
		}
	}
}

// Interval writes `llem bootstrap`'s line, e.g.
//
//	mean 53.05  95% CI [32.31, 91.43]  (BCa, n=16, 2000 resamples, seed 0)
//
// or, with no interval, the estimate, "no 95% CI" and the note on a
// second line.
func Interval(w io.Writer, stat string, iv bootstrap.Interval) {
	method := iv.Method
	if method == bootstrap.MethodBCa {
		method = "BCa"
	}
	level := strconv.FormatFloat(100*iv.Confidence, 'g', 10, 64) + "% CI"
	how := fmt.Sprintf("(%s, n=%d, %d resamples, seed %d)", method, iv.N, iv.Resamples, iv.Seed)
	if iv.Degenerate {
		fmt.Fprintf(w, "%s %s  no %s  %s\n  %s\n", stat, strconv.FormatFloat(iv.Estimate, 'g', -1, 64), level, how, iv.Note)
		return
	}
	d := widthDecimals(iv.High - iv.Low)
	fmt.Fprintf(w, "%s %.*f  %s [%.*f, %.*f]  %s\n", stat, d, iv.Estimate, level, d, iv.Low, d, iv.High, how)
}

// widthDecimals shows an interval of the given width to about four
// significant digits: 2 decimals for a width of 59, 5 for 0.012, none for
// 12,000.
func widthDecimals(width float64) int {
	if !(width > 0) || math.IsInf(width, 0) {
		return 6
	}
	return min(15, max(0, 3-int(math.Floor(math.Log10(width)))))
}
