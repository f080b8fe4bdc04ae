package analyze

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/llem/llem/analyze/bootstrap"
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
	// BCaMinN: a mean over fewer values gets the Student-t interval, with
	// BCa beside it (the coverage study, docs/results.md).
	BCaMinN int `json:"bca_min_n"`

	// Windows.
	MeasurePhase string   `json:"measure_phase"` // the client phase that is the measurement
	Windows      []string `json:"windows"`       // user windows: a phase name or "start..end" in s
	MinWindowS   float64  `json:"min_window_s"`  // shorter windows are flagged (audit: 10 s)
	MinUpdates   int      `json:"min_sensor_updates"`

	// Energy and uncertainty.
	SpecAccuracyW   float64 `json:"spec_accuracy_w"`   // NVML's +/-5 W power accuracy
	CounterUpdateMs float64 `json:"counter_update_ms"` // used when the run shows no sensor update period
	// CounterDelayMs: the counter's value at an update is the energy up
	// to this long before it (an H200, bench/gpu/steplag).
	CounterDelayMs       float64 `json:"counter_delay_ms"`
	DriverPowerWindowMs  float64 `json:"driver_power_window_ms"`  // a driver sample is the mean over this before its stamp
	InstantPowerWindowMs float64 `json:"instant_power_window_ms"` // instant power averages this before an update
	DisagreementPct      float64 `json:"disagreement_pct"`        // counter vs integrated driver power

	// Steady state.
	Steady              SteadyMethod `json:"steady"`
	SteadyBinMs         float64      `json:"steady_bin_ms"`
	SteadyPenaltyFactor float64      `json:"steady_penalty_factor"` // penalty = factor * ln(n)
	SteadyMinSegment    int          `json:"steady_min_segment"`    // bins
	// SteadyTolerancePct: levels closer than this % of the higher, or than
	// NVML's accuracy (spec_accuracy_w per GPU), are one steady state.
	SteadyTolerancePct float64 `json:"steady_tolerance_pct"`
	SteadyMinS         float64 `json:"steady_min_s"`     // shorter windows are too short to judge
	SteadyTailFrac     float64 `json:"steady_tail_frac"` // trailing levels below this fraction of the load's are a tail
	MaxNumSeqs         int     `json:"max_num_seqs"`     // ML.ENERGY window; 0: the largest concurrency seen

	// Thermal drift and conditioning.
	ConditioningS       float64 `json:"conditioning_s"` // load before a window (audit CP-2: 60 s)
	LoadGapS            float64 `json:"load_gap_s"`     // idle gaps shorter than this still count as load
	TempSlopeMaxCPerMin float64 `json:"temp_slope_max_c_per_min"`
	TempMinChangeC      float64 `json:"temp_min_change_c"` // a drift the sensor resolves: its whole-degree step
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
		Resamples: 2000, Confidence: 0.95, Seed: 0, MinCycles: 5, BCaMinN: 20,
		MeasurePhase: "measure", Windows: []string{}, MinWindowS: 10, MinUpdates: 10,
		SpecAccuracyW: 5, CounterUpdateMs: 100, CounterDelayMs: 10, DriverPowerWindowMs: 20, InstantPowerWindowMs: 25,
		DisagreementPct: 5,
		Steady:          SteadyPELT, SteadyBinMs: 100, SteadyPenaltyFactor: 15, SteadyMinSegment: 2, SteadyTolerancePct: 1, SteadyMinS: 5, SteadyTailFrac: 0.5,
		ConditioningS: 60, LoadGapS: 2, TempSlopeMaxCPerMin: 1, TempMinChangeC: 1, PowerDriftMaxPct: 2, TrendAlpha: 0.05,
		ClockRangeMaxPct: 5, ReasonShareMaxPct: 1,
		P0SettleS: 1, P0MinUpdates: 30,
	}
}

// SteadyMethod names a steady-state detector.
type SteadyMethod string

// The steady-state detectors (docs/results.md, "Steady state").
const (
	SteadyPELT  SteadyMethod = "pelt"  // PELT changepoints and Barrett et al.'s classification
	SteadyMSER5 SteadyMethod = "mser5" // MSER-5 truncation (White 1997)
)

// SettingError says which setting is wrong, by its key in the settings
// file (the JSON names of Settings): the command line names its own flag
// for the key, a manifest its line.
type SettingError struct {
	Key string
	Msg string
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Msg }

// FileError is a settings file that cannot be read or decoded.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Overrides set settings by key (the JSON names of Settings) to values
// as JSON would carry them: a string, a float64, a []string...
type Overrides map[string]any

// ReadSettings is the one way settings are made: the defaults, then the
// settings file at path (if not ""), then each set of overrides in order
// (a manifest's [settings], then the command line's flags), then
// Validate. Unknown keys are errors: a misspelt setting must not be
// silently ignored. Errors are *FileError or *SettingError.
func ReadSettings(path string, layers ...Overrides) (Settings, error) {
	s := DefaultSettings()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return s, &FileError{Path: path, Err: err}
		}
		if err := decodeStrict(b, &s); err != nil {
			return s, &FileError{Path: path, Err: err}
		}
	}
	for _, o := range layers {
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !settingKeys()[k] {
				return s, &SettingError{Key: k, Msg: "no such setting (docs/results.md lists them)"}
			}
			b, err := json.Marshal(map[string]any{k: o[k]})
			if err == nil {
				err = decodeStrict(b, &s)
			}
			if err != nil {
				return s, &SettingError{Key: k, Msg: fmt.Sprintf("bad value %v: %s", o[k], jsonTypeMsg(err))}
			}
		}
	}
	return s, s.Validate()
}

