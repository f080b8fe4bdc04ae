// Package report renders analysis results for people (a terminal table)
// and for sweeps (CSV and Parquet, from one flattened table). The JSON
// document is the results themselves.
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

// Kind is the type of a column of the per-window table that CSV and
// Parquet share.
type Kind int

const (
	KindString Kind = iota
	KindBool
	KindInt
	KindFloat
)

// Column is one column of the per-window table.
type Column struct {
	Name string
	Kind Kind
}

// Columns are the fixed columns of the per-window table (CSV and Parquet);
// labels follow, as string columns named LabelPrefix+KEY.
var Columns = []Column{
	{"run", KindString}, {"run_id", KindString}, {"node", KindString}, {"complete", KindBool},
	{"window", KindString}, {"kind", KindString}, {"cycle", KindInt}, {"measured", KindBool},
	{"start_s", KindFloat}, {"end_s", KindFloat}, {"duration_s", KindFloat},
	{"energy_per_output_token_j", KindFloat}, {"output_tokens", KindFloat}, {"output_tokens_per_s", KindFloat},
	{"requests", KindInt}, {"energy_per_request_j", KindFloat},
	{"energy_j", KindFloat}, {"energy_integrated_j", KindFloat}, {"energy_disagreement_pct", KindFloat}, {"energy_adjusted_j", KindFloat},
	{"mean_power_w", KindFloat}, {"p5_power_w", KindFloat}, {"p95_power_w", KindFloat}, {"max_power_w", KindFloat},
	{"uncertainty_pct", KindFloat}, {"samples", KindInt}, {"warnings", KindString}, {"settings_hash", KindString},
	// Added later, at the end, so that scripts reading the CSV by position
	// keep working.
	{"start_ns", KindInt}, {"end_ns", KindInt}, {"spec_uncertainty_pct", KindFloat}, {"edge_uncertainty_pct", KindFloat},
	{"energy_integrated_uncertainty_pct", KindFloat}, {"clock_uncertainty_pct", KindFloat}, {"sensor_updates", KindInt},
	{"sim_truth_energy_j", KindFloat},
}

// LabelPrefix starts the name of a label's column: label:batch.
const LabelPrefix = "label:"

// CSVColumns are the names of Columns, the fixed columns of CSV.
var CSVColumns = func() []string {
	names := make([]string, len(Columns))
	for i, c := range Columns {
		names[i] = c.Name
	}
	return names
}()

// Flat is the per-window table: one row per run and window (and per node
// of a job's window). A cell is a string, bool, int64 or float64 as its
// column's Kind says, or nil where it has no value (a NaN, a label the
// run does not have, a node row's fields that are the job's).
type Flat struct {
	Columns []Column
	Rows    [][]any
}

// Flatten builds the per-window table of res. Each run's labels
// (batch=8, ...) become label:KEY columns so runs can be grouped. A job's
// window is followed by a row per node with the node's share (node set;
// the job's own row has it nil).
func Flatten(res *analyze.Results) Flat {
	var labels []string
	for _, r := range res.Runs {
		for k := range r.Labels {
			if !slices.Contains(labels, k) {
				labels = append(labels, k)
			}
		}
	}
	sort.Strings(labels)
	t := Flat{Columns: slices.Clone(Columns)}
	for _, k := range labels {
		t.Columns = append(t.Columns, Column{LabelPrefix + k, KindString})
	}
	index := func(name string) int {
		return slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == name })
	}
	f := func(n analyze.Num) any {
		if !n.Valid() {
			return nil
		}
		return float64(n)
	}
	g := func(v float64) any { return f(analyze.Num(v)) }
	fp := func(n *analyze.Num) any {
		if n == nil {
			return nil
		}
		return f(*n)
	}
	for _, r := range res.Runs {
		labelCells := func(row []any) {
			for i, k := range labels {
				if v, ok := r.Labels[k]; ok {
					row[len(Columns)+i] = v
				}
			}
		}
		for _, wr := range r.Windows {
			var codes []string
			for _, wn := range wr.Warnings {
				codes = append(codes, wn.Code)
			}
			row := make([]any, len(t.Columns))
			copy(row, []any{r.Run, r.RunID, nil, r.Complete, wr.Name, wr.Kind, int64(wr.Cycle),
				wr.Measured, g(wr.StartS), g(wr.EndS), g(wr.DurationS),
				f(wr.EnergyPerOutputTokenJ), f(wr.OutputTokens), f(wr.OutputTokensPerS), int64(wr.Requests),
				f(wr.EnergyPerRequestJ), f(wr.EnergyJ), f(wr.EnergyIntegratedJ), f(wr.DisagreementPct), f(wr.EnergyAdjustedJ),
				f(wr.MeanPowerW), f(wr.P5PowerW), f(wr.P95PowerW), f(wr.MaxPowerW), f(wr.UncertaintyPct),
				int64(wr.Samples), strings.Join(codes, ";"), res.SettingsHash,
				wr.StartNs, wr.EndNs, f(wr.SpecUncertaintyPct), f(wr.EdgeUncertaintyPct),
				f(wr.IntegratedUncertaintyPct), fp(wr.ClockUncertaintyPct), int64(wr.SensorUpdates),
				fp(wr.SimTruthEnergyJ)})
			labelCells(row)
			t.Rows = append(t.Rows, row)
			for _, nw := range wr.Nodes {
				row := make([]any, len(t.Columns))
				copy(row, []any{r.Run, r.RunID, nw.Node, r.Complete, wr.Name, wr.Kind,
					int64(wr.Cycle), wr.Measured, g(wr.StartS), g(wr.EndS), g(wr.DurationS)})
				row[index("energy_j")] = f(nw.EnergyJ)
				row[index("energy_integrated_j")] = f(nw.EnergyIntegratedJ)
				row[index("mean_power_w")] = f(nw.MeanPowerW)
				row[index("settings_hash")] = res.SettingsHash
				row[index("start_ns")] = wr.StartNs
				row[index("end_ns")] = wr.EndNs
				labelCells(row)
				t.Rows = append(t.Rows, row)
			}
		}
	}
	return t
}

// CSV writes the per-window table (Flatten), for sweeps: one row per run
// and window, a missing value empty.
func CSV(w io.Writer, res *analyze.Results) error {
	t := Flatten(res)
	cw := csv.NewWriter(w)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Name
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	rec := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, v := range row {
			switch v := v.(type) {
			case nil:
				rec[i] = ""
			case string:
				rec[i] = v
			case bool:
				rec[i] = strconv.FormatBool(v)
			case int64:
				rec[i] = strconv.FormatInt(v, 10)
			case float64:
				rec[i] = strconv.FormatFloat(v, 'g', -1, 64)
			default:
				return fmt.Errorf("csv: column %s: a %T", t.Columns[i].Name, v)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
