#!/usr/bin/env python3
"""Run a command for SECONDS, stop it, and print the CPU it used.

Usage: measure_cmd.py NAME SECONDS OUTFILE -- CMD [ARGS...]
The command's stdout goes to OUTFILE (as a user logging nvidia-smi to a
file would); after SECONDS it gets SIGTERM. Prints one JSON line: the
command's own user + system CPU (getrusage of the waited-for child, start-up
included) and the wall time it ran.
"""
import json
import resource
import signal
import subprocess
import sys
import time

name, seconds, outfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
cmd = sys.argv[sys.argv.index("--") + 1:]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
with open(outfile, "wb") as out:
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    time.sleep(seconds)
    p.send_signal(signal.SIGTERM)
    p.wait()
wall = time.monotonic() - t0
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
lines = sum(1 for _ in open(outfile, "rb"))
print("measure_cmd: " + json.dumps({"name": name, "cpu_s": round(cpu, 3), "wall_s": round(wall, 2), "output_lines": lines}), flush=True)
