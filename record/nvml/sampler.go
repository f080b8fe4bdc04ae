//go:build cgo

package nvml

/*
#cgo LDFLAGS: -ldl -lpthread
#include "sampler.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/llem/llem/internal/wake"
	"github.com/llem/llem/record"
	"github.com/llem/llem/trace"
)

// Each reading's kind: its call in the C poll, in the order of
// GPU.readings (TestReadingKindsInOrder).
const (
	kindInstant = iota
	kindAverage
	kindTemperature
	kindSMClock
	kindMemClock
	kindPState
	kindUtilization
	kindReasons
	kindMemory
	kindCount
)

// StateThreadEnv turns the state thread off when set to 0: State is then
// polled on the Go schedule as before (for comparisons and as a way out).
const StateThreadEnv = "LLEM_NVML_STATE_THREAD"

// stateStream polls a GPU's state on a thread of its own, outside the Go
// scheduler, and hands the polls over when taken.
//
// Why: every cgo call from Go enters the runtime's system-call path, which
// wakes the runtime's monitor thread (sysmon) when it sleeps, and sysmon
// then polls every 20 us for as long as a P is busy. A state poll is nine
// NVML calls of a few microseconds each; made from Go ten times a second,
// its wake-ups cost the recorder more CPU than the calls themselves. The C
// thread sleeps on a condition variable to absolute CLOCK_MONOTONIC
// deadlines and makes the calls with nothing else around them; Go takes
// the polls at the driver-buffer drain (every second), one cgo call.
type stateStream struct {
	g  *GPU
	s  *C.llem_sampler
	mu sync.Mutex
	// disabled: kinds whose columns were found unsupported, already
	// turned off in the thread.
	disabled [kindCount]bool
	buf      []C.llem_poll
	stopped  bool
}

var _ record.StateStream = (*stateStream)(nil)

// StreamStates starts polling State on a thread of its own, the first
// poll at first and then every interval (record.StateStreamer). It fails
// where the thread cannot be used (the mock library of tests, a symbol
// missing, LLEM_NVML_STATE_THREAD=0); the caller then polls State itself.
func (g *GPU) StreamStates(first time.Time, interval time.Duration) (record.StateStream, error) {
	if os.Getenv(StateThreadEnv) == "0" {
		return nil, fmt.Errorf("nvml: the state thread is off (%s=0)", StateThreadEnv)
	}
	if g.b.path == "" {
		return nil, errors.New("nvml: the state thread needs the real NVML library")
	}
	if err := g.lost(); err != nil {
		return nil, err
	}
	var symbols [kindCount]*C.char
	for _, r := range g.readings {
		if g.b.has(r.symbol) && !g.allUnsupported(r.cols) {
			symbols[r.kind] = C.CString(r.symbol)
			defer C.free(unsafe.Pointer(symbols[r.kind]))
		}
	}
	lib := C.CString(g.b.path)
	defer C.free(unsafe.Pointer(lib))
	var why *C.char
	s := C.llem_sampler_new(lib, C.uint(g.index), &symbols[0], &why)
	if s == nil {
		return nil, fmt.Errorf("nvml: GPU %d: state thread: %s", g.index, C.GoString(why))
	}
	return startStream(g, s, first, interval)
}

func startStream(g *GPU, s *C.llem_sampler, first time.Time, interval time.Duration) (*stateStream, error) {
	s.code_lost, s.code_timeout, s.code_reset = C.int(nvml.ERROR_GPU_IS_LOST), C.int(nvml.ERROR_TIMEOUT), C.int(nvml.ERROR_RESET_REQUIRED)
	s.sensor_gpu, s.clock_sm, s.clock_mem = C.int(nvml.TEMPERATURE_GPU), C.int(nvml.CLOCK_SM), C.int(nvml.CLOCK_MEM)
	s.field_instant = C.uint(nvml.FI_DEV_POWER_INSTANT)
	if !wake.MonoOK() {
		C.llem_sampler_free(s)
		return nil, fmt.Errorf("nvml: GPU %d: state thread: CLOCK_MONOTONIC cannot be read", g.index)
	}
	firstNs := wake.MonoNs(first)
	if rc := C.llem_sampler_start(s, C.int64_t(firstNs), C.int64_t(interval)); rc != 0 {
		C.llem_sampler_free(s)
		return nil, fmt.Errorf("nvml: GPU %d: starting the state thread: errno %d", g.index, int(rc))
	}
	ss := &stateStream{g: g, s: s, buf: make([]C.llem_poll, 64)}
	g.mu.Lock()
	g.streams = append(g.streams, ss)
	g.mu.Unlock()
	return ss, nil
}

// closeStreams closes the GPU's state threads (Backend.Close).
func (g *GPU) closeStreams() {
	g.mu.Lock()
	streams := g.streams
	g.streams = nil
	g.mu.Unlock()
	for _, ss := range streams {
		ss.Close()
	}
}

// Take appends the polls made since the last Take to dst, oldest first,
// each as State would have returned it.
func (ss *stateStream) Take(dst []record.StatePoll) []record.StatePoll {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.s == nil {
		return dst
	}
	for {
		var overwritten C.int64_t
		n := int(C.llem_sampler_take(ss.s, &ss.buf[0], C.int(len(ss.buf)), &overwritten))
		if overwritten > 0 {
			// Polls the thread had to drop because nobody took them (a
			// recorder stalled for minutes): reported as missed deadlines.
			dst = append(dst, record.StatePoll{Err: fmt.Errorf("nvml: GPU %d: %d state polls overwritten before they were taken", ss.g.index, int64(overwritten)), Missed: int64(overwritten), At: time.Now()})
		}
		for i := range n {
			p := &ss.buf[i]
			st, err := ss.g.applyPoll(p)
			dst = append(dst, record.StatePoll{
				At:     wake.FromMono(int64(p.done_ns)),
				State:  st,
				Err:    err,
				Late:   time.Duration(p.late_ns),
				Missed: int64(p.missed),
			})
		}
		if n < len(ss.buf) {
			break
		}
	}
	// Columns found unsupported are not asked for again.
	for _, r := range ss.g.readings {
		if !ss.disabled[r.kind] && ss.g.allUnsupported(r.cols) {
			ss.disabled[r.kind] = true
			C.llem_sampler_disable(ss.s, C.int(r.kind))
		}
	}
	return dst
}

// Stop ends the thread; polls it made and were not taken can still be
// taken. It is safe to call more than once.
func (ss *stateStream) Stop() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.s != nil && !ss.stopped {
		C.llem_sampler_stop(ss.s)
		ss.stopped = true
	}
}

// Close stops the thread and frees it; nothing can be taken after.
func (ss *stateStream) Close() {
	ss.Stop()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.s != nil {
		C.llem_sampler_free(ss.s)
		ss.s = nil
	}
}

// applyPoll turns one C poll into the row State would have returned,
// with the same bookkeeping (check) of every call's result.
func (g *GPU) applyPoll(p *C.llem_poll) (trace.DeviceState, error) {
	var raw rawState
	for k := range kindCount {
		raw.ret[k] = nvml.Return(p.ret[k])
	}
	raw.instant = nvml.FieldValue{
		FieldId:    uint32(p.instant.fieldId),
		ScopeId:    uint32(p.instant.scopeId),
		Timestamp:  int64(p.instant.timestamp),
		ValueType:  uint32(p.instant.valueType),
		NvmlReturn: uint32(p.instant.nvmlReturn),
	}
	for i := range raw.instant.Value {
		raw.instant.Value[i] = byte(p.instant.value[i])
	}
	raw.averageMw = uint32(p.average_mw)
	raw.temperatureC = uint32(p.temperature_c)
	raw.smMHz, raw.memMHz = uint32(p.sm_mhz), uint32(p.mem_mhz)
	raw.pstate = nvml.Pstates(p.pstate)
	raw.util = nvml.Utilization{Gpu: uint32(p.util_gpu), Memory: uint32(p.util_mem)}
	raw.reasons = uint64(p.reasons)
	raw.memoryUsed = uint64(p.memory_used)
	return g.applyRaw(&raw, nil)
}
