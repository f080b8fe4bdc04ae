#!/usr/bin/env python3
"""What a user might write instead of llem: a pynvml poller.

Usage: pynvml_poller.py SECONDS
Polls GPU 0 at 100 Hz (power, temperature, SM clock) and the energy
counter at 1 Hz for SECONDS, keeping the rows in memory, then prints one
JSON line with the rows taken and its own CPU time (getrusage, start-up
included, as for the other tools).
"""
import json
import resource
import sys
import time

import pynvml

seconds = float(sys.argv[1])
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
rows, energy = [], []
start = time.monotonic()
next_t, next_e = start, start
while time.monotonic() - start < seconds:
    rows.append((time.time_ns(), pynvml.nvmlDeviceGetPowerUsage(h),
                 pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
                 pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)))
    if time.monotonic() >= next_e:
        energy.append((time.time_ns(), pynvml.nvmlDeviceGetTotalEnergyConsumption(h)))
        next_e += 1.0
    next_t += 0.01
    time.sleep(max(0.0, next_t - time.monotonic()))
pynvml.nvmlShutdown()
ru = resource.getrusage(resource.RUSAGE_SELF)
wall = time.monotonic() - start
print("pynvml_poller: " + json.dumps({"rows": len(rows), "energy_reads": len(energy), "wall_s": round(wall, 2),
                                      "cpu_s": round(ru.ru_utime + ru.ru_stime, 3)}), flush=True)
