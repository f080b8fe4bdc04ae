#!/usr/bin/env bash
# One device call (~9 min on an H100):
# 1. a long recording (60 s full warm-up, ~4 min measured at batch 32, with
#    idle phases and a P0 hold): every driver sample captured, counter vs
#    integrated instant power, the thermal rise, the recorder's CPU use;
# 2. the example's tokens/s with and without llem record, alternating 5 times.
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
for i in 1 2 3 4 5; do
  for mode in without with; do
    if [ $mode = with ]; then
      res=$("$LLEM" record --quiet --out "$RUNS/ovh-$i" -- python3 examples/llama_infer.py --batch 32 --warmup fast --measure-seconds 8 | grep '^llama_infer: {')
    else
      res=$(python3 examples/llama_infer.py --batch 32 --warmup fast --measure-seconds 8 | grep '^llama_infer: {')
    fi
    echo "overhead $i $mode ${res#llama_infer: }"
  done
done
