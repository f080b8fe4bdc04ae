#!/usr/bin/env bash
# One device call (~9 min on an H100):
# 1. a long recording (60 s full warm-up, ~4 min measured at batch 32, with
#    idle phases and a P0 hold): every driver sample captured, counter vs
#    integrated instant power, the thermal rise, the recorder's CPU use;
# 2. the example's tokens/s with and without llem record, alternating 5 times
#    (overhead.sh; the first recorded run used 8 s time-boxed runs, whose
#    1-or-2-batch granularity hid any effect, so it now uses fixed work).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
LOG="$OUT/long-and-overhead.txt"
exec > >(tee -a "$LOG") 2>&1
gpu_header

MEASURE=${MEASURE:-210}
record_measured "$RUNS/h100-bs32-long" --idle-before 10s --idle-after 10s --label batch=32 --label study=long -- \
  python3 examples/llama_infer.py --batch 32 --warmup full --warmup-seconds 60 --measure-seconds "$MEASURE" --p0-hold 10
$LLEM info "$RUNS/h100-bs32-long"
tar -C "$RUNS" -czf "$OUT/h100-bs32-long.tgz" h100-bs32-long

echo "== overhead: tokens/s with and without llem record, alternating"
N=${N:-5} bash "$(dirname "$0")/overhead.sh"