// decodeStrict decodes one JSON document over s, refusing unknown keys.
func decodeStrict(b []byte, s *Settings) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(b, se.Offset)
			return fmt.Errorf("line %d, column %d: %w", line, col, err)
		}
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON document")
	}
	return nil
}

// position is the 1-based line and column of byte offset off in b.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	line = 1 + bytes.Count(b[:off], []byte("\n"))
	col = int(off) - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

func jsonTypeMsg(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("want a %s", te.Type)
	}
	return err.Error()
}

// settingKeys are the JSON names of Settings' fields.
func settingKeys() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(Settings{})
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

// Validate checks every setting's range. The error joins a *SettingError
// for each bad setting.
func (s *Settings) Validate() error {
	var bad []error
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			bad = append(bad, &SettingError{Key: key, Msg: fmt.Sprintf(format, args...)})
		}
	}
	check(s.Resamples >= 1, "resamples", "must be at least 1, got %d", s.Resamples)
	check(s.Confidence > 0 && s.Confidence < 1, "confidence", "must be in (0, 1), got %g", s.Confidence)
	check(s.MinCycles >= 2, "min_cycles", "must be at least 2, got %d", s.MinCycles)
	check(s.BCaMinN >= 2, "bca_min_n", "must be at least 2, got %d", s.BCaMinN)
	check(s.MeasurePhase != "", "measure_phase", "must not be empty")
	check(s.MinWindowS >= 0, "min_window_s", "must be >= 0, got %g", s.MinWindowS)
	check(s.MinUpdates >= 0, "min_sensor_updates", "must be >= 0, got %d", s.MinUpdates)
	check(s.SpecAccuracyW >= 0, "spec_accuracy_w", "must be >= 0, got %g", s.SpecAccuracyW)
	check(s.CounterUpdateMs > 0, "counter_update_ms", "must be > 0, got %g", s.CounterUpdateMs)
	check(s.CounterDelayMs >= 0, "counter_delay_ms", "must be >= 0, got %g", s.CounterDelayMs)
	check(s.DriverPowerWindowMs >= 0, "driver_power_window_ms", "must be >= 0, got %g", s.DriverPowerWindowMs)
	check(s.InstantPowerWindowMs >= 0, "instant_power_window_ms", "must be >= 0, got %g", s.InstantPowerWindowMs)
	check(s.DisagreementPct > 0, "disagreement_pct", "must be > 0, got %g", s.DisagreementPct)
	check(s.Steady == SteadyPELT || s.Steady == SteadyMSER5, "steady", "must be %q or %q, got %q", SteadyPELT, SteadyMSER5, s.Steady)
	check(s.SteadyBinMs >= 1, "steady_bin_ms", "must be >= 1, got %g", s.SteadyBinMs)
	check(s.SteadyPenaltyFactor > 0, "steady_penalty_factor", "must be > 0, got %g", s.SteadyPenaltyFactor)
	check(s.SteadyMinSegment >= 1, "steady_min_segment", "must be >= 1, got %d", s.SteadyMinSegment)
	check(s.SteadyTolerancePct > 0, "steady_tolerance_pct", "must be > 0, got %g", s.SteadyTolerancePct)
	check(s.SteadyMinS >= 0, "steady_min_s", "must be >= 0, got %g", s.SteadyMinS)
	check(s.SteadyTailFrac > 0 && s.SteadyTailFrac < 1, "steady_tail_frac", "must be in (0, 1), got %g", s.SteadyTailFrac)
	check(s.MaxNumSeqs >= 0, "max_num_seqs", "must be >= 0, got %d", s.MaxNumSeqs)
	check(s.ConditioningS >= 0, "conditioning_s", "must be >= 0, got %g", s.ConditioningS)
	check(s.LoadGapS >= 0, "load_gap_s", "must be >= 0, got %g", s.LoadGapS)
	check(s.TempSlopeMaxCPerMin > 0, "temp_slope_max_c_per_min", "must be > 0, got %g", s.TempSlopeMaxCPerMin)
	check(s.TempMinChangeC >= 0, "temp_min_change_c", "must be >= 0, got %g", s.TempMinChangeC)
	check(s.PowerDriftMaxPct > 0, "power_drift_max_pct", "must be > 0, got %g", s.PowerDriftMaxPct)
	check(s.TrendAlpha > 0 && s.TrendAlpha < 1, "trend_alpha", "must be in (0, 1), got %g", s.TrendAlpha)
	check(s.ClockRangeMaxPct > 0, "clock_range_max_pct", "must be > 0, got %g", s.ClockRangeMaxPct)
	check(s.ReasonShareMaxPct > 0, "reason_share_max_pct", "must be > 0, got %g", s.ReasonShareMaxPct)
	check(s.P0SettleS >= 0, "p0_settle_s", "must be >= 0, got %g", s.P0SettleS)
	check(s.P0MinUpdates >= 1, "p0_min_updates", "must be >= 1, got %d", s.P0MinUpdates)
	if _, err := json.Marshal(s); err != nil {
		bad = append(bad, &SettingError{Key: "settings", Msg: "every setting must be a finite number"})
	}
	if s.Windows == nil {
		s.Windows = []string{}
	}
	for _, w := range s.Windows {
		if _, err := parseUserWindow(w); err != nil {
			bad = append(bad, &SettingError{Key: "windows", Msg: err.Error()})
		}
	}
	return errors.Join(bad...)
}

// Bootstrap is the resampling every interval of an analysis uses.
func (s Settings) Bootstrap() bootstrap.Options {
	return bootstrap.Options{Resamples: s.Resamples, Confidence: s.Confidence, Seed: s.Seed}
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
