#!/usr/bin/env python3
"""Sends inference-like events at a fixed rate through llem's Python client.

Usage: event_flood.py RATE_PER_S SECONDS
The rate matches a batch-32 generation loop reporting a token event per
request per step (~1,000 events/s on an H100 with the Llama example).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import llem_events  # noqa: E402

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
batch = 32
step = batch / rate
end = time.time() + seconds
n = 0
next_t = time.time()
while time.time() < end:
    for i in range(batch):
        llem_events.tokens(f"r{i}", 1)
    n += batch
    next_t += step
    time.sleep(max(0, next_t - time.time()))
print(f"event_flood: sent {n} events")
