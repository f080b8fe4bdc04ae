package compare

import (
	"fmt"
	"slices"
	"strings"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/bootstrap"
)

// Options are what a comparison asks beyond the runs' analysis: the
// resampling of every interval is the analysis settings' (one seed, one
// number of resamples for a run's own CIs and the comparison's).
type Options struct {
	Alpha float64 // significance level of the U test
	// GroupBy names a run label (llem record --label KEY=VALUE): runs with
	// the same value are pooled into one configuration. Empty: each run is
	// its own configuration.
	GroupBy string
	// Baseline names the configuration the others are compared with: a
	// label value with GroupBy, else a run as given. Empty: the first.
	Baseline string
}

// DefaultOptions: benchstat's alpha of 0.05, each run its own
// configuration, the first the baseline.
func DefaultOptions() Options { return Options{Alpha: 0.05} }

// Validate checks the options' ranges; errors are *analyze.SettingError
// naming the option by its key.
func (o Options) Validate() error {
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return &analyze.SettingError{Key: "alpha", Msg: fmt.Sprintf("must be in (0, 1), got %g", o.Alpha)}
	}
	return nil
}

// Settings record what a comparison was made with, in its JSON: the
// analysis settings' resampling, the options, and fixed descriptions of
// the methods for the reader.
type Settings struct {
	Resamples      int     `json:"resamples"`  // bootstrap resamples, per-run CIs and ratio CIs
	Confidence     float64 `json:"confidence"` // confidence level of every interval
	Seed           uint64  `json:"seed"`       // seeds every resampling
	Alpha          float64 `json:"alpha"`      // significance level of the U test
	GroupBy        string  `json:"group_by"`
	Baseline       string  `json:"baseline"`
	EstimateMethod string  `json:"estimate_method"`
	ChangeMethod   string  `json:"change_method"`
	TestMethod     string  `json:"test_method"`
}

func settingsOf(s analyze.Settings, o Options) Settings {
	return Settings{Resamples: s.Resamples, Confidence: s.Confidence, Seed: s.Seed, Alpha: o.Alpha,
		GroupBy: o.GroupBy, Baseline: o.Baseline,
		EstimateMethod: "mean of the samples with its BCa bootstrap CI",
		ChangeMethod:   "ratio of means (configuration / baseline) with a two-sample BCa bootstrap CI, each sample resampled independently",
		TestMethod: fmt.Sprintf("Mann-Whitney U, two-sided: exact without ties up to %d values a sample and with ties up to %d, else normal approximation with tie and continuity corrections",
			ExactLimit, ExactTiesLimit)}
}

// Result is a comparison: the document `llem compare --json` writes.
type Result struct {
	Tool        string   `json:"tool"`
	LlemVersion string   `json:"llem_version"`
	Settings    Settings `json:"settings"`
	// Analysis are the settings the runs were analysed with (windows,
	// measure phase: what a sample is made of), and their hash as in
	// `llem analyze`.
	Analysis     analyze.Settings `json:"analysis_settings"`
	AnalysisHash string           `json:"analysis_settings_hash"`
	Runs         []RunInfo        `json:"runs"`
	Groups       []Group          `json:"groups"`
	Metrics      []MetricResult   `json:"metrics"`
}

// RunInfo describes one compared run.
type RunInfo struct {
	Run    string            `json:"run"`
	RunID  string            `json:"run_id"`
	Group  string            `json:"group"`
	Labels map[string]string `json:"labels"`
	Cycles int               `json:"cycles"`
	Notes  []string          `json:"notes"`
}

// Group is a configuration: one run, or the runs sharing a label value.
type Group struct {
	Name     string   `json:"name"` // the run, or KEY=VALUE
	Baseline bool     `json:"baseline"`
	Runs     []string `json:"runs"`
}

// MetricResult is one metric's table.
type MetricResult struct {
	Metric
	Rows  []Row    `json:"rows"`
	Notes []string `json:"notes"`
}

// Row is one configuration's estimate of a metric and, for all but the
// baseline, its change against the baseline and the test.
type Row struct {
	Group    string             `json:"group"`
	Baseline bool               `json:"baseline"`
	N        int                `json:"n"`
	Samples  []float64          `json:"samples"`
	Estimate bootstrap.Interval `json:"estimate"`
	Change   *Change            `json:"change"` // null for the baseline
	Test     *Test              `json:"test"`   // null for the baseline
}

