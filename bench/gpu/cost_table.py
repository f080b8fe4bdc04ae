#!/usr/bin/env python3
"""The table of bench/gpu/recorder-cost.sh: python3 cost_table.py WORKDIR."""
import glob
import json
import os
import sys

w = sys.argv[1]


def meta(name):
    p = os.path.join(w, name, "meta.json")
    return json.load(open(p)) if os.path.exists(p) else None


def tagged(path, tag):
    """The JSON after `tag: ` in a file, or None."""
    if not os.path.exists(path):
        return None
    for line in open(path, errors="replace"):
        if line.startswith(tag + ": "):
            return json.loads(line[len(tag) + 2:])
    return None


rows = []  # (what, cpu_s, wall_s, note)
for name, label in [("A-llem", "llem record, defaults, idle GPU"), ("A-before", "llem record before (same settings)")]:
    m = meta(name)
    if m:
        r = m["recorder"]
        rows.append((label, r["cpu_seconds"], r["wall_seconds"], ""))
for ms in (20, 100):
    j = tagged(os.path.join(w, "A-smi%d.json" % ms), "measure_cmd")
    if j:
        rows.append(("nvidia-smi --query-gpu=timestamp,power.draw.instant,temperature.gpu,clocks.sm -lms %d" % ms,
                     j["cpu_s"], j["wall_s"], "%d rows" % j["output_lines"]))
j = tagged(os.path.join(w, "A-pynvml.json"), "pynvml_poller")
if j:
    rows.append(("pynvml poller, 100 Hz (power, temperature, clock; counter 1 Hz)", j["cpu_s"], j["wall_s"], "%d rows" % j["rows"]))

base = {}
for who in ("llem", "each", "before"):
    m0 = meta("B-%s-0" % who)
    if m0:
        base[who] = m0["recorder"]["cpu_seconds"] / m0["recorder"]["wall_seconds"]
for who, label in (("llem", "llem record"), ("each", "llem record, clients writing each event at once"),
                   ("before", "llem record before")):
    for rate in (0, 1000, 10000, 50000):
        m = meta("B-%s-%d" % (who, rate))
        if not m:
            continue
        r, e = m["recorder"], m["events"]
        note = ""
        if rate:
            per = (r["cpu_seconds"] - base.get(who, 0) * r["wall_seconds"]) / max(e["accepted"], 1) * 1e6
            load = tagged(os.path.join(w, "B-%s-%d.log" % (who, rate)), "event_load") or {}
            note = "%.2f us of recorder CPU per event; %d accepted, %d dropped; client %s us/event (hold %s s); peak RSS %d MB" % (
                per, e["accepted"], e["dropped"], load.get("client_cpu_us_per_event"), load.get("hold_s"),
                r["max_rss_bytes"] >> 20)
        rows.append(("%s, %d token events/s from 8 clients" % (label, rate), r["cpu_seconds"], r["wall_seconds"], note))
for name, label in (("C-llem", "llem record, defaults, bf16 matmul load"), ("C-before", "llem record before, same load (after it)")):
    m = meta(name)
    if m:
        r = m["recorder"]
        rows.append((label, r["cpu_seconds"], r["wall_seconds"], ""))

ref = next((c / t for what, c, t, _ in rows if "-lms 20" in what), None)
print("| what ran | CPU s | wall s | % of one core | x nvidia-smi -lms 20 | notes |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
for what, cpu, wall, note in rows:
    pct = 100 * cpu / wall
    ratio = "%.2f" % (cpu / wall / ref) if ref else "-"
    print("| %s | %.3f | %.1f | %.3f | %s | %s |" % (what, cpu, wall, pct, ratio, note))

rss = os.path.join(w, "B-rss-50k.txt")
if os.path.exists(rss):
    kb = [int(x) for x in open(rss).read().split()]
    if kb:
        print("\nRSS of the 50k events/s recorder every 5 s (MB): " + " ".join(str(k >> 10) for k in kb))
# Bytes a driver sample on disk, every file of the folder (segments and
# manifest.jsonl), for each run that recorded them: idle (A) and under the
# matmul (C), this llem and the one before.
for name in ("A-llem", "A-before", "C-llem", "C-before"):
    m = meta(name)
    if not m:
        continue
    n = m["recorder"]["rows"]["driver_power"]
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(w, name, "driver_power", "*")))
    print("driver_power on disk (%s): %d B for %d samples = %.2f B/sample in %d segments (trace format %s)" % (
        name, size, n, size / max(n, 1), m["recorder"]["segments"]["driver_power"], m.get("schema_version")))
