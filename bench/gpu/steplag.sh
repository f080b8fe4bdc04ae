#!/usr/bin/env bash
# When does each power signal see a load step? bench/gpu/steplag reads the
# energy counter in a tight loop, instant power every 2 ms and the driver
# buffer every 500 ms, while a bf16 matmul load steps on and off 20 times
# with random idle lengths (so the steps fall at every phase of the 100 ms
# sensor grid); the workload writes the host time of each step. Then
# bench/gpu/steplag/analysis.py gives each signal's lag (docs/results.md,
# "The energy counter's lag"). Needs ~75 s of GPU time.
# Usage (repository root, on the GPU machine): bash bench/gpu/steplag.sh STEPLAG_BIN
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
BIN=${1:-bin/steplag}
OUT=${OUT:-/tmp/steplag-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,persistence_mode,power.limit,power.default_limit,temperature.gpu,power.draw --format=csv > "$OUT/gpu.txt"
"$BIN" -for 72s -out "$OUT" &
reader=$!
sleep 1
python3 - "$OUT/steps.csv" <<'PY'
import random, sys, time, torch
random.seed(7)
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(20):
    a @ a
torch.cuda.synchronize()
time.sleep(3)
with open(sys.argv[1], "w") as f:
    f.write("up_ns,down_ns\n")
    for i in range(20):
        time.sleep(1.4 + random.random() * 0.2)
        up = time.time_ns()
        end = up + 1_500_000_000
        while time.time_ns() < end:
            for _ in range(4):
                a @ a
            torch.cuda.synchronize()
        down = time.time_ns()
        f.write(f"{up},{down}\n")
PY
wait "$reader"
echo "steplag exit $?"
wc -l "$OUT"/*.csv
cat "$OUT/gpu.txt"
