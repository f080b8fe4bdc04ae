package analyze

import (
	"math"
	"strconv"

	"github.com/llem/llem/analyze/bootstrap"
	"github.com/llem/llem/analyze/sensor"
	"github.com/llem/llem/analyze/steady"
	"github.com/llem/llem/analyze/trend"
)

// Interval is a bootstrap confidence interval as results carry it (the
// type of package bootstrap, named here so that packages that only draw
// or print results need not import the statistics).
type Interval = bootstrap.Interval

// Num is a float that is written to JSON as null when it is NaN or
// infinite: "not measurable here" must read as missing, never as 0.
type Num float64

// NaN is the missing Num.
var NaN = Num(math.NaN())

// Valid reports whether n holds a number.
func (n Num) Valid() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

// MarshalJSON writes the shortest decimal that reads back to the same
// float64 (deterministic, so equal inputs give equal bytes).
func (n Num) MarshalJSON() ([]byte, error) {
	if !n.Valid() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = NaN
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

// Results is the document `llem analyze --json` writes.
type Results struct {
	Tool         string      `json:"tool"`
	LlemVersion  string      `json:"llem_version"`
	Settings     Settings    `json:"settings"`
	SettingsHash string      `json:"settings_hash"`
	Runs         []RunResult `json:"runs"`
}

// Warning is a problem found in a run or a window. Code is stable.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	GPU     *int   `json:"gpu,omitempty"`
	Window  string `json:"window,omitempty"`
}

// RunResult is the analysis of one run.
type RunResult struct {
	Run      string            `json:"run"`
	RunID    string            `json:"run_id"`
	Complete bool              `json:"complete"`
	Status   string            `json:"status"`
	Device   string            `json:"device"`
	Labels   map[string]string `json:"labels"`
	GPUs     []GPUSummary      `json:"gpus"`
	Warnings []Warning         `json:"warnings"`
	Windows  []WindowResult    `json:"windows"`

	SteadyState *SteadyResult   `json:"steady_state"`
	Thermal     []ThermalResult `json:"thermal"`
	Baseline    BaselineResult  `json:"baseline"`
	Sensor      SensorResult    `json:"sensor"`
	Latency     *LatencyResult  `json:"latency"`
	// Measured pools the measured windows: the run's one value of each
	// metric (without cycles, its one sample).
	Measured *Totals        `json:"measured"`
	Cycles   *CycleResult   `json:"cycles"`
	Requests RequestSummary `json:"requests"`
	// Job describes a multi-node job analysed as one experiment: its
	// nodes with their share, tasks and clocks (absent for a run).
	Job *JobResult `json:"job,omitempty"`
}

// GPUSummary names a GPU of the run.
type GPUSummary struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	UUID        string `json:"uuid"`
	PowerLimitW Num    `json:"power_limit_w"`
	Lost        bool   `json:"lost"`
	// In a job, Index is the GPU's position in the job, Node its node and
	// NodeGPU the driver's index of it there.
	Node    string `json:"node,omitempty"`
	NodeGPU *int   `json:"node_gpu,omitempty"`
}

