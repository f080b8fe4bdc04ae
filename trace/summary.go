package trace

import (
	"math"
	"sort"
)

// Summary is the short account of a run printed by `llem info`: what was
// recorded and how densely, with no methodology applied.
type Summary struct {
	Dir         string         `json:"dir"`
	RunID       string         `json:"run_id"`
	Device      string         `json:"device"`
	Status      string         `json:"status"`
	Complete    bool           `json:"complete"`
	DurationS   float64        `json:"duration_s"`
	Command     []string       `json:"command,omitempty"`
	ExitCode    *int           `json:"exit_code,omitempty"`
	GPUs        []GPUSummary   `json:"gpus"`
	EventKinds  map[string]int `json:"events_by_kind"`
	BadEvents   int64          `json:"bad_events"`
	Warnings    []Warning      `json:"warnings"`
	PartialSegs int            `json:"partial_segments"`
	Bytes       int64          `json:"bytes"`
	SimTruth    *SimTruth      `json:"sim_truth,omitempty"`
	// Host is the host's RAPL energy (absent when meta.json says nothing
	// of it: runs recorded before it, imports).
	Host *HostSummary `json:"host_energy,omitempty"`
	// Damage lists the files that could not be read or were left out
	// (Run.Damage), Gaps the spans with missing rows (Run.Gaps).
	Damage []Damage `json:"damage"`
	Gaps   []Gap    `json:"gaps"`
}

// GPUSummary counts one GPU's rows and rates.
type GPUSummary struct {
	Index            int     `json:"index"`
	Name             string  `json:"name"`
	DriverPowerRows  int64   `json:"driver_power_samples"`
	DriverPowerHz    float64 `json:"driver_power_hz"`
	MaxDriverGapMs   float64 `json:"max_driver_power_gap_ms"`
	EnergyReads      int64   `json:"energy_reads"`
	StateRows        int64   `json:"state_rows"`
	StateHz          float64 `json:"state_hz"`
	CounterEnergyJ   float64 `json:"counter_energy_j"`
	CounterResets    int     `json:"counter_resets"`
	MeanDriverPowerW float64 `json:"mean_driver_power_w"`
	Lost             bool    `json:"lost,omitempty"`
	firstDP, lastDP  int64
	firstSt, lastSt  int64
	prevMj           int64
	haveMj           bool
	sumDriverMw      float64
}

// Summarize streams every table of the run once.
func Summarize(r *Run) (*Summary, error) {
	m := r.Meta
	s := &Summary{Dir: r.Dir, RunID: m.RunID, Device: m.Device, Status: m.Status, Complete: m.Complete,
		EventKinds: map[string]int{}, Warnings: m.Warnings, PartialSegs: len(r.Partial), SimTruth: m.SimTruth}
	if m.Command != nil {
		s.Command, s.ExitCode = m.Command.Argv, m.Command.ExitCode
	}
	byIdx := map[int32]*GPUSummary{}
	gpu := func(i int32) *GPUSummary {
		g, ok := byIdx[i]
		if !ok {
			g = &GPUSummary{Index: int(i), firstDP: math.MaxInt64, firstSt: math.MaxInt64}
			byIdx[i] = g
		}
		return g
	}
	for _, info := range m.GPUs {
		g := gpu(int32(info.Index))
		g.Name, g.Lost = info.Name, info.Lost
	}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	span := func(ts int64) {
		first, last = min(first, ts), max(last, ts)
	}
	err := ScanTable(r, TableDriverPower, 0, func(rows []DriverPowerSample) error {
		for _, x := range rows {
			g := gpu(x.GPU)
			if g.DriverPowerRows > 0 {
				if gap := float64(x.TimestampNs-g.lastDP) / 1e6; gap > g.MaxDriverGapMs {
					g.MaxDriverGapMs = gap
				}
			}
			g.DriverPowerRows++
			g.sumDriverMw += float64(x.DriverPowerMw)
			g.firstDP, g.lastDP = min(g.firstDP, x.TimestampNs), max(g.lastDP, x.TimestampNs)
			span(x.TimestampNs)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = ScanTable(r, TableEnergy, 0, func(rows []EnergyRead) error {
		for _, x := range rows {
			g := gpu(x.GPU)
			g.EnergyReads++
			if g.haveMj {
				if x.EnergyMj >= g.prevMj {
					g.CounterEnergyJ += float64(x.EnergyMj-g.prevMj) / 1000
				} else {
					g.CounterResets++ // energy since the reset is counted from the next read on
				}
			}
			g.prevMj, g.haveMj = x.EnergyMj, true
			span(x.TimestampNs)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// State rows and events are counted by column: a row struct with ten
	// optional fields, or an event with strings, costs a microsecond to
	// decode, and a long run has millions of token events.
	err = ScanColumns(r, TableState, []string{ColGPU, ColTimestampNs}, 0, func(c *Columns) error {
		for i := 0; i < c.Len(); i++ {
			gi, _ := c.Int(0, i)
			t, _ := c.Int(1, i)
			g := gpu(int32(gi))
			g.StateRows++
			g.firstSt, g.lastSt = min(g.firstSt, t), max(g.lastSt, t)
			span(t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = ScanColumns(r, TableEvents, []string{"kind"}, 0, func(c *Columns) error {
		for i := 0; i < c.Len(); i++ {
			s.EventKinds[string(c.Bytes(0, i))]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// bad_events is read too, only so that a damaged segment of it is
	// found and reported like any other.
	err = ScanColumns(r, TableBadEvents, []string{ColTimestampNs}, 0, func(*Columns) error { return nil })
	if err != nil {
		return nil, err
	}
	if s.Host, err = summarizeHost(r); err != nil {
		return nil, err
	}
	s.BadEvents = m.Events.Bad
	if last > first {
		s.DurationS = float64(last-first) / 1e9
	}
	for _, g := range byIdx {
		if g.DriverPowerRows > 1 && g.lastDP > g.firstDP {
			g.DriverPowerHz = float64(g.DriverPowerRows-1) / (float64(g.lastDP-g.firstDP) / 1e9)
			g.MeanDriverPowerW = g.sumDriverMw / float64(g.DriverPowerRows) / 1000
		}
		if g.StateRows > 1 && g.lastSt > g.firstSt {
			g.StateHz = float64(g.StateRows-1) / (float64(g.lastSt-g.firstSt) / 1e9)
		}
		s.GPUs = append(s.GPUs, *g)
	}
	sort.Slice(s.GPUs, func(i, j int) bool { return s.GPUs[i].Index < s.GPUs[j].Index })
	for _, segs := range r.Segments {
		s.Bytes += fileBytes(segs)
	}
	s.Damage, s.Gaps = r.Damage(), r.Gaps()
	if s.Damage == nil {
		s.Damage = []Damage{}
	}
	if s.Gaps == nil {
		s.Gaps = []Gap{}
	}
	return s, nil
}
