// Package report renders analysis results for people (a terminal table)
// and for sweeps (CSV). The JSON document is the results themselves.
package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
)

// Table writes one block per run: the windows (energy per output token
// first), then cycles, steady state, baselines, latency, thermal checks,
// sensors and warnings.
func Table(w io.Writer, res *analyze.Results) error {
	for i := range res.Runs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := runTable(w, res, &res.Runs[i]); err != nil {
			return err
		}
	}
	return nil
}

func runTable(w io.Writer, res *analyze.Results, r *analyze.RunResult) error {
	status := r.Status
	if !r.Complete {
		status = "INCOMPLETE (" + r.Status + ")"
	}
	var gpus []string
	for _, g := range r.GPUs {
		name := g.Name
		if g.Node != "" {
			name = gpuLabel(r, g.Index) + " " + name
		}
		if g.Lost {
			name += " (LOST during the run)"
		}
		gpus = append(gpus, fmt.Sprintf("%d %s", g.Index, name))
	}
	fmt.Fprintf(w, "run       %s  [%s, %s]\n", r.Run, status, r.Device)
	fmt.Fprintf(w, "gpus      %s\n", strings.Join(gpus, "; "))
	if len(r.Labels) > 0 {
		keys := make([]string, 0, len(r.Labels))
		for k := range r.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+r.Labels[k])
		}
		fmt.Fprintf(w, "labels    %s\n", strings.Join(kv, " "))
	}
	s := res.Settings
	jobLines(w, r.Job)
	fmt.Fprintf(w, "settings  %s (BCa %d resamples, %g%%, seed %d; steady %s)\n\n",
		short(res.SettingsHash), s.Resamples, s.Confidence*100, s.Seed, s.Steady)

	if err := windowTable(w, r); err != nil {
		return err
	}
	summaryLines(w, r)
	return nil
}

