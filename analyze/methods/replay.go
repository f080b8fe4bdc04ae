package methods

import "github.com/llem/llem/analyze"

// Doc is what `llem replay --json` writes: each run's windows, each
// measured by every method and compared with llem's own energy.
type Doc struct {
	Runs []RunReplay `json:"runs"`
}

// RunReplay is one run's windows, replayed.
type RunReplay struct {
	Run     string         `json:"run"`
	Windows []WindowReplay `json:"windows"`
}

// WindowReplay is one window measured by every method.
type WindowReplay struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Cycle     int     `json:"cycle"`
	StartS    float64 `json:"start_s"`
	EndS      float64 `json:"end_s"`
	DurationS float64 `json:"duration_s"`
	// LlemEnergyJ is energy_j of llem analyze (the counter, edges split
	// by the driver power), else its integrated power where the counter
	// does not cover the window.
	LlemEnergyJ analyze.Num `json:"llem_energy_j"`
	// LlemUncertaintyPct is llem's stated 95% bound on its own energy: a
	// method further off than it is off the truth.
	LlemUncertaintyPct analyze.Num `json:"llem_uncertainty_pct"`
	Methods            []Result    `json:"methods"`
}

// Result is one method's measurement of a window and its error against
// llem's energy, (method - llem) / llem in %.
type Result struct {
	Method     string      `json:"method"`
	EnergyJ    analyze.Num `json:"energy_j"`
	MeanPowerW analyze.Num `json:"mean_power_w"`
	ErrorPct   analyze.Num `json:"error_pct"`
}

// Replay measures every window of an analysed run with every method.
func Replay(r *analyze.Run, ms []Method) RunReplay {
	out := RunReplay{Run: r.Dir, Windows: []WindowReplay{}}
	for _, w := range r.Result.Windows {
		llem := w.EnergyJ
		if !llem.Valid() {
			llem = w.EnergyIntegratedJ
		}
		rw := WindowReplay{Name: w.Name, Kind: w.Kind, Cycle: w.Cycle, StartS: w.StartS, EndS: w.EndS,
			DurationS: w.DurationS, LlemEnergyJ: llem, LlemUncertaintyPct: w.UncertaintyPct, Methods: []Result{}}
		for _, m := range ms {
			res := Result{Method: m.String(), EnergyJ: analyze.NaN, MeanPowerW: analyze.NaN, ErrorPct: analyze.NaN}
			if e, p, ok := m.Measure(r.Data, w.StartNs, w.EndNs); ok {
				res.EnergyJ, res.MeanPowerW = analyze.Num(e), analyze.Num(p)
				if llem.Valid() && llem != 0 {
					res.ErrorPct = (res.EnergyJ - llem) / llem * 100
				}
			}
			rw.Methods = append(rw.Methods, res)
		}
		out.Windows = append(out.Windows, rw)
	}
	return out
}
