// Command steplag measures when each of a GPU's power signals sees a load
// step, against the workload's own clock: the energy counter (read in a
// tight loop, so that each update is caught within one ~3 ms read), the
// instant power field (read every 2 ms) and the driver's 50 Hz power
// buffer (drained every 500 ms). A workload (bench/gpu/steplag.sh) writes
// the host times of its load steps; analysis.py turns the four files into
// the lags that docs/results.md quotes and the analysis models.
//
// It reads the GPU through llem's own NVML backend, as the recorder does,
// and writes CSV: counter.csv (the read before and the read that saw each
// new value), instant.csv (each new instant-power value) and driver.csv
// (every driver sample), with CLOCK_REALTIME nanoseconds.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/llem/llem/record/nvml"
)

func main() {
	gpu := flag.Int("gpu", 0, "GPU index")
	dur := flag.Duration("for", 60*time.Second, "how long to read")
	out := flag.String("out", ".", "directory for the CSV files")
	flag.Parse()
	if err := run(*gpu, *dur, *out); err != nil {
		fmt.Fprintln(os.Stderr, "steplag:", err)
		os.Exit(1)
	}
}

func run(index int, dur time.Duration, out string) error {
	b, err := nvml.Open(nvml.Options{GPUs: []int{index}})
	if err != nil {
		return err
	}
	defer b.Close()
	g := b.GPUs()[0]
	files := map[string]*bufio.Writer{}
	for name, header := range map[string]string{
		"counter.csv": "prev_end_ns,read_start_ns,read_end_ns,energy_mj",
		"instant.csv": "prev_ns,read_ns,instant_mw",
		"driver.csv":  "driver_us,power_mw",
	} {
		f, err := os.Create(filepath.Join(out, name))
		if err != nil {
			return err
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		fmt.Fprintln(w, header)
		files[name] = w
	}
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the counter: every change, with the read before it
		defer wg.Done()
		var last uint64
		var lastEnd int64
		for time.Now().Before(stop) {
			t0 := time.Now().UnixNano()
			e, err := g.EnergyMj()
			t1 := time.Now().UnixNano()
			if err == nil && e != last {
				fmt.Fprintf(files["counter.csv"], "%d,%d,%d,%d\n", lastEnd, t0, t1, e)
				last = e
			}
			lastEnd = t1
		}
	}()
	go func() { // instant power: every change
		defer wg.Done()
		var last int64 = -1
		var lastT int64
		for time.Now().Before(stop) {
			s, err := g.State()
			t := time.Now().UnixNano()
			if err == nil && s.InstantPowerMw != nil && *s.InstantPowerMw != last {
				fmt.Fprintf(files["instant.csv"], "%d,%d,%d\n", lastT, t, *s.InstantPowerMw)
				last = *s.InstantPowerMw
			}
			lastT = t
			time.Sleep(2 * time.Millisecond)
		}
	}()
	go func() { // the driver's buffer, as the recorder drains it
		defer wg.Done()
		var since uint64
		for time.Now().Before(stop) {
			ss, err := g.DriverPowerSamples(since)
			if err == nil {
				for _, s := range ss {
					fmt.Fprintf(files["driver.csv"], "%d,%d\n", s.TimestampUs, s.PowerMw)
					since = s.TimestampUs
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	wg.Wait()
	return nil
}