// Change of a configuration's mean against the baseline's.
type Change struct {
	// Ratio is mean / baseline mean with its two-sample BCa CI.
	Ratio bootstrap.Interval `json:"ratio"`
	// Pct is (ratio - 1) x 100, and likewise its CI.
	Pct     analyze.Num `json:"pct"`
	PctLow  analyze.Num `json:"pct_ci_low"`
	PctHigh analyze.Num `json:"pct_ci_high"`
}

// Test is the U test of a configuration's samples against the baseline's.
type Test struct {
	Name   string      `json:"name"`   // "mann_whitney_u"
	Method string      `json:"method"` // exact, exact_ties, normal; empty when not run
	U      analyze.Num `json:"u"`      // U of the baseline's sample
	Z      analyze.Num `json:"z"`      // normal approximation only
	P      analyze.Num `json:"p"`      // two-sided; null when not run
	// MinP is the smallest p the exact test can give for these sample
	// sizes (2 / C(n1+n2, n1)); when it is not below alpha, no change can
	// be significant.
	MinP        analyze.Num `json:"min_p"`
	Alpha       float64     `json:"alpha"`
	Significant bool        `json:"significant"` // p < alpha
	Note        string      `json:"note,omitempty"`
}

// Compare groups the analysed runs into configurations and compares
// every metric of each with the baseline's. The runs were analysed with
// settings s, whose resampling the comparison uses too. Errors are the
// caller's input problems (fewer than two configurations, a run without
// the GroupBy label, an unknown Baseline, bad options), as
// *analyze.SettingError where an option is to blame.
func Compare(runs []*analyze.Run, s analyze.Settings, o Options) (*Result, error) {
	var sets []Samples
	for _, r := range runs {
		sets = append(sets, SamplesOf(r))
	}
	res, err := compareSamples(sets, s, o)
	if err != nil {
		return nil, err
	}
	res.Analysis, res.AnalysisHash = s, s.Hash()
	return res, nil
}

func compareSamples(runs []Samples, as analyze.Settings, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := as.Validate(); err != nil {
		return nil, err
	}
	s := settingsOf(as, o)
	groups, members, err := group(runs, s)
	if err != nil {
		return nil, err
	}
	res := &Result{Tool: "llem", Settings: s, Runs: []RunInfo{}, Groups: groups}
	for _, r := range runs {
		notes := r.Notes
		if notes == nil {
			notes = []string{}
		}
		res.Runs = append(res.Runs, RunInfo{Run: r.Name, RunID: r.RunID, Group: groupName(r, s), Labels: r.Labels,
			Cycles: r.Cycles, Notes: notes})
	}
	for _, m := range Metrics {
		res.Metrics = append(res.Metrics, compareMetric(m, groups, members, as, o.Alpha))
	}
	return res, nil
}

func groupName(r Samples, s Settings) string {
	if s.GroupBy == "" {
		return r.Name
	}
	return s.GroupBy + "=" + r.Labels[s.GroupBy]
}

// group forms the configurations in order of first appearance, the
// baseline first.
func group(runs []Samples, s Settings) ([]Group, [][]Samples, error) {
	if s.GroupBy != "" {
		var missing []string
		for _, r := range runs {
			if _, ok := r.Labels[s.GroupBy]; !ok {
				missing = append(missing, fmt.Sprintf("%s (labels: %s)", r.Name, labelList(r.Labels)))
			}
		}
		if len(missing) > 0 {
			return nil, nil, &analyze.SettingError{Key: "group_by", Msg: fmt.Sprintf("%s: %d run(s) have no label %q (record with the label %s=VALUE): %s",
				s.GroupBy, len(missing), s.GroupBy, s.GroupBy, strings.Join(missing, "; "))}
		}
	}
	var groups []Group
	var members [][]Samples
	index := map[string]int{}
	for _, r := range runs {
		name := groupName(r, s)
		i, ok := index[name]
		if !ok {
			i = len(groups)
			index[name] = i
			groups = append(groups, Group{Name: name})
			members = append(members, nil)
		}
		groups[i].Runs = append(groups[i].Runs, r.Name)
		members[i] = append(members[i], r)
	}
	if len(groups) < 2 {
		what := "runs"
		if s.GroupBy != "" {
			what = fmt.Sprintf("values of the label %q", s.GroupBy)
		}
		return nil, nil, fmt.Errorf("a comparison needs at least two configurations; got %d (%d run(s), %d distinct %s)",
			len(groups), len(runs), len(groups), what)
	}
	base := 0
	if s.Baseline != "" {
		base = -1
		for i, g := range groups {
			if g.Name == s.Baseline || (s.GroupBy != "" && g.Name == s.GroupBy+"="+s.Baseline) {
				base = i
				break
			}
		}
		if base < 0 {
			var names []string
			for _, g := range groups {
				n := g.Name
				if s.GroupBy != "" {
					n = strings.TrimPrefix(n, s.GroupBy+"=")
				}
				names = append(names, n)
			}
			return nil, nil, &analyze.SettingError{Key: "baseline", Msg: fmt.Sprintf("%s: no such configuration; there are %s", s.Baseline, strings.Join(names, ", "))}
		}
	}
	groups[base].Baseline = true
	if base > 0 {
		g, m := groups[base], members[base]
		groups = slices.Delete(groups, base, base+1)
		members = slices.Delete(members, base, base+1)
		groups = slices.Insert(groups, 0, g)
		members = slices.Insert(members, 0, m)
	}
	return groups, members, nil
}

