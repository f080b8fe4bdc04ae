// nvml_floor: the CPU floor of a sampling schedule, in plain C.
//
// Makes the NVML calls of a schedule from one thread that sleeps on
// clock_nanosleep to absolute deadlines, with nothing else in the process,
// and prints its own steady CPU (getrusage, after a 2 s warm-up) as a share
// of one core. What a recorder costs above this figure is its own
// overhead; this figure is the driver's.
//
//   gcc -O2 -o nvml_floor bench/gpu/nvml_floor.c -ldl -I<go-nvml>/pkg/nvml
//   (<go-nvml>: go list -m -f {{.Dir}} github.com/NVIDIA/go-nvml)
//   ./nvml_floor llem 20     # llem's defaults: 9 state calls at 10 Hz,
//                            # the power-sample buffer at 1 Hz, the energy
//                            # counter every 10 s
//   ./nvml_floor smi 20      # nvidia-smi -lms 20's fields at 50 Hz
//   ./nvml_floor state 20    # llem's 9 state calls at 10 Hz alone
//   ./nvml_floor samples 20  # the power-sample buffer drain at 1 Hz alone
//   ./nvml_floor energy 20   # the energy counter at 1 Hz alone (llem: 0.1 Hz)
//
// Prints one JSON line, tagged "nvml_floor: ".
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nvml.h"

#define SYM(name) static __typeof__(&name) p_##name;
SYM(nvmlInit_v2)
SYM(nvmlDeviceGetHandleByIndex_v2)
SYM(nvmlDeviceGetFieldValues)
SYM(nvmlDeviceGetPowerUsage)
SYM(nvmlDeviceGetTemperature)
SYM(nvmlDeviceGetClockInfo)
SYM(nvmlDeviceGetPerformanceState)
SYM(nvmlDeviceGetUtilizationRates)
SYM(nvmlDeviceGetCurrentClocksEventReasons)
SYM(nvmlDeviceGetMemoryInfo)
SYM(nvmlDeviceGetSamples)
SYM(nvmlDeviceGetTotalEnergyConsumption)

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long ctxsw(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const char *modes[] = {"llem", "smi", "state", "samples", "energy"};
  int mode = -1;
  for (int m = 0; m < 5; m++)
    if (argc == 3 && !strcmp(argv[1], modes[m])) mode = m;
  if (mode < 0) {
    fprintf(stderr, "usage: nvml_floor llem|smi|state|samples|energy SECONDS\n");
    return 2;
  }
  int smi = mode == 1, state = mode == 0 || mode == 2, samples = mode == 0 || mode == 3;
  double seconds = atof(argv[2]);
  void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "nvml_floor: %s\n", dlerror());
    return 1;
  }
#define LOAD(name)                                          \
  if (!(p_##name = dlsym(lib, #name))) {                    \
    fprintf(stderr, "nvml_floor: no symbol %s\n", #name); \
    return 1;                                               \
  }
  LOAD(nvmlInit_v2) LOAD(nvmlDeviceGetHandleByIndex_v2) LOAD(nvmlDeviceGetFieldValues)
  LOAD(nvmlDeviceGetPowerUsage) LOAD(nvmlDeviceGetTemperature) LOAD(nvmlDeviceGetClockInfo)
  LOAD(nvmlDeviceGetPerformanceState) LOAD(nvmlDeviceGetUtilizationRates)
  LOAD(nvmlDeviceGetCurrentClocksEventReasons) LOAD(nvmlDeviceGetMemoryInfo)
  LOAD(nvmlDeviceGetSamples) LOAD(nvmlDeviceGetTotalEnergyConsumption)
  if (p_nvmlInit_v2() != NVML_SUCCESS) {
    fprintf(stderr, "nvml_floor: nvmlInit failed\n");
    return 1;
  }
  nvmlDevice_t d;
  if (p_nvmlDeviceGetHandleByIndex_v2(0, &d) != NVML_SUCCESS) {
    fprintf(stderr, "nvml_floor: no GPU 0\n");
    return 1;
  }
  long period_ns = smi ? 20000000L : 100000000L;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  double start = mono_s(), t0 = 0, c0 = 0;
  long s0 = 0, polls = 0, failures = 0;
  unsigned long long lastSample = 0;
  static nvmlSample_t samples_buf[256];
  for (long i = 0;; i++) {
    double now = mono_s();
    if (t0 == 0 && now - start >= 2) {
      t0 = now, c0 = cpu_s(), s0 = ctxsw(), polls = 0;
    }
    if (now - start >= seconds + 2) break;
    nvmlFieldValue_t fv = {.fieldId = NVML_FI_DEV_POWER_INSTANT};
    unsigned int u;
    nvmlReturn_t r = 0;
    if (smi || state) {
      r |= p_nvmlDeviceGetFieldValues(d, 1, &fv);
      r |= p_nvmlDeviceGetTemperature(d, NVML_TEMPERATURE_GPU, &u);
      r |= p_nvmlDeviceGetClockInfo(d, NVML_CLOCK_SM, &u);
    }
    if (state) {
      nvmlPstates_t ps;
      nvmlUtilization_t ut;
      unsigned long long reasons;
      nvmlMemory_t mem;
      r |= p_nvmlDeviceGetPowerUsage(d, &u);
      r |= p_nvmlDeviceGetClockInfo(d, NVML_CLOCK_MEM, &u);
      r |= p_nvmlDeviceGetPerformanceState(d, &ps);
      r |= p_nvmlDeviceGetUtilizationRates(d, &ut);
      r |= p_nvmlDeviceGetCurrentClocksEventReasons(d, &reasons);
      r |= p_nvmlDeviceGetMemoryInfo(d, &mem);
    }
    if (samples && i % 10 == 0) {
      nvmlValueType_t vt;
      unsigned int n = 256;
      if (p_nvmlDeviceGetSamples(d, NVML_TOTAL_POWER_SAMPLES, lastSample, &vt, &n, samples_buf) == NVML_SUCCESS)
        for (unsigned int k = 0; k < n; k++)
          if (samples_buf[k].timeStamp > lastSample) lastSample = samples_buf[k].timeStamp;
    }
    if ((mode == 0 && i % 100 == 0) || (mode == 4 && i % 10 == 0)) {
      unsigned long long mj;
      r |= p_nvmlDeviceGetTotalEnergyConsumption(d, &mj);
    }
    if (r != NVML_SUCCESS) failures++;
    polls++;
    next.tv_nsec += period_ns;
    while (next.tv_nsec >= 1000000000L) next.tv_nsec -= 1000000000L, next.tv_sec++;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  double wall = mono_s() - t0, cpu = cpu_s() - c0;
  printf("nvml_floor: {\"mode\": \"%s\", \"steady_wall_s\": %.2f, \"steady_cpu_s\": %.4f, \"steady_pct_core\": %.3f, "
         "\"ctxsw_per_s\": %.1f, \"polls\": %ld, \"polls_with_a_failure\": %ld}\n",
         argv[1], wall, cpu, 100 * cpu / wall, (ctxsw() - s0) / wall, polls, failures);
  return 0;
}
