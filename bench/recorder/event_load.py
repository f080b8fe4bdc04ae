#!/usr/bin/env python3
"""Token events at a fixed total rate from several client processes.

Usage: event_load.py RATE_PER_S SECONDS [CLIENTS] [STEP]   (CLIENTS defaults to 8, STEP to 1)

Each client process opens its own connection through llem's Python client
(clients/python/llem_events.py) and sends RATE/CLIENTS `token` events
a second, one call of tokens(rid, 1) per event (32 requests in turn), paced
every millisecond. With STEP > 1 a client sends its events STEP at a time,
one step_tokens() call each (one write for STEP requests, as a server
decoding a batch does). The client holds lines for llem_events.HOLD_S
(100 ms) and writes them together; EVENT_HOLD=0 in the environment makes it
write each call's lines at once (EVENT_HOLD=S sets another hold). Run it
under `llem record`. It prints one JSON line: events sent, the clients'
own CPU time (inside the calls, plus the client's flusher thread) and
their CPU per event (the client-side cost of a token event), and lost
events.
"""
import json
import multiprocessing as mp
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import llem_events  # noqa: E402


def client(rate, seconds, idx, out, step=1):
    ev = llem_events.Client()
    hold = os.environ.get("EVENT_HOLD")
    if hold is not None:
        ev.hold = float(hold)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    main0 = time.thread_time_ns()
    ids = ["c%d-r%d" % (idx, i) for i in range(32)]
    start = time.monotonic()
    sent = 0
    in_calls = 0  # CPU time spent inside the client's calls, ns
    while True:
        now = time.monotonic() - start
        if now >= seconds:
            break
        due = int(now * rate) - sent
        c0 = time.thread_time_ns()
        if step > 1:
            for _ in range(due // step):
                ev.step_tokens([(ids[(sent + k) % 32], 1) for k in range(step)])
                sent += step
        else:
            for _ in range(due):
                ev.tokens(ids[sent % 32], 1)
                sent += 1
        in_calls += time.thread_time_ns() - c0
        time.sleep(0.002)
    ev.flush()
    # The flusher thread's CPU: the process's, less this (main) thread's.
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    others = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) - (time.thread_time_ns() - main0) / 1e9
    out.put((sent, in_calls / 1e9, ev.errors, max(others, 0.0)))


def main():
    rate, seconds = float(sys.argv[1]), float(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    step = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    out = mp.Queue()
    procs = [mp.Process(target=client, args=(rate / n, seconds, i, out, step)) for i in range(n)]
    for p in procs:
        p.start()
    res = [out.get() for _ in procs]
    for p in procs:
        p.join()
    sent = sum(r[0] for r in res)
    calls = sum(r[1] for r in res)
    flusher = sum(r[3] for r in res)
    cpu = calls + flusher
    print("event_load: " + json.dumps({
        "rate": rate, "seconds": seconds, "clients": n, "step": step, "hold_s": float(os.environ.get("EVENT_HOLD", llem_events.HOLD_S)),
        "sent": sent, "lost": sum(r[2] for r in res),
        "client_call_cpu_s": round(calls, 3), "client_flusher_cpu_s": round(flusher, 3),
        "client_cpu_us_per_event": round(cpu / sent * 1e6, 2) if sent else None}), flush=True)


if __name__ == "__main__":
    main()