func labelList(l map[string]string) string {
	if len(l) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + l[k]
	}
	return strings.Join(keys, " ")
}

func compareMetric(m Metric, groups []Group, members [][]Samples, s analyze.Settings, alpha float64) MetricResult {
	mr := MetricResult{Metric: m, Notes: []string{}}
	pooled := make([][]float64, len(groups))
	for i, runs := range members {
		x := []float64{}
		for _, r := range runs {
			x = append(x, r.Samples[m.Key]...)
		}
		pooled[i] = x
	}
	for i, g := range groups {
		x := pooled[i]
		row := Row{Group: g.Name, Baseline: g.Baseline, N: len(x), Samples: x, Estimate: estimate(x, s)}
		if !g.Baseline {
			row.Change = change(pooled[0], x, s)
			row.Test = test(pooled[0], x, alpha)
		}
		mr.Rows = append(mr.Rows, row)
		switch {
		case len(x) == 0:
			mr.Notes = append(mr.Notes, fmt.Sprintf("%s: no values (no requests or output tokens in the measured windows)", g.Name))
		case len(x) == 1 && m.Sample == PerCycle:
			mr.Notes = append(mr.Notes, fmt.Sprintf("%s: one sample (a run without cycles: its measured windows are one sample): an estimate, no CI and no test; record 5 cycles or more", g.Name))
		case len(x) == 1:
			mr.Notes = append(mr.Notes, fmt.Sprintf("%s: one sample: an estimate, no CI and no test", g.Name))
		}
	}
	return mr
}

// estimate is the mean of x with its BCa CI (degenerate, with the
// bootstrap package's note, for fewer than two values).
func estimate(x []float64, s analyze.Settings) bootstrap.Interval {
	return analyze.IntervalOf(x, bootstrap.Mean, s)
}

func change(base, x []float64, s analyze.Settings) *Change {
	iv := bootstrap.RatioBCa(base, x, s.Bootstrap())
	pct := func(r float64) analyze.Num { return analyze.Num((r - 1) * 100) }
	return &Change{Ratio: iv, Pct: pct(iv.Estimate), PctLow: pct(iv.Low), PctHigh: pct(iv.High)}
}

func test(base, x []float64, alpha float64) *Test {
	t := &Test{Name: "mann_whitney_u", U: analyze.NaN, Z: analyze.NaN, P: analyze.NaN, MinP: analyze.NaN, Alpha: alpha}
	if len(base) < 2 || len(x) < 2 {
		t.Note = fmt.Sprintf("no test: n = %d and %d; the U test needs at least two samples on each side", len(base), len(x))
		return t
	}
	t.MinP = analyze.Num(MinExactP(len(base), len(x)))
	u, err := MannWhitney(base, x)
	if err != nil {
		t.Note = "no test: " + err.Error()
		return t
	}
	t.Method, t.U, t.Z, t.P = u.Method, analyze.Num(u.U), analyze.Num(u.Z), analyze.Num(u.P)
	t.Significant = u.P < alpha
	if float64(t.MinP) >= alpha {
		t.Note = fmt.Sprintf("with n = %d and %d the smallest possible p is %.3g, not below alpha %g: no change can be significant; record more cycles",
			len(base), len(x), float64(t.MinP), alpha)
	}
	return t
}
