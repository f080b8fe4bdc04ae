package trace

// HostEnergyDeltaUj is the energy in microjoules between two reads of a
// RAPL counter whose range is maxUj (meta.json's max_energy_range_uj):
// cur-prev, or, when the counter went down, one wrap: maxUj-prev+cur, as
// Zeus and the kernel's own users count it. ok is false for a decrease
// that no wrap explains (maxUj unknown, or a value above it): the energy
// between the two reads is unknown. Reads far enough apart for the counter
// to wrap twice cannot be told from one wrap; the recorder reads every
// second, and the fastest wrap takes minutes.
func HostEnergyDeltaUj(prev, cur, maxUj int64) (delta int64, wrapped, ok bool) {
	if cur >= prev {
		return cur - prev, false, true
	}
	if maxUj <= 0 || prev > maxUj {
		return 0, false, false
	}
	return maxUj - prev + cur, true, true
}

// HostDomainSummary is one host energy domain's account in Summary.
type HostDomainSummary struct {
	Name    string  `json:"name"`
	Zone    string  `json:"zone"`
	Reads   int64   `json:"reads"`
	EnergyJ float64 `json:"energy_j"`
	Wraps   int     `json:"wraps"`
	// Unexplained counts decreases no wrap explains: the energy between
	// those two reads is not in EnergyJ.
	Unexplained int `json:"unexplained_decreases,omitempty"`

	prev int64
	max  int64
}

// HostSummary is Summary's account of the host_energy table.
type HostSummary struct {
	Domains []HostDomainSummary `json:"domains"`
	// Unavailable and Reason are meta.json's: why no domain was recorded.
	Unavailable string `json:"unavailable,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// summarizeHost sums each domain's energy over the run, wraps unwrapped.
func summarizeHost(r *Run) (*HostSummary, error) {
	h := r.Meta.HostEnergy
	if h == nil {
		return nil, nil
	}
	hs := &HostSummary{Domains: []HostDomainSummary{}, Unavailable: h.Unavailable, Reason: h.Reason}
	byName := map[string]int{}
	for _, d := range h.Domains {
		byName[d.Name] = len(hs.Domains)
		hs.Domains = append(hs.Domains, HostDomainSummary{Name: d.Name, Zone: d.Zone, max: d.MaxEnergyRangeUj})
	}
	err := ScanTable(r, TableHostEnergy, 0, func(rows []HostEnergyRead) error {
		for _, x := range rows {
			i, ok := byName[x.Name]
			if !ok {
				i = len(hs.Domains)
				byName[x.Name] = i
				hs.Domains = append(hs.Domains, HostDomainSummary{Name: x.Name, Zone: x.Zone})
			}
			d := &hs.Domains[i]
			if d.Reads > 0 {
				delta, wrapped, ok := HostEnergyDeltaUj(d.prev, x.EnergyUj, d.max)
				switch {
				case !ok:
					d.Unexplained++
				case wrapped:
					d.Wraps++
				}
				d.EnergyJ += float64(delta) / 1e6
			}
			d.prev = x.EnergyUj
			d.Reads++
		}
		return nil
	})
	return hs, err
}
