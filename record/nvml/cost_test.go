//go:build cgo

package nvml

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// threadCPU is the CPU time (user + system) of the calling OS thread. The
// benchmarks lock their goroutine to a thread, so this is the cost of the
// NVML calls themselves (the driver's ioctls included), not of other
// goroutines.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNVMLCalls measures the CPU each NVML reading of the recorder
// costs on this machine's first GPU (it skips without a driver). cpu-us/op
// is what matters for the recorder's overhead; ns/op is the call's wall
// time. Run on a GPU host:
//
//	go test -run '^$' -bench NVMLCalls -benchtime 200x ./record/nvml
func BenchmarkNVMLCalls(b *testing.B) {
	be, err := Open(Options{GPUs: []int{0}})
	if errors.Is(err, ErrNoDriver) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	g := be.gpus[0]
	nowUs := func() uint64 { return uint64(time.Now().UnixMicro()) }
	run := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0 := threadCPU()
			for b.Loop() {
				f()
			}
			b.ReportMetric(float64(threadCPU()-c0)/float64(b.N)/1e3, "cpu-us/op")
		})
	}
	run("EnergyCounter", func() { g.dev.GetTotalEnergyConsumption() })
	// A drain that finds nothing new: NVML answers the sizing call with
	// NOT_FOUND, so go-nvml makes one call.
	run("SamplesNoneNew", func() { g.dev.GetSamples(nvml.TOTAL_POWER_SAMPLES, nowUs()+1e9) })
	// A drain every 0.5 s returns ~25 samples: go-nvml makes two calls
	// (sizing, then fetching).
	run("SamplesLast500ms", func() { g.dev.GetSamples(nvml.TOTAL_POWER_SAMPLES, nowUs()-500_000) })
	run("SamplesWholeBuffer", func() { g.dev.GetSamples(nvml.TOTAL_POWER_SAMPLES, 0) })
	run("State", func() { g.State() })
	run("InstantPowerField", func() {
		fv := []nvml.FieldValue{{FieldId: nvml.FI_DEV_POWER_INSTANT}}
		g.dev.GetFieldValues(fv)
	})
	run("GetPowerUsage", func() { g.dev.GetPowerUsage() })
	run("GetTemperature", func() { g.dev.GetTemperature(nvml.TEMPERATURE_GPU) })
	run("GetUtilizationRates", func() { g.dev.GetUtilizationRates() })
	run("GetMemoryInfo", func() { g.dev.GetMemoryInfo() })
	run("Info", func() { g.Info() })
}
