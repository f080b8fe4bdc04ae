package analyze

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Settings are every methodology choice of an analysis. Each default is
// documented in docs/results.md with its source; a settings file given to
// `llem analyze --config` sets any subset of them. The settings and their
// hash are written into every result, so a number can always be traced to
// the choices that produced it.
type Settings struct {
	// Bootstrap.
	Resamples  int     `json:"resamples"`  // BCa resamples (2,000: scipy's default, the audit's)
	Confidence float64 `json:"confidence"` // confidence level of every interval
	Seed       uint64  `json:"seed"`       // seeds every resampling; recorded with each interval
	MinCycles  int     `json:"min_cycles"` // fewer cycles: a warning and no energy CI (audit CP-5)

	// Windows.
	MeasurePhase string   `json:"measure_phase"` // the client phase that is the measurement
	Windows      []string `json:"windows"`       // user windows: a phase name or "start..end" in s
	MinWindowS   float64  `json:"min_window_s"`  // shorter windows are flagged (audit: 10 s)
	MinUpdates   int      `json:"min_sensor_updates"`

	// Energy and uncertainty.
	SpecAccuracyW   float64 `json:"spec_accuracy_w"`   // NVML's +/-5 W power accuracy
	CounterUpdateMs float64 `json:"counter_update_ms"` // used when the run shows no sensor update period
	DisagreementPct float64 `json:"disagreement_pct"`  // counter vs integrated driver power

	// Steady state.
	Steady              string  `json:"steady"` // "pelt" or "mser5"
	SteadyBinMs         float64 `json:"steady_bin_ms"`
	SteadyPenaltyFactor float64 `json:"steady_penalty_factor"` // penalty = factor * ln(n)
	SteadyMinSegment    int     `json:"steady_min_segment"`    // bins
	SteadyDeltaPct      float64 `json:"steady_delta_pct"`
	// SteadyBounds: segments are equivalent within mean +/- the standard
	// deviation ("stddev", for power in W) or the variance ("variance", as
	// Barrett et al. do for iteration times in s).
	SteadyBounds string `json:"steady_bounds"`
	MaxNumSeqs   int    `json:"max_num_seqs"` // ML.ENERGY window; 0: the largest concurrency seen

	// Thermal drift and conditioning.
	ConditioningS       float64 `json:"conditioning_s"` // load before a window (audit CP-2: 60 s)
	LoadGapS            float64 `json:"load_gap_s"`     // idle gaps shorter than this still count as load
	TempSlopeMaxCPerMin float64 `json:"temp_slope_max_c_per_min"`
	PowerDriftMaxPct    float64 `json:"power_drift_max_pct"`
	TrendAlpha          float64 `json:"trend_alpha"` // Mann-Kendall significance
	ClockRangeMaxPct    float64 `json:"clock_range_max_pct"`
	ReasonShareMaxPct   float64 `json:"reason_share_max_pct"`

	// Baselines.
	P0SettleS    float64 `json:"p0_settle_s"`    // loaded idle starts this long after the last activity
	P0MinUpdates int     `json:"p0_min_updates"` // sensor updates a loaded-idle stretch needs
}

// DefaultSettings are the methodology's defaults (docs/results.md says why).
func DefaultSettings() Settings {
	return Settings{
		Resamples: 2000, Confidence: 0.95, Seed: 0, MinCycles: 5,
		MeasurePhase: "measure", Windows: []string{}, MinWindowS: 10, MinUpdates: 10,
		SpecAccuracyW: 5, CounterUpdateMs: 100, DisagreementPct: 5,
		Steady: "pelt", SteadyBinMs: 100, SteadyPenaltyFactor: 15, SteadyMinSegment: 2, SteadyDeltaPct: 1, SteadyBounds: "stddev",
		ConditioningS: 60, LoadGapS: 2, TempSlopeMaxCPerMin: 1, PowerDriftMaxPct: 2, TrendAlpha: 0.05,
		ClockRangeMaxPct: 5, ReasonShareMaxPct: 1,
		P0SettleS: 1, P0MinUpdates: 30,
	}
}

