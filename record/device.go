package record

import (
	"errors"
	"time"

	"github.com/llem/llem/trace"
)

// A Backend opens the GPUs of one kind of device: real ones through NVML,
// a simulated one, or a replayed run. It is the only place the recorder
// touches hardware, so every other path runs and is tested anywhere.
type Backend interface {
	// Name is what meta.json records as the device ("nvml", "sim", "replay:<run>").
	Name() string
	// GPUs returns the visible GPUs, ordered by index.
	GPUs() []GPU
	// Close releases the backend (nvmlShutdown for NVML).
	Close() error
}

// GPU is one device. Methods may be called from different goroutines at the
// same time (one sampling loop per kind of reading), so implementations must
// be safe for concurrent use.
type GPU interface {
	// Index is the GPU's index as the driver numbers it.
	Index() int
	// Info is the environment snapshot taken at the start of the run.
	Info() (trace.GPUInfo, error)
	// EnergyMj reads the cumulative energy counter in millijoules.
	EnergyMj() (uint64, error)
	// DriverPowerSamples returns the driver's buffered power samples newer
	// than sinceUs (driver microseconds; 0 for all), oldest first.
	DriverPowerSamples(sinceUs uint64) ([]PowerSample, error)
	// State reads the cheap, driver-cached fields. Fields the GPU does not
	// support are nil. The GPU and timestamp fields are filled by the caller.
	State() (trace.DeviceState, error)
}

// StateStreamer is a GPU that can poll State on a thread of its own, off
// the Go scheduler (NVML: each cgo call from Go wakes the runtime's
// monitor thread, which costs more CPU than the calls themselves). The
// recorder then takes the polls at its driver-buffer drain instead of
// polling State itself.
type StateStreamer interface {
	// StreamStates starts polling: the first poll at first, then every
	// interval, skipping (and counting) deadlines a slow poll overran.
	// An error means the GPU cannot stream; the caller polls State.
	StreamStates(first time.Time, interval time.Duration) (StateStream, error)
}

// StateStream is a running StateStreamer poll.
type StateStream interface {
	// Take appends the polls made since the last Take, oldest first.
	Take(dst []StatePoll) []StatePoll
	// Stop ends polling; polls not yet taken can still be taken. Safe
	// to call more than once.
	Stop()
	// Close stops polling and releases the stream.
	Close()
}

// StatePoll is one poll of a StateStream: State's row and error, when
// its calls returned, how late it began and how many later deadlines it
// overran (as the recorder's own schedule counts them).
type StatePoll struct {
	At     time.Time
	State  trace.DeviceState
	Err    error
	Late   time.Duration
	Missed int64
}

// PowerSample is one entry of the driver's power-sample buffer.
type PowerSample struct {
	TimestampUs uint64 // driver wall clock, microseconds since the Unix epoch
	PowerMw     uint32
}

// LoadObserver is implemented by simulated devices, which need to know when
// the recorded command is running to model a busy GPU.
type LoadObserver interface {
	SetBusy(busy bool, atNs int64)
}

// TruthReporter is implemented by simulated devices: the ground truth over
// [startNs, endNs], written into meta.json as sim_truth.
type TruthReporter interface {
	Truth(startNs, endNs int64) *trace.SimTruth
}

// ErrGPULost is returned (wrapped) by a GPU whose device has gone away; the
// recorder marks the GPU lost and stops polling it, and the run goes on.
var ErrGPULost = errors.New("GPU lost")

// ErrNotSupported is returned (wrapped) for a reading the GPU cannot give.
var ErrNotSupported = errors.New("not supported")
