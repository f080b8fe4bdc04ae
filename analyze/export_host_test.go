package analyze

// NewHostDomainForTest makes a domain from cumulative energy reads (J).
func NewHostDomainForTest(name string, t []int64, j []float64, edgeNs int64) *HostDomain {
	return &HostDomain{Name: name, Energy: Series{T: t, V: j}, edgeNs: edgeNs}
}

// HostWindowForTest is h's energy over [start, end].
func HostWindowForTest(h *HostDomain, start, end int64) Num { return h.window(start, end) }
