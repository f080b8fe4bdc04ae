//go:build cgo

package nvml

// Fake NVML calls in C for the state thread's tests (sampler_test.go):
// cgo is not allowed in test files, so they live here, a few hundred
// bytes of the binary. Nothing outside the tests calls them.

/*
#include "sampler.h"

enum { FAKE_KINDS = K_COUNT };
static int fake_ret[FAKE_KINDS];        // what each call returns
static volatile int fake_calls[FAKE_KINDS];
static int fake_delay_us;               // how long the first call takes
static int fake_device;                 // the handle's target

static void fake_delay(void) {
	if (fake_delay_us > 0) {
		struct timespec t = {fake_delay_us / 1000000, (fake_delay_us % 1000000) * 1000L};
		nanosleep(&t, NULL);
	}
}
static int fake_instant(void *d, int n, llem_field_value *v) {
	fake_calls[0]++;
	fake_delay();
	if (d != &fake_device || n != 1 || v->fieldId != 186) return 2; // INVALID_ARGUMENT
	v->valueType = 1;                                          // unsigned int
	v->nvmlReturn = 0;
	unsigned int mw = 75000 + fake_calls[0];
	memcpy(v->value, &mw, sizeof mw);
	return fake_ret[0];
}
static int fake_average(void *d, unsigned int *v) { fake_calls[1]++; *v = 74000; return fake_ret[1]; }
static int fake_temperature(void *d, int sensor, unsigned int *v) {
	fake_calls[2]++;
	*v = sensor == 0 ? 41 : 0;
	return fake_ret[2];
}
static int fake_clock(void *d, int type, unsigned int *v) {
	int k = type == 1 ? 3 : 4;
	fake_calls[k]++;
	*v = type == 1 ? 1980 : type == 2 ? 2619 : 0;
	return fake_ret[k];
}
static int fake_pstate(void *d, int *v) { fake_calls[5]++; *v = 0; return fake_ret[5]; }
static int fake_utilization(void *d, llem_utilization *v) { fake_calls[6]++; v->gpu = 97, v->memory = 40; return fake_ret[6]; }
static int fake_reasons(void *d, unsigned long long *v) { fake_calls[7]++; *v = 4; return fake_ret[7]; }
static int fake_memory_info(void *d, llem_memory *v) { fake_calls[8]++; v->used = 1ULL << 33; return fake_ret[8]; }

static void fake_reset(int delay_us) {
	memset((void *)fake_calls, 0, sizeof fake_calls);
	memset(fake_ret, 0, sizeof fake_ret);
	fake_delay_us = delay_us;
}
static void fake_set_ret(int kind, int ret) { fake_ret[kind] = ret; }
static int fake_get_calls(int kind) { return fake_calls[kind]; }
static void *fake_fn(int kind) {
	void *fns[FAKE_KINDS] = {fake_instant, fake_average, fake_temperature, fake_clock, fake_clock,
		fake_pstate, fake_utilization, fake_reasons, fake_memory_info};
	return fns[kind];
}
static void *fake_dev(void) { return &fake_device; }
*/
import "C"

import (
	"time"
	"unsafe"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// fakeNVML sets the fake calls' results and the delay of each poll.
type fakeNVML struct{}

func (fakeNVML) reset(delay time.Duration)      { C.fake_reset(C.int(delay.Microseconds())) }
func (fakeNVML) setRet(kind int, r nvml.Return) { C.fake_set_ret(C.int(kind), C.int(r)) }
func (fakeNVML) calls(kind int) int             { return int(C.fake_get_calls(C.int(kind))) }

// streamFake starts g's state thread over the fake calls.
func streamFake(g *GPU, first time.Time, interval time.Duration) (*stateStream, error) {
	var fns [kindCount]unsafe.Pointer
	for k := range kindCount {
		fns[k] = C.fake_fn(C.int(k))
	}
	s := C.llem_sampler_with_fns(&fns[0], C.fake_dev())
	return startStream(g, s, first, interval)
}

// cLayout is the size and value offset of the thread's nvmlFieldValue_t,
// and the sizes of its nvmlUtilization_t and nvmlMemory_t, to hold
// against go-nvml's (which are generated from nvml.h).
func cLayout() (fieldSize, valueOffset, utilSize, memSize uintptr) {
	var fv C.llem_field_value
	return unsafe.Sizeof(fv), unsafe.Offsetof(fv.value), unsafe.Sizeof(C.llem_utilization{}), unsafe.Sizeof(C.llem_memory{})
}
