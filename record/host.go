package record

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/llem/llem/record/rapl"
	"github.com/llem/llem/trace"
)

// DefaultHostEnergyInterval is how often the host's RAPL counters are read
// between the reads at every phase and cycle boundary. They are cumulative,
// so the rate costs no energy, only time resolution inside a window; the
// fastest wrap (a package's ~262 kJ range at a few hundred W) takes
// minutes. One read of four domains cost ~80 us of CPU on fixture files
// (BenchmarkRead in record/rapl), so 1 s keeps it under 0.01% of a core.
const DefaultHostEnergyInterval = time.Second

// openHost finds the host's RAPL counters under cfg.SysfsRoot and says in
// the log when there are none, or some could not be read: meta.json's
// host_energy keeps the same account.
func (r *recorder) openHost() {
	reader, info := rapl.Open(r.cfg.SysfsRoot)
	r.meta.HostEnergy = info
	if reader == nil {
		fmt.Fprintf(r.cfg.Log, "llem: host energy (RAPL) not recorded: %s\n", info.Reason)
		return
	}
	info.IntervalMs = ms(r.cfg.HostEnergyInterval)
	r.host = reader
	r.loops["host_energy"] = &loopStats{interval: r.cfg.HostEnergyInterval}
	var names []string
	for _, d := range info.Domains {
		names = append(names, d.Name)
	}
	fmt.Fprintf(r.cfg.Log, "llem: recording host energy (RAPL): %s\n", strings.Join(names, ", "))
	for _, u := range info.Unreadable {
		fmt.Fprintf(r.cfg.Log, "llem: host energy: %s not recorded: %s\n", u.Zone, u.Error)
	}
}

// startHostLoop takes the first read of the host counters and starts their
// schedule; it also reads them at every boundary and once at the end, as
// the GPUs' counters are.
func (r *recorder) startHostLoop(ctx context.Context, wg *sync.WaitGroup) {
	var mu sync.Mutex // boundary reads come from other goroutines
	var vals []int64
	var ok []bool
	read := func() (bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		t := r.clock.Now()
		vals, ok = r.host.Read(vals, ok)
		failed := false
		rows := make([]trace.HostEnergyRead, 0, len(vals))
		for i, d := range r.host.Domains {
			if !ok[i] {
				failed = true
				continue
			}
			rows = append(rows, trace.HostEnergyRead{TimestampNs: t, Zone: d.Zone, Name: d.Name, EnergyUj: vals[i]})
		}
		r.out.hostEnergy(rows)
		return true, failed
	}
	r.boundary = append(r.boundary, func() { read() })
	r.hostFinal = func() { read() }
	read()
	st := r.loops["host_energy"]
	wg.Add(1)
	go func() {
		defer wg.Done()
		runSchedule(ctx, r.sampleStart, []*task{{interval: st.interval, stats: st, step: read}})
	}()
}
