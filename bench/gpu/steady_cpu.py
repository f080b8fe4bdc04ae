#!/usr/bin/env python3
"""Split a sampler's CPU into start-up/shutdown and steady sampling.

Usage: steady_cpu.py NAME SECONDS SIGNAL OUTFILE -- CMD [ARGS...]

Runs CMD (stdout to OUTFILE), reads the CPU of all its threads from
/proc/PID/task/*/schedstat (nanoseconds, not the 10 ms ticks of
/proc/PID/stat) 5 s after it starts and again SECONDS later, then sends
SIGNAL (INT or TERM) and waits. Prints one JSON line: the total CPU
(getrusage of the child, start-up and shutdown included), the steady rate
between the two reads as a share of one core and the context switches a
second of all its threads, and what is left of the
total once the steady rate over the whole wall time is taken away: the
cost of starting and stopping. A sampler with the lower steady rate can
still cost more over a short run if its start-up is dearer; both numbers
say which lever matters.
"""
import glob
import json
import resource
import signal
import subprocess
import sys
import time

name, seconds, sig, outfile = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
cmd = sys.argv[sys.argv.index("--") + 1:]


def per_thread(pid):
    """{tid: (cpu ns, context switches)} of every thread. Context switches
    (voluntary and involuntary) are wake-ups, which on a virtual machine
    cost more than most NVML calls; a thread that just exited is left out."""
    out = {}
    for f in glob.glob("/proc/%d/task/*/schedstat" % pid):
        tid = f.split("/")[-2]
        try:
            ns = int(open(f).read().split()[0])
            sw = sum(int(l.split()[1]) for l in open(f[:-len("schedstat")] + "status") if "ctxt_switches:" in l)
        except (OSError, ValueError, IndexError):
            continue
        out[tid] = (ns, sw)
    return out


before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
with open(outfile, "wb") as out:
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    time.sleep(5)
    pa, ta = per_thread(p.pid), time.monotonic()
    time.sleep(seconds)
    pb, tb = per_thread(p.pid), time.monotonic()
    p.send_signal(getattr(signal, "SIG" + sig))
    p.wait()
wall = time.monotonic() - t0
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
a, sa = (sum(v[k] for v in pa.values()) for k in (0, 1))
b, sb = (sum(v[k] for v in pb.values()) for k in (0, 1))
rate = (b - a) / 1e9 / (tb - ta)
print("steady_cpu: " + json.dumps({
    "name": name, "cpu_s": round(cpu, 4), "wall_s": round(wall, 2),
    "steady_pct_core": round(100 * rate, 3),
    "ctxsw_per_s": round((sb - sa) / (tb - ta), 1),
    "start_stop_s": round(cpu - rate * wall, 4),
    # Each thread's steady share of a core (%) and switches a second, the
    # busiest first.
    "threads": sorted(([round(100 * (pb[t][0] - pa[t][0]) / 1e9 / (tb - ta), 3), round((pb[t][1] - pa[t][1]) / (tb - ta), 1)]
                       for t in pb if t in pa), reverse=True)[:8]}), flush=True)