// WindowResult is everything measured over one window, summed over GPUs,
// with the per-GPU figures in GPUs.
type WindowResult struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Cycle     int     `json:"cycle"`
	Measured  bool    `json:"measured"`
	StartS    float64 `json:"start_s"`
	EndS      float64 `json:"end_s"`
	DurationS float64 `json:"duration_s"`
	// StartNs and EndNs are the window's exact bounds on the trace's
	// clock (ns since the Unix epoch); start_s and end_s count seconds
	// from the run's first sample.
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`

	EnergyPerOutputTokenJ Num `json:"energy_per_output_token_j"`
	OutputTokens          Num `json:"output_tokens"`
	OutputTokensPerS      Num `json:"output_tokens_per_s"`
	Requests              int `json:"requests"`
	EnergyPerRequestJ     Num `json:"energy_per_request_j"`
	EnergyJ               Num `json:"energy_j"`
	EnergyIntegratedJ     Num `json:"energy_integrated_j"`
	DisagreementPct       Num `json:"energy_disagreement_pct"`
	EnergyAdjustedJ       Num `json:"energy_adjusted_j"`
	MeanPowerW            Num `json:"mean_power_w"`
	P5PowerW              Num `json:"p5_power_w"`
	P95PowerW             Num `json:"p95_power_w"`
	MaxPowerW             Num `json:"max_power_w"`
	UncertaintyPct        Num `json:"uncertainty_pct"`
	SpecUncertaintyPct    Num `json:"spec_uncertainty_pct"`
	EdgeUncertaintyPct    Num `json:"edge_uncertainty_pct"`
	// IntegratedUncertaintyPct is the 95% bound of energy_integrated_j.
	IntegratedUncertaintyPct Num                 `json:"energy_integrated_uncertainty_pct"`
	Samples                  int                 `json:"samples"`
	SensorUpdates            int                 `json:"sensor_updates"`
	GPUs                     []GPUWindow         `json:"gpus"`
	Steady                   *steady.PowerResult `json:"steady,omitempty"`
	Warnings                 []Warning           `json:"warnings"`
	// Nodes is a job's window per node (absent for a run).
	Nodes []NodeWindow `json:"nodes,omitempty"`
	// ClockUncertaintyPct is the part of edge_uncertainty_pct that the
	// misalignment of the nodes' clocks makes (a job's; null when it
	// cannot be bounded).
	ClockUncertaintyPct *Num `json:"clock_uncertainty_pct,omitempty"`
	// SimTruthEnergyJ is a simulated run's true energy of the window,
	// summed over GPUs (the sim_truth table): what energy_j and
	// energy_integrated_j estimate. Absent for real GPUs.
	SimTruthEnergyJ *Num `json:"sim_truth_energy_j,omitempty"`
	// HostEnergyJ is the host's RAPL energy over the window per domain
	// ("package-0", "package-0/dram"...; null where the reads do not cover
	// the window). It is the CPU's and memory's, not the GPUs': never part
	// of energy_j or of any figure made from it, and the domains overlap
	// (core and uncore are inside their package; psys holds the package),
	// so they are not to be summed blindly. Absent when the run has no
	// host_energy table.
	HostEnergyJ map[string]Num `json:"host_energy_j,omitempty"`

	label string // how messages name the window: "measure (cycle 2)"
	// The half-widths (J) of the timing errors of the counter's and the
	// integrated energy (uncertainty combines them).
	counterTerms, integTerms []float64
}

// GPUWindow is one GPU's share of a window.
type GPUWindow struct {
	GPU                int `json:"gpu"`
	EnergyJ            Num `json:"energy_j"`
	EnergyIntegratedJ  Num `json:"energy_integrated_j"`
	MeanPowerW         Num `json:"mean_power_w"`
	P5PowerW           Num `json:"p5_power_w"`
	P95PowerW          Num `json:"p95_power_w"`
	MaxPowerW          Num `json:"max_power_w"`
	SpecUncertaintyPct Num `json:"spec_uncertainty_pct"`
	Samples            int `json:"samples"`
	// IntegratedFrom names the power field integrated and used for the
	// percentiles: driver_power, else instant_power, else average_power.
	IntegratedFrom string `json:"integrated_from"`

	// Node is the GPU's node, in a job.
	Node string `json:"node,omitempty"`
}

// SteadyResult is the steady state of the first measured window.
type SteadyResult struct {
	Method SteadyMethod `json:"method"`
	Window string       `json:"window"`
	Cycle  int          `json:"cycle"`
	Class  string       `json:"class"`
	StartS Num          `json:"start_s"`
	EndS   Num          `json:"end_s"`
	BinMs  float64      `json:"bin_ms"`
	// LevelW is the steady state's mean power; ToleranceW the tolerance
	// within which levels are one steady state.
	LevelW     Num `json:"level_w"`
	ToleranceW Num `json:"tolerance_w"`
	// Steps are the level changes the changepoints found, merged or not.
	Steps []SteadyStep `json:"steps"`
	// Events is the ML.ENERGY event-based window, when requests allow it.
	Events *EventWindow `json:"events"`
	Note   string       `json:"note,omitempty"`
}

// SteadyStep is a change of power level inside the window.
type SteadyStep struct {
	AtS       float64 `json:"at_s"`
	FromW     float64 `json:"from_w"`
	ToW       float64 `json:"to_w"`
	ChangePct float64 `json:"change_pct"`
	// Merged: within the tolerance, so one steady state with its neighbour.
	Merged bool `json:"merged"`
}

// EventWindow is the ML.ENERGY benchmark's steady window.
type EventWindow struct {
	StartS      float64 `json:"start_s"`
	EndS        float64 `json:"end_s"`
	Concurrency int     `json:"concurrency"`
}

// ThermalResult is the drift check of one measured window.
type ThermalResult struct {
	Window string       `json:"window"`
	Cycle  int          `json:"cycle"`
	GPUs   []GPUThermal `json:"gpus"`
	// PowerTrend is of the summed power in 1 s bins.
	PowerTrend *trend.Trend `json:"power_trend"`
	// PowerDriftCause, for a flagged power drift, says what moved with it:
	// "thermal", "workload", "thermal and workload" or "unexplained".
	PowerDriftCause string    `json:"power_drift_cause,omitempty"`
	Flags           []Warning `json:"flags"`
}

// GPUThermal is one GPU's thermal state over a window.
type GPUThermal struct {
	GPU              int `json:"gpu"`
	TempStartC       Num `json:"temp_start_c"`
	TempEndC         Num `json:"temp_end_c"`
	TempMinC         Num `json:"temp_min_c"`           // lowest seen in the window
	TempMaxC         Num `json:"temp_max_c"`           // highest seen in the window
	TempSlopeCPerMin Num `json:"temp_slope_c_per_min"` // least squares
	// TempChangeC is the Theil-Sen slope times the window's length: the
	// change a drift implies, which whole-degree flicker leaves near 0.
	TempChangeC Num `json:"temp_change_c"`
	TempTrendP  Num `json:"temp_trend_p"` // Mann-Kendall, two-sided
	// TempDrift: the temperature drifts (docs/results.md, thermal checks).
	TempDrift       bool               `json:"temp_drift"`
	SMClockMinMHz   Num                `json:"sm_clock_min_mhz"`
	SMClockMaxMHz   Num                `json:"sm_clock_max_mhz"`
	SMClockRangePct Num                `json:"sm_clock_range_pct"`
	ReasonSharePct  map[string]float64 `json:"clock_event_reason_share_pct"`
	LoadedBeforeS   Num                `json:"loaded_before_s"`
}

// BaselineResult holds the idle and loaded-idle (P0) power.
type BaselineResult struct {
	Idle *Baseline `json:"idle"`
	P0   *Baseline `json:"p0"`
}

// Baseline is a power level: the median of the summed power in sensor
// bins, with a bootstrap CI of the median.
type Baseline struct {
	Source    string             `json:"source"` // the phases or the detection it came from
	MedianW   bootstrap.Interval `json:"median_power_w"`
	PerGPUW   []Num              `json:"per_gpu_median_w"`
	DurationS float64            `json:"duration_s"`
	Updates   int                `json:"sensor_updates"`
	Criteria  string             `json:"criteria,omitempty"`
	// Notes say where each window's power settled, from what, or why a
	// window was left out.
	Notes []string `json:"notes,omitempty"`
}

// SensorResult characterises each power field (median over GPUs, with
// the per-GPU details).
type SensorResult struct {
	DriverPowerUpdatePeriodMs  Num                                  `json:"driver_power_update_period_ms"`
	InstantPowerUpdatePeriodMs Num                                  `json:"instant_power_update_period_ms"`
	AveragePowerUpdatePeriodMs Num                                  `json:"average_power_update_period_ms"`
	CounterUpdateMsUsed        float64                              `json:"counter_update_ms_used"`
	PerGPU                     []map[string]sensor.Characterisation `json:"per_gpu"`
}

// LatencyResult holds the latency of the requests that start in the
// measured windows, named as vLLM and ML.ENERGY name it (docs/results.md,
// "Latency"): TTFT, TPOT and E2E per request, ITL per output token.
type LatencyResult struct {
	Requests int            `json:"requests"`
	TTFT     *LatencyMetric `json:"ttft_s"`
	TPOT     *LatencyMetric `json:"tpot_s"`
	// ITL is every gap between a request's tokens (vLLM's ITL). Its key is
	// inter_token_s while itl_s is still the deprecated name of tpot_s.
	ITL *LatencyMetric `json:"inter_token_s"`
	E2E *LatencyMetric `json:"e2e_s"`
	// ITLDeprecated is tpot_s under its old name (llem called TPOT "ITL"),
	// kept for one release.
	ITLDeprecated *LatencyMetric `json:"itl_s"`
	Clock         string         `json:"clock"`
}

// LatencyMetric: the mean with its CI (IntervalOf), and percentiles.
type LatencyMetric struct {
	Mean   bootstrap.Interval `json:"mean"`
	Median Num                `json:"median"`
	P90    Num                `json:"p90"`
	P99    Num                `json:"p99"`
}

// CycleResult: statistics over the cycles' measured windows. Each
// interval is the mean over cycles of that metric's per-cycle values, with
// its BCa CI; nil below min_cycles or when some cycle has no value.
type CycleResult struct {
	N                     int                 `json:"n"`
	PerCycle              []CycleValue        `json:"per_cycle"`
	EnergyJ               *bootstrap.Interval `json:"energy_j"`
	EnergyPerOutputTokenJ *bootstrap.Interval `json:"energy_per_output_token_j"`
	OutputTokensPerS      *bootstrap.Interval `json:"output_tokens_per_s"`
	MeanPowerW            *bootstrap.Interval `json:"mean_power_w"`
	EnergyPerRequestJ     *bootstrap.Interval `json:"energy_per_request_j"`
	Note                  string              `json:"note,omitempty"`
}

// CycleValue is one cycle's measured windows, summed.
type CycleValue struct {
	Cycle int `json:"cycle"`
	Totals
}

// Totals are energy and work summed over some measured windows, and the
// metrics made from the sums. A window's energy is its counter energy,
// else its integrated energy (the rule of its own mean power and energy
// per token); a window with neither makes the energy NaN (null).
type Totals struct {
	EnergyJ               Num     `json:"energy_j"`
	OutputTokens          Num     `json:"output_tokens"`
	DurationS             float64 `json:"duration_s"`
	Requests              int     `json:"requests"`
	EnergyPerOutputTokenJ Num     `json:"energy_per_output_token_j"`
	OutputTokensPerS      Num     `json:"output_tokens_per_s"`
	MeanPowerW            Num     `json:"mean_power_w"`
	EnergyPerRequestJ     Num     `json:"energy_per_request_j"`
}

// RequestSummary counts the requests found in the events.
type RequestSummary struct {
	Total    int      `json:"total"`
	Problems []string `json:"problems"`
}
