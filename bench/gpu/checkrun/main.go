// Command checkrun checks a real recording the way issue 3 asks: every
// driver power sample captured (no gap over 60 ms), and energy from the
// counter against the integral of instant power (and of the driver's
// samples) over the same windows. Usage: go run ./bench/gpu/checkrun RUN...
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

type window struct {
	name       string
	start, end int64
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: checkrun RUN_DIR...")
		os.Exit(2)
	}
	for _, dir := range os.Args[1:] {
		if err := check(dir); err != nil {
			fmt.Fprintf(os.Stderr, "checkrun: %v\n", err)
			os.Exit(1)
		}
	}
}

func check(dir string) error {
	run, err := trace.Open(dir)
	if err != nil {
		return err
	}
	dp, err := trace.ReadTable[trace.DriverPowerSample](run, trace.TableDriverPower)
	if err != nil {
		return err
	}
	en, err := trace.ReadTable[trace.EnergyRead](run, trace.TableEnergy)
	if err != nil {
		return err
	}
	st, err := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	if err != nil {
		return err
	}
	evs, err := trace.ReadTable[trace.Event](run, trace.TableEvents)
	if err != nil {
		return err
	}
	sort.Slice(dp, func(i, j int) bool { return dp[i].TimestampNs < dp[j].TimestampNs })
	sort.Slice(en, func(i, j int) bool { return en[i].TimestampNs < en[j].TimestampNs })
	// CHECKRUN_EVERY=k keeps every k-th energy read: what a k-times
	// longer --energy-interval would have recorded.
	if k, _ := strconv.Atoi(os.Getenv("CHECKRUN_EVERY")); k > 1 {
		var thin []trace.EnergyRead
		for i := 0; i < len(en); i += k {
			thin = append(thin, en[i])
		}
		en = thin
	}
	sort.Slice(st, func(i, j int) bool { return st[i].TimestampNs < st[j].TimestampNs })
	sort.Slice(evs, func(i, j int) bool { return evs[i].TimestampNs < evs[j].TimestampNs })

	var maxGap int64
	over := 0
	for i := 1; i < len(dp); i++ {
		g := dp[i].TimestampNs - dp[i-1].TimestampNs
		maxGap = max(maxGap, g)
		if g > 60e6 {
			over++
		}
	}
	fmt.Printf("%s\n  driver samples %d over %.1f s, largest gap %.1f ms, gaps over 60 ms: %d\n",
		dir, len(dp), float64(dp[len(dp)-1].TimestampNs-dp[0].TimestampNs)/1e9, float64(maxGap)/1e6, over)

	var t0, tMax, tLast int32 = -1, -1, -1
	for _, s := range st {
		if s.TemperatureC != nil {
			if t0 < 0 {
				t0 = *s.TemperatureC
			}
			tMax, tLast = max(tMax, *s.TemperatureC), *s.TemperatureC
		}
	}
	fmt.Printf("  temperature %d C at the start, %d C max, %d C at the end\n", t0, tMax, tLast)

	var inst, drv []analyze.PowerPoint
	for _, s := range st {
		if s.InstantPowerMw != nil {
			inst = append(inst, analyze.PowerPoint{TimestampNs: s.TimestampNs, Watts: float64(*s.InstantPowerMw) / 1000})
		}
	}
	for _, s := range dp {
		drv = append(drv, analyze.PowerPoint{TimestampNs: s.TimestampNs, Watts: float64(s.DriverPowerMw) / 1000})
	}

	// Windows: each cycle, each client phase, and the whole recording.
	var ws []window
	open := map[string]int64{}
	for _, e := range evs {
		key := e.Kind
		switch e.Kind {
		case "cycle_start", "phase_start":
			if e.Cycle != nil {
				key = fmt.Sprintf("cycle %d", *e.Cycle)
			} else {
				key = e.Name
			}
			open[key] = e.TimestampNs
		case "cycle_end", "phase_end":
			if e.Cycle != nil {
				key = fmt.Sprintf("cycle %d", *e.Cycle)
			} else {
				key = e.Name
			}
			if s, ok := open[key]; ok {
				ws = append(ws, window{key, s, e.TimestampNs})
				delete(open, key)
			}
		}
	}
	ws = append(ws, window{"whole (first..last read)", en[0].TimestampNs, en[len(en)-1].TimestampNs})
	fmt.Printf("  %-26s %8s %9s %11s %11s %8s %8s\n", "window", "len s", "mean W", "counter J", "instant J", "diff %", "drv %")
	for _, w := range ws {
		c, ok1 := analyze.CounterEnergyJ(en, w.start, w.end)
		i, ok2 := analyze.IntegrateJ(inst, w.start, w.end)
		d, ok3 := analyze.IntegrateJ(drv, w.start, w.end)
		if !ok1 {
			fmt.Printf("  %-26s not covered by the counter reads\n", w.name)
			continue
		}
		if !ok2 || !ok3 {
			fmt.Printf("  %-26s %8.1f %9.1f %11.1f  (power series do not cover the edges)\n", w.name, float64(w.end-w.start)/1e9, c/(float64(w.end-w.start)/1e9), c)
			continue
		}
		secs := float64(w.end-w.start) / 1e9
		fmt.Printf("  %-26s %8.1f %9.1f %11.1f %11.1f %+8.2f %+8.2f\n", w.name, secs, c/secs, c, i, 100*(i-c)/c, 100*(d-c)/c)
	}
	return nil
}
