// Package nvml is the record.Backend for real NVIDIA GPUs, read through
// NVML (github.com/NVIDIA/go-nvml). It is the only package of llem that
// imports go-nvml and the only one that needs cgo: built with
// CGO_ENABLED=0, Open returns an error that points the user to --device sim.
//
// The driver library (libnvidia-ml.so.1) is loaded with dlopen when Open
// is called, not linked, so one binary runs on hosts with and without the
// NVIDIA driver; without it Open returns an error wrapping ErrNoDriver.
//
// Besides record.GPU, each GPU returned by Backend.GPUs has two methods the
// recorder can reach with a type assertion to collect what it learned over
// the run (Info's copies are only a snapshot of the moment Info was called):
//
//	interface {
//		Errors() map[string]int64 // failed calls by call name
//		Unsupported() []string    // table columns this GPU does not report
//	}
package nvml

import (
	"errors"

	"github.com/llem/llem/trace"
)

// ErrNoDriver is returned (wrapped) by Open when NVML cannot be used in
// this process: the driver library is missing, the kernel driver is not
// loaded, or the binary was built without cgo. The wrapped error's text
// says which, and suggests --device sim.
var ErrNoDriver = errors.New("NVIDIA driver not available")

// Options choose what Open opens.
type Options struct {
	// GPUs are the driver's GPU indices to open (as nvidia-smi numbers
	// them; CUDA_VISIBLE_DEVICES does not apply to NVML). Nil opens every
	// GPU the driver shows.
	GPUs []int
	// LibraryPath is the NVML library to load; "" loads libnvidia-ml.so.1
	// through the dynamic loader's usual search path.
	LibraryPath string
}

// DefaultLibrary is the NVML library loaded when Options.LibraryPath is "".
const DefaultLibrary = "libnvidia-ml.so.1"

// Column names, as the trace tables name them (package trace names
// them once), used in Unsupported.
const (
	ColEnergy            = trace.ColEnergyMj
	ColDriverPower       = trace.ColDriverPowerMw
	ColInstantPower      = trace.ColInstantPowerMw
	ColAveragePower      = trace.ColAveragePowerMw
	ColTemperature       = trace.ColTemperatureC
	ColSMClock           = trace.ColSMClockMHz
	ColMemClock          = trace.ColMemClockMHz
	ColPState            = trace.ColPState
	ColGPUUtil           = trace.ColGPUUtilPct
	ColMemUtil           = trace.ColMemUtilPct
	ColClockEventReasons = trace.ColClockEventReasons
	ColMemoryUsed        = trace.ColMemoryUsedBytes
)