// LoadSettings reads a settings file over the defaults. Unknown keys are
// an error (a misspelt setting must not be silently ignored).
func LoadSettings(path string) (Settings, error) {
	s := DefaultSettings()
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("--config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("--config %s: %w", path, err)
	}
	if dec.More() {
		return s, fmt.Errorf("--config %s: more than one JSON document", path)
	}
	return s, s.Validate()
}

// Validate checks every setting's range and names the bad one.
func (s *Settings) Validate() error {
	var bad []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	check(s.Resamples >= 1, "resamples must be at least 1, got %d", s.Resamples)
	check(s.Confidence > 0 && s.Confidence < 1, "confidence must be in (0, 1), got %g", s.Confidence)
	check(s.MinCycles >= 2, "min_cycles must be at least 2, got %d", s.MinCycles)
	check(s.MeasurePhase != "", "measure_phase must not be empty")
	check(s.MinWindowS >= 0, "min_window_s must be >= 0, got %g", s.MinWindowS)
	check(s.MinUpdates >= 0, "min_sensor_updates must be >= 0, got %d", s.MinUpdates)
	check(s.SpecAccuracyW >= 0, "spec_accuracy_w must be >= 0, got %g", s.SpecAccuracyW)
	check(s.CounterUpdateMs > 0, "counter_update_ms must be > 0, got %g", s.CounterUpdateMs)
	check(s.DisagreementPct > 0, "disagreement_pct must be > 0, got %g", s.DisagreementPct)
	check(s.Steady == "pelt" || s.Steady == "mser5", "steady must be \"pelt\" or \"mser5\", got %q", s.Steady)
	check(s.SteadyBinMs >= 1, "steady_bin_ms must be >= 1, got %g", s.SteadyBinMs)
	check(s.SteadyPenaltyFactor > 0, "steady_penalty_factor must be > 0, got %g", s.SteadyPenaltyFactor)
	check(s.SteadyMinSegment >= 1, "steady_min_segment must be >= 1, got %d", s.SteadyMinSegment)
	check(s.SteadyBounds == "stddev" || s.SteadyBounds == "variance", "steady_bounds must be \"stddev\" or \"variance\", got %q", s.SteadyBounds)
	check(s.SteadyDeltaPct >= 0, "steady_delta_pct must be >= 0, got %g", s.SteadyDeltaPct)
	check(s.MaxNumSeqs >= 0, "max_num_seqs must be >= 0, got %d", s.MaxNumSeqs)
	check(s.ConditioningS >= 0, "conditioning_s must be >= 0, got %g", s.ConditioningS)
	check(s.LoadGapS >= 0, "load_gap_s must be >= 0, got %g", s.LoadGapS)
	check(s.TempSlopeMaxCPerMin > 0, "temp_slope_max_c_per_min must be > 0, got %g", s.TempSlopeMaxCPerMin)
	check(s.PowerDriftMaxPct > 0, "power_drift_max_pct must be > 0, got %g", s.PowerDriftMaxPct)
	check(s.TrendAlpha > 0 && s.TrendAlpha < 1, "trend_alpha must be in (0, 1), got %g", s.TrendAlpha)
	check(s.ClockRangeMaxPct > 0, "clock_range_max_pct must be > 0, got %g", s.ClockRangeMaxPct)
	check(s.ReasonShareMaxPct > 0, "reason_share_max_pct must be > 0, got %g", s.ReasonShareMaxPct)
	check(s.P0SettleS >= 0, "p0_settle_s must be >= 0, got %g", s.P0SettleS)
	check(s.P0MinUpdates >= 1, "p0_min_updates must be >= 1, got %d", s.P0MinUpdates)
	if _, err := json.Marshal(s); err != nil {
		bad = append(bad, "every setting must be a finite number")
	}
	if s.Windows == nil {
		s.Windows = []string{}
	}
	for _, w := range s.Windows {
		if _, err := parseUserWindow(w); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("settings: %s", strings.Join(bad, "; "))
	}
	return nil
}

// Hash is "sha256:" and the hex digest of the settings' canonical JSON
// (fields in declaration order), the fingerprint written into every
// result.
func (s Settings) Hash() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // unreachable: Settings holds only plain values
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
