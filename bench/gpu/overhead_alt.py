#!/usr/bin/env python3
"""Does llem record slow the inference? examples/llama_infer.py's own
generation, alternating without and with a recorder running.

Usage: overhead_alt.py LLEM N [llama_infer options...]

Builds the example's model once (its ~20 s of set-up is paid once, not per
run), warms it up, then N times: runs --measure-batches batches without
llem, then starts `LLEM record --quiet -- sleep ...`, points the example's
event client at that recording's socket (so every request and token
event goes to it, as under `llem record -- python3 llama_infer.py`), runs
the same batches, and stops the recorder. Prints tokens/s of each run,
then the mean and standard deviation of each mode.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "examples"))
llem, n = sys.argv[1], int(sys.argv[2])
sys.argv = [sys.argv[0]] + sys.argv[3:]
import llama_infer  # noqa: E402
import llem_events  # noqa: E402  (llama_infer put it on sys.path)


def run_batches(model, torch, args, tag):
    t0 = time.time()
    tokens = sum(llama_infer.generate_batch(model, torch, args, "%s-%d" % (tag, b), args.new_tokens)
                 for b in range(args.measure_batches))
    return tokens / (time.time() - t0)


def main():
    args = llama_infer.parse_args()
    if args.measure_batches <= 0:
        args.measure_batches = 3
    import torch
    model = llama_infer.build_model(args, torch)
    for w in range(2):
        llama_infer.generate_batch(model, torch, args, "warm%d" % w, 8, report=False)
    results = {"without": [], "with": []}
    tmp = tempfile.mkdtemp(prefix="ovh")
    for i in range(n):
        for mode in ("without", "with"):
            rec = None
            if mode == "with":
                out = os.path.join(tmp, "r%d" % i)
                # The socket lies in a private directory that LLEM_EVENTS
                # names (record/recorder.go listenEvents): the command
                # under the recorder writes it down, then becomes sleep.
                named = os.path.join(tmp, "sock%d" % i)
                rec = subprocess.Popen([llem, "record", "--quiet", "--out", out, "--", "sh", "-c",
                                        'echo "$LLEM_EVENTS" > "$0.part" && mv "$0.part" "$0" && exec sleep 3600', named])
                deadline = time.time() + 30
                while not os.path.exists(named):
                    if time.time() > deadline or rec.poll() is not None:
                        rec.kill()
                        sys.exit("overhead_alt: the recorder did not start")
                    time.sleep(0.05)
                sock = open(named).read().strip()
                llem_events._default = llem_events.Client(sock)
            else:
                llem_events._default = llem_events.Client(path=None)
                llem_events._default.path = None  # events go nowhere
            tps = run_batches(model, torch, args, "%s%d" % (mode, i))
            results[mode].append(tps)
            if rec is not None:
                llem_events._default.close()
                rec.send_signal(signal.SIGINT)  # forwarded to sleep; llem then finishes the trace
                rec.wait()
                meta = json.load(open(os.path.join(out, "meta.json")))
                extra = " events %d" % meta["events"]["accepted"]
            else:
                extra = ""
            print("overhead %d %-7s %.1f tokens/s%s" % (i + 1, mode, tps, extra), flush=True)
    for mode in ("without", "with"):
        v = results[mode]
        print("overhead %-7s mean %.1f sd %.1f tokens/s over %d runs: %s" % (
            mode, statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0, len(v),
            ", ".join("%.1f" % x for x in v)), flush=True)


if __name__ == "__main__":
    main()
