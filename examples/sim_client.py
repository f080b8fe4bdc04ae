#!/usr/bin/env python3
"""A stand-in inference for demos on machines without a GPU.

It does no GPU work; it only reports events the way a real inference would, so
`llem record --device sim -- python3 examples/sim_client.py` exercises the whole
pipeline. Pair it with the simulated GPU, which is busy while this runs.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import llem_events  # noqa: E402

REQUESTS = int(os.environ.get("SIM_REQUESTS", "6"))
BATCH = 4
NEW_TOKENS = 32
TOKEN_S = 0.02  # seconds per decode step


def generate(req_ids):
    for rid in req_ids:
        llem_events.request_start(rid)
    time.sleep(0.15)  # prefill
    for rid in req_ids:
        llem_events.first_token(rid)
    for _ in range(NEW_TOKENS - 1):
        time.sleep(TOKEN_S)
    for rid in req_ids:
        llem_events.request_end(rid, input_tokens=64, output_tokens=NEW_TOKENS)


def main():
    with llem_events.phase("warmup"):
        generate(["warmup-0"])
    with llem_events.phase("measure"):
        for start in range(0, REQUESTS, BATCH):
            generate([f"r{i}" for i in range(start, min(start + BATCH, REQUESTS))])
    llem_events.mark("done", requests=REQUESTS)
    print(f"sim_client: {REQUESTS} requests of {NEW_TOKENS} tokens")


if __name__ == "__main__":
    main()
