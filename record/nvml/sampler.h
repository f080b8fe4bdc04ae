// The C state thread of package nvml (sampler.go says why). A header so
// that the tests' fake NVML calls (sampler_fake.go) can build samplers too;
// every function is static, compiled into each file that includes it.
#ifndef LLEM_SAMPLER_H
#define LLEM_SAMPLER_H
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// The state poll's NVML calls, made by a thread of C's own (see
// stateStream). The kinds are the order of GPU.readings.
enum {
	K_INSTANT, K_AVERAGE, K_TEMPERATURE, K_SM_CLOCK, K_MEM_CLOCK,
	K_PSTATE, K_UTILIZATION, K_REASONS, K_MEMORY, K_COUNT
};
// A call not made (its columns are unsupported, or an earlier call of the
// poll found the GPU gone).
#define LLEM_NOT_CALLED (-1)

// NVML's types as nvml.h declares them; sampler_test.go checks their
// layout against go-nvml's generated ones.
typedef struct {
	unsigned int fieldId, scopeId;
	long long timestamp, latencyUsec;
	int valueType, nvmlReturn;
	unsigned char value[8];
} llem_field_value;
typedef struct { unsigned int gpu, memory; } llem_utilization;
typedef struct { unsigned long long total, free, used; } llem_memory;

typedef int (*fn_device_by_index)(unsigned int, void **);
typedef int (*fn_field_values)(void *, int, llem_field_value *);
typedef int (*fn_uint)(void *, unsigned int *);
typedef int (*fn_typed_uint)(void *, int, unsigned int *);
typedef int (*fn_int)(void *, int *);
typedef int (*fn_ull)(void *, unsigned long long *);
typedef int (*fn_utilization)(void *, llem_utilization *);
typedef int (*fn_memory)(void *, llem_memory *);

// One poll: what each call returned, and when.
typedef struct {
	int64_t done_ns;   // CLOCK_MONOTONIC when the poll's last call returned
	int64_t late_ns;   // how late the poll began after its deadline
	int64_t missed;    // later deadlines it overran, skipped
	int32_t ret[K_COUNT];
	llem_field_value instant;
	uint32_t average_mw, temperature_c, sm_mhz, mem_mhz, util_gpu, util_mem;
	int32_t pstate;
	uint64_t reasons, memory_used;
} llem_poll;

#define LLEM_RING_MAX (1 << 16)

typedef struct {
	void *fn[K_COUNT];
	void *dev;
	// NVML's numbers, set from go-nvml's constants before the thread
	// starts (startStream), so that none is written twice: the results
	// after which nothing more comes from a GPU (GPU.check's lost ones),
	// the GPU temperature sensor, the SM and memory clocks, the instant
	// power field.
	int code_lost, code_timeout, code_reset;
	int sensor_gpu, clock_sm, clock_mem;
	unsigned int field_instant;
	uint32_t enabled;  // bit k: make call k (set by Go, read by the thread)
	int64_t next_ns, interval_ns;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	// Polls not yet taken, oldest at head; grows to LLEM_RING_MAX, then
	// the oldest are overwritten and counted.
	llem_poll *ring;
	int cap, head, len;
	int64_t overwritten;
} llem_sampler;

static int llem_gone(const llem_sampler *s, int ret) {
	return ret == s->code_lost || ret == s->code_timeout || ret == s->code_reset;
}

static int64_t llem_mono_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}


// llem_poll_once makes the enabled calls in kind order, as GPU.State does,
// and reports whether one of them found the GPU gone (the calls after it
// are not made).
static int llem_poll_once(llem_sampler *s, uint32_t enabled, llem_poll *p) {
	void *d = s->dev;
	int gone = 0;
	for (int k = 0; k < K_COUNT; k++) {
		if (gone || !(enabled & (1u << k)) || !s->fn[k]) {
			p->ret[k] = LLEM_NOT_CALLED;
			continue;
		}
		int r = 0;
		switch (k) {
		case K_INSTANT:
			memset(&p->instant, 0, sizeof p->instant);
			p->instant.fieldId = s->field_instant; // scope 0: the whole GPU
			r = ((fn_field_values)s->fn[k])(d, 1, &p->instant);
			break;
		case K_AVERAGE: r = ((fn_uint)s->fn[k])(d, &p->average_mw); break;
		case K_TEMPERATURE: r = ((fn_typed_uint)s->fn[k])(d, s->sensor_gpu, &p->temperature_c); break;
		case K_SM_CLOCK: r = ((fn_typed_uint)s->fn[k])(d, s->clock_sm, &p->sm_mhz); break;
		case K_MEM_CLOCK: r = ((fn_typed_uint)s->fn[k])(d, s->clock_mem, &p->mem_mhz); break;
		case K_PSTATE: r = ((fn_int)s->fn[k])(d, &p->pstate); break;
		case K_UTILIZATION: {
			llem_utilization u = {0, 0};
			r = ((fn_utilization)s->fn[k])(d, &u);
			p->util_gpu = u.gpu, p->util_mem = u.memory;
			break;
		}
		case K_REASONS: {
			unsigned long long v = 0;
			r = ((fn_ull)s->fn[k])(d, &v);
			p->reasons = v;
			break;
		}
		case K_MEMORY: {
			llem_memory m = {0, 0, 0};
			r = ((fn_memory)s->fn[k])(d, &m);
			p->memory_used = m.used;
			break;
		}
		}
		p->ret[k] = r;
		gone = llem_gone(s, r);
	}
	return gone;
}

