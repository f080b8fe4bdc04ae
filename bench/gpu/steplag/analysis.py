#!/usr/bin/env python3
"""Lags of a GPU's power signals behind the workload's load steps.

Reads the files bench/gpu/steplag.sh writes (counter.csv, instant.csv,
driver.csv, steps.csv) from the directory given and prints, for steps up
and down separately, the median and range of:

- driver: when the driver buffer's samples cross halfway between the
  levels before and after the step, minus the step's host time;
- instant: the same for the instant power field (the time of the read
  that first showed the new value, which is up to one ~100 ms update late);
- counter: the counter's delay d, the time by which the energy it reports
  at an update u is the true energy up to u - d. For the update interval
  (u0, u1] that holds the step at T, the increment is
  P_before * (T - (u0 - d)) + P_after * ((u1 - d) - T), solved for d with
  the power levels from the neighbouring increments;
- the counter's update period (median gap between updates).

Standard library only, so it runs anywhere.
"""
import csv, statistics, sys, os

d = sys.argv[1] if len(sys.argv) > 1 else "."
rows = lambda f: list(csv.DictReader(open(os.path.join(d, f))))
steps = [(int(r["up_ns"]), int(r["down_ns"])) for r in rows("steps.csv")]
drv = [(int(r["driver_us"]) * 1000, int(r["power_mw"]) / 1000) for r in rows("driver.csv")]
drv.sort()
inst = [(int(r["read_ns"]), int(r["instant_mw"]) / 1000) for r in rows("instant.csv")][1:]
cnt = []
for r in rows("counter.csv")[1:]:
    # the update fell between the previous read and this one: take the middle
    u = (int(r["prev_end_ns"]) + int(r["read_end_ns"])) // 2
    cnt.append((u, int(r["energy_mj"]) / 1000, (int(r["read_end_ns"]) - int(r["prev_end_ns"])) / 1e6))

def level(series, a, b):
    v = [p for t, p in series if a <= t < b]
    return statistics.median(v) if v else None

def crossing(series, T, before, after):
    """First sample after T - 50 ms past halfway between the levels."""
    half = (before + after) / 2
    for t, p in series:
        if t < T - 50e6:
            continue
        if (after > before and p >= half) or (after < before and p <= half):
            return (t - T) / 1e6
    return None

def counter_delay(T, up):
    # increments as (u0, u1, joules)
    inc = [(cnt[i - 1][0], cnt[i][0], cnt[i][1] - cnt[i - 1][1]) for i in range(1, len(cnt))]
    # the interval holding the step when d = 0..150 ms: pick by scanning d
    pw = lambda a, b, e: e / ((b - a) / 1e9)
    before = [pw(*x) for x in inc if T - 600e6 < x[1] < T - 200e6]
    after = [pw(*x) for x in inc if T + 500e6 < x[0] < T + 1000e6] if up else [pw(*x) for x in inc if T + 300e6 < x[0] < T + 800e6]
    if not before or not after:
        return None
    pb, pa = statistics.median(before), statistics.median(after)
    best = None
    for dms in range(-50, 301):
        dn = dms * 1e6
        # predicted increments over the intervals around the step
        err = 0
        for u0, u1, e in inc:
            if u1 < T - 300e6 or u0 > T + 400e6:
                continue
            a, b = u0 - dn, u1 - dn
            pred = pb * max(0, min(b, T) - a) / 1e9 + pa * max(0, b - max(a, T)) / 1e9
            err += (pred - e) ** 2
        if best is None or err < best[0]:
            best = (err, dms)
    return best[1]

def summary(name, xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return f"{name}: no data"
    return f"{name}: median {statistics.median(xs):.1f} ms, range {min(xs):.1f}..{max(xs):.1f} ms (n={len(xs)})"

for label, idx, up in (("steps up", 0, True), ("steps down", 1, False)):
    dl, il, cl = [], [], []
    for s in steps:
        T = s[idx]
        b = level(drv, T - 600e6, T - 100e6)
        a = level(drv, T + 600e6, T + 1200e6) if up else level(drv, T + 400e6, T + 1000e6)
        if b is None or a is None:
            continue
        dl.append(crossing(drv, T, b, a))
        il.append(crossing(inst, T, b, a))
        cl.append(counter_delay(T, up))
    print(label)
    print("  " + summary("driver samples, halfway crossing after the step", dl))
    print("  " + summary("instant power, first read past halfway", il))
    print("  " + summary("counter delay d (energy at update u is the truth up to u - d)", cl))

gaps = [(cnt[i][0] - cnt[i - 1][0]) / 1e6 for i in range(1, len(cnt))]
print(summary("counter update period", gaps))
print(summary("counter update timing uncertainty (read interval)", [c[2] for c in cnt]))
dg = [(drv[i][0] - drv[i - 1][0]) / 1e6 for i in range(1, len(drv))]
print(summary("driver sample period", dg))