// windowTable writes the run's windows, energy per output token first.
func windowTable(w io.Writer, r *analyze.RunResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\tcycle\tstart s\tdur s\tJ/out-token\tout tokens\ttokens/s\tenergy J\tintegrated J\tdiff %\tmean W\tp95 W\t+/- %\t")
	for _, wr := range r.Windows {
		name := wr.Name
		if wr.Measured {
			name = "* " + name
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			name, cycle(wr.Cycle), wr.StartS, wr.DurationS, num(wr.EnergyPerOutputTokenJ, 4), num(wr.OutputTokens, 0),
			num(wr.OutputTokensPerS, 1), num(wr.EnergyJ, 1), num(wr.EnergyIntegratedJ, 1), signed(wr.DisagreementPct, 2),
			num(wr.MeanPowerW, 1), num(wr.P95PowerW, 1), num(wr.UncertaintyPct, 2))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(* measured windows; +/- % is the measurement uncertainty of energy: NVML's 5 W and the counter's edges)")
	fmt.Fprintln(w)
	return hostTable(w, r)
}

// hostTable writes the host's RAPL energy per window and domain, when the
// run recorded it: a table of its own, so that no one reads it as part of
// the GPUs' energy.
func hostTable(w io.Writer, r *analyze.RunResult) error {
	seen := map[string]bool{}
	var domains []string
	for _, wr := range r.Windows {
		for d := range wr.HostEnergyJ {
			if !seen[d] {
				seen[d] = true
				domains = append(domains, d)
			}
		}
	}
	if len(domains) == 0 {
		return nil
	}
	sort.Strings(domains)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "window\tcycle\tdur s\t")
	for _, d := range domains {
		fmt.Fprintf(tw, "%s J\t", d)
	}
	fmt.Fprintln(tw)
	for _, wr := range r.Windows {
		name := wr.Name
		if wr.Measured {
			name = "* " + name
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t", name, cycle(wr.Cycle), wr.DurationS)
		for _, d := range domains {
			e, ok := wr.HostEnergyJ[d]
			if !ok {
				e = analyze.NaN
			}
			fmt.Fprintf(tw, "%s\t", num(e, 1))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(host energy from the CPU's RAPL counters: not included in energy J above; core and uncore are part of their package)")
	fmt.Fprintln(w)
	return nil
}

// summaryLines writes the run's results below its windows: cycles, steady
// state, baselines, latency, thermal checks, sensors and warnings.
func summaryLines(w io.Writer, r *analyze.RunResult) {
	if c := r.Cycles; c != nil {
		fmt.Fprintf(w, "cycles    n=%d", c.N)
		if c.EnergyPerOutputTokenJ != nil {
			fmt.Fprintf(w, "; energy per output token %s J", ci(*c.EnergyPerOutputTokenJ, 5))
		}
		if c.EnergyJ != nil {
			fmt.Fprintf(w, "; energy %s J", ci(*c.EnergyJ, 1))
		}
		if c.Note != "" {
			fmt.Fprintf(w, "; %s", c.Note)
		}
		fmt.Fprintln(w)
	}
	if st := r.SteadyState; st != nil {
		where := st.Window
		if st.Cycle > 0 && !isCycleName(st.Window) {
			where += fmt.Sprintf(", cycle %d", st.Cycle)
		}
		fmt.Fprintf(w, "steady    %s by %s in %s", st.Class, st.Method, where)
		if st.StartS.Valid() {
			fmt.Fprintf(w, ": from %.1f s to %.1f s at %.1f W (levels within %.1f W are one)", float64(st.StartS), float64(st.EndS),
				float64(st.LevelW), float64(st.ToleranceW))
		}
		if len(st.Steps) > 0 {
			var steps []string
			for _, x := range st.Steps {
				merged := "kept"
				if x.Merged {
					merged = "merged"
				}
				steps = append(steps, fmt.Sprintf("%+.1f%% at %.1f s (%s)", x.ChangePct, x.AtS, merged))
			}
			fmt.Fprintf(w, "; steps %s", strings.Join(steps, ", "))
		}
		if st.Events != nil {
			fmt.Fprintf(w, "; ML.ENERGY window %.1f-%.1f s (concurrency %d)", st.Events.StartS, st.Events.EndS, st.Events.Concurrency)
		}
		if st.Note != "" {
			fmt.Fprintf(w, "; %s", st.Note)
		}
		fmt.Fprintln(w)
	}
	for _, b := range []struct {
		name string
		b    *analyze.Baseline
	}{{"idle", r.Baseline.Idle}, {"P0", r.Baseline.P0}} {
		if b.b == nil {
			fmt.Fprintf(w, "baseline  %s: none found\n", b.name)
			continue
		}
		fmt.Fprintf(w, "baseline  %s %s W median (%s, %.1f s)\n", b.name, ci(b.b.MedianW, 1), b.b.Source, b.b.DurationS)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "latency   %d requests; mean", l.Requests)
		for _, m := range []struct {
			name string
			m    *analyze.LatencyMetric
		}{{"TTFT", l.TTFT}, {"TPOT", l.TPOT}, {"ITL", l.ITL}, {"E2E", l.E2E}} {
			if m.m != nil {
				fmt.Fprintf(w, " %s %s s (p99 %s);", m.name, ci(m.m.Mean, 4), num(m.m.P99, 4))
			}
		}
		fmt.Fprintln(w)
	}
	for _, th := range r.Thermal {
		where := th.Window
		if th.Cycle > 0 && !isCycleName(th.Window) {
			where += fmt.Sprintf(" (cycle %d)", th.Cycle)
		}
		for _, g := range th.GPUs {
			fmt.Fprintf(w, "thermal   %s %s: %s..%s C seen, %s C/min, change %s C (%s), SM %s..%s MHz, under load %s s before",
				where, gpuLabel(r, g.GPU), num(g.TempMinC, 0), num(g.TempMaxC, 0), signed(g.TempSlopeCPerMin, 2), signed(g.TempChangeC, 1),
				analyze.TempVerdict(g), num(g.SMClockMinMHz, 0), num(g.SMClockMaxMHz, 0), num(g.LoadedBeforeS, 1))
			if th.PowerTrend != nil && len(th.GPUs) == 1 {
				fmt.Fprintf(w, ", power drift %+.2f%% (MK p %.2g)", th.PowerTrend.DriftPct, th.PowerTrend.MKP)
				if th.PowerDriftCause != "" {
					fmt.Fprintf(w, ", %s", th.PowerDriftCause)
				}
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "sensors   update period: instant power %s ms, driver buffer %s ms, 1 s average %s ms\n",
		num(r.Sensor.InstantPowerUpdatePeriodMs, 1), num(r.Sensor.DriverPowerUpdatePeriodMs, 1), num(r.Sensor.AveragePowerUpdatePeriodMs, 1))
	for _, p := range r.Requests.Problems {
		fmt.Fprintf(w, "requests  problem: %s\n", p)
	}
	warningLines(w, r)
}

// warningLines writes the run's warnings (a measured window's carry its
// name), then, per code, the windows not measured that have it: their
// messages are in the JSON and the CSV reports.
func warningLines(w io.Writer, r *analyze.RunResult) {
	if len(r.Warnings) == 0 {
		fmt.Fprintln(w, "warnings  none")
	}
	for _, wn := range r.Warnings {
		msg := wn.Message
		if wn.Window != "" && !strings.Contains(msg, wn.Window) {
			msg = wn.Window + ": " + msg
		}
		fmt.Fprintf(w, "warning   [%s] %s\n", wn.Code, msg)
	}
	var codes []string
	others := map[string][]string{}
	for _, wr := range r.Windows {
		if wr.Measured {
			continue
		}
		for _, wn := range wr.Warnings {
			name := windowName(wr)
			if ws := others[wn.Code]; len(ws) > 0 && ws[len(ws)-1] == name {
				continue
			}
			if others[wn.Code] == nil {
				codes = append(codes, wn.Code)
			}
			others[wn.Code] = append(others[wn.Code], name)
		}
	}
	for _, code := range codes {
		fmt.Fprintf(w, "note      [%s] also in windows not measured: %s (the JSON report has each message)\n", code, strings.Join(others[code], ", "))
	}
}

// windowName names a window in the table: "measure (cycle 2)".
func windowName(wr analyze.WindowResult) string {
	if wr.Cycle > 0 && !isCycleName(wr.Name) {
		return fmt.Sprintf("%s (cycle %d)", wr.Name, wr.Cycle)
	}
	return wr.Name
}

// isCycleName: a cycle window's name already says its cycle.
func isCycleName(name string) bool { return strings.HasPrefix(name, "cycle ") }

func short(hash string) string {
	if len(hash) > 19 {
		return hash[:19]
	}
	return hash
}

func cycle(c int) string {
	if c == 0 {
		return "-"
	}
	return strconv.Itoa(c)
}

func num(n analyze.Num, prec int) string {
	if !n.Valid() {
		return "-"
	}
	return strconv.FormatFloat(float64(n), 'f', prec, 64)
}

func signed(n analyze.Num, prec int) string {
	if !n.Valid() {
		return "-"
	}
	return fmt.Sprintf("%+.*f", prec, float64(n))
}

// ci prints "estimate [low, high]", or the estimate and "(no CI)".
func ci(iv bootstrap.Interval, prec int) string {
	if iv.Degenerate || math.IsNaN(iv.Low) {
		return fmt.Sprintf("%.*f (no CI)", prec, iv.Estimate)
	}
	s := fmt.Sprintf("%.*f [%.*f, %.*f]", prec, iv.Estimate, prec, iv.Low, prec, iv.High)
	// A small-n mean: say which interval it is, and show BCa beside it.
	if a := iv.Alternative; a != nil && iv.Method != bootstrap.MethodBCa {
		s += fmt.Sprintf(" (%s, n=%d", bootstrap.MethodName(iv.Method), iv.N)
		if !a.Degenerate && !math.IsNaN(a.Low) {
			s += fmt.Sprintf("; %s [%.*f, %.*f]", bootstrap.MethodName(a.Method), prec, a.Low, prec, a.High)
		}
		s += ")"
	}
	return s
}

// CSVColumns are the fixed columns of CSV; labels follow as label:KEY.
var CSVColumns = []string{"run", "run_id", "node", "complete", "window", "kind", "cycle", "measured", "start_s", "end_s", "duration_s",
	"energy_per_output_token_j", "output_tokens", "output_tokens_per_s", "requests", "energy_per_request_j",
	"energy_j", "energy_integrated_j", "energy_disagreement_pct", "energy_adjusted_j",
	"mean_power_w", "p5_power_w", "p95_power_w", "max_power_w", "uncertainty_pct", "samples", "warnings", "settings_hash"}

// CSV writes one row per run and window, for sweeps: each run's labels
// (batch=8, ...) become label:KEY columns so runs can be grouped. A job's
// window is followed by a row per node with the node's share (node set;
// the job's own row has it empty).
func CSV(w io.Writer, res *analyze.Results) error {
	var labels []string
	for _, r := range res.Runs {
		for k := range r.Labels {
			if !slices.Contains(labels, k) {
				labels = append(labels, k)
			}
		}
	}
	sort.Strings(labels)
	cw := csv.NewWriter(w)
	head := slices.Clone(CSVColumns)
	for _, k := range labels {
		head = append(head, "label:"+k)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(n analyze.Num) string {
		if !n.Valid() {
			return ""
		}
		return strconv.FormatFloat(float64(n), 'g', -1, 64)
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, r := range res.Runs {
		for _, wr := range r.Windows {
			var codes []string
			for _, wn := range wr.Warnings {
				codes = append(codes, wn.Code)
			}
			row := []string{r.Run, r.RunID, "", strconv.FormatBool(r.Complete), wr.Name, wr.Kind, strconv.Itoa(wr.Cycle),
				strconv.FormatBool(wr.Measured), g(wr.StartS), g(wr.EndS), g(wr.DurationS),
				f(wr.EnergyPerOutputTokenJ), f(wr.OutputTokens), f(wr.OutputTokensPerS), strconv.Itoa(wr.Requests),
				f(wr.EnergyPerRequestJ), f(wr.EnergyJ), f(wr.EnergyIntegratedJ), f(wr.DisagreementPct), f(wr.EnergyAdjustedJ),
				f(wr.MeanPowerW), f(wr.P5PowerW), f(wr.P95PowerW), f(wr.MaxPowerW), f(wr.UncertaintyPct),
				strconv.Itoa(wr.Samples), strings.Join(codes, ";"), res.SettingsHash}
			for _, k := range labels {
				row = append(row, r.Labels[k])
			}
			if err := cw.Write(row); err != nil {
				return err
			}
			for _, nw := range wr.Nodes {
				row := make([]string, len(head))
				copy(row, []string{r.Run, r.RunID, nw.Node, strconv.FormatBool(r.Complete), wr.Name, wr.Kind,
					strconv.Itoa(wr.Cycle), strconv.FormatBool(wr.Measured), g(wr.StartS), g(wr.EndS), g(wr.DurationS)})
				row[slices.Index(head, "energy_j")] = f(nw.EnergyJ)
				row[slices.Index(head, "energy_integrated_j")] = f(nw.EnergyIntegratedJ)
				row[slices.Index(head, "mean_power_w")] = f(nw.MeanPowerW)
				row[slices.Index(head, "settings_hash")] = res.SettingsHash
				for i, k := range labels {
					row[len(CSVColumns)+i] = r.Labels[k]
				}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