static void llem_push(llem_sampler *s, const llem_poll *p) {
	if (s->len == s->cap && s->cap < LLEM_RING_MAX) {
		int cap = s->cap ? s->cap * 2 : 64;
		llem_poll *ring = malloc(sizeof(llem_poll) * cap);
		if (ring) {
			for (int i = 0; i < s->len; i++) ring[i] = s->ring[(s->head + i) % s->cap];
			free(s->ring);
			s->ring = ring, s->cap = cap, s->head = 0;
		}
	}
	if (s->cap == 0) {
		s->overwritten++;
		return;
	}
	if (s->len == s->cap) {
		s->head = (s->head + 1) % s->cap;
		s->len--;
		s->overwritten++;
	}
	s->ring[(s->head + s->len) % s->cap] = *p;
	s->len++;
}

// llem_run polls at next_ns + k*interval_ns until stopped or the GPU is
// gone. A poll that overruns later deadlines skips them and counts them,
// as the Go schedule (record.runSchedule) does.
static void *llem_run(void *arg) {
	llem_sampler *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct timespec at = {s->next_ns / 1000000000LL, s->next_ns % 1000000000LL};
		int rc = pthread_cond_timedwait(&s->cv, &s->mu, &at);
		if (s->stop) break;
		int64_t start = llem_mono_ns();
		if (rc != ETIMEDOUT && start < s->next_ns) continue; // woken early
		uint32_t enabled = s->enabled;
		pthread_mutex_unlock(&s->mu);

		llem_poll p;
		memset(&p, 0, sizeof p);
		p.late_ns = start > s->next_ns ? start - s->next_ns : 0;
		int gone = llem_poll_once(s, enabled, &p);
		p.done_ns = llem_mono_ns();

		pthread_mutex_lock(&s->mu);
		s->next_ns += s->interval_ns;
		if (p.done_ns > s->next_ns) {
			int64_t skip = (p.done_ns - s->next_ns) / s->interval_ns + 1;
			p.missed = skip;
			s->next_ns += skip * s->interval_ns;
		}
		llem_push(s, &p);
		if (gone) break; // Go marks the GPU lost when it takes this poll
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

// llem_sampler_new resolves the calls in lib (already loaded by go-nvml:
// RTLD_NOLOAD finds it) and opens GPU index. symbols[k] names kind k's
// function, or is NULL to leave it out. Returns NULL with why set.
static llem_sampler *llem_sampler_new(const char *lib, unsigned int index, const char **symbols, const char **why) {
	void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
	if (!h) {
		*why = "the NVML library is not loaded";
		return NULL;
	}
	fn_device_by_index by_index = (fn_device_by_index)dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
	if (!by_index) {
		*why = "nvmlDeviceGetHandleByIndex_v2 is missing";
		return NULL;
	}
	llem_sampler *s = calloc(1, sizeof *s);
	if (!s) {
		*why = "out of memory";
		return NULL;
	}
	if (by_index(index, &s->dev) != 0) {
		free(s);
		*why = "nvmlDeviceGetHandleByIndex_v2 failed";
		return NULL;
	}
	for (int k = 0; k < K_COUNT; k++) {
		if (symbols[k]) s->fn[k] = dlsym(h, symbols[k]);
		if (s->fn[k]) s->enabled |= 1u << k;
	}
	// dlopen took a reference; go-nvml's Shutdown closes its own, so this
	// one is dropped at once: the sampler stops before the backend closes.
	dlclose(h);
	return s;
}

// llem_sampler_with_fns is llem_sampler_new for tests: fake functions, no library.
static llem_sampler *llem_sampler_with_fns(void **fns, void *dev) {
	llem_sampler *s = calloc(1, sizeof *s);
	if (!s) return NULL;
	for (int k = 0; k < K_COUNT; k++) {
		s->fn[k] = fns[k];
		if (fns[k]) s->enabled |= 1u << k;
	}
	s->dev = dev;
	return s;
}

// llem_sampler_start starts polling at first_ns (CLOCK_MONOTONIC), then
// every interval_ns. The thread blocks every signal: they are Go's to
// handle, and a profiling signal there would sample no Go code.
static int llem_sampler_start(llem_sampler *s, int64_t first_ns, int64_t interval_ns) {
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->mu, NULL);
	s->next_ns = first_ns, s->interval_ns = interval_ns;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&s->thread, NULL, llem_run, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->started = rc == 0;
	return rc;
}

static void llem_sampler_disable(llem_sampler *s, int kind) {
	pthread_mutex_lock(&s->mu);
	s->enabled &= ~(1u << kind);
	pthread_mutex_unlock(&s->mu);
}

// llem_sampler_take moves up to max of the oldest polls into dst.
static int llem_sampler_take(llem_sampler *s, llem_poll *dst, int max, int64_t *overwritten) {
	pthread_mutex_lock(&s->mu);
	int n = s->len < max ? s->len : max;
	for (int i = 0; i < n; i++) dst[i] = s->ring[(s->head + i) % s->cap];
	if (n > 0) s->head = (s->head + n) % s->cap, s->len -= n;
	*overwritten = s->overwritten;
	s->overwritten = 0;
	pthread_mutex_unlock(&s->mu);
	return n;
}

// llem_sampler_stop ends the thread and waits for it; a poll in progress
// completes first. Polls not taken stay for llem_sampler_take.
static void llem_sampler_stop(llem_sampler *s) {
	if (!s->started) return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->started = 0;
}

static void llem_sampler_free(llem_sampler *s) {
	llem_sampler_stop(s);
	free(s->ring);
	free(s);
}

#endif
