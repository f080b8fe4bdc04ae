#!/usr/bin/env bash
# The example's tokens/s with and without llem record, alternating N times
# (default 2), each doing the same fixed work (3 batches of 32).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
gpu_header
for i in $(seq "${N:-2}"); do
  for mode in without with; do
    if [ $mode = with ]; then
      res=$("$LLEM" record --quiet --out "$RUNS/ovh-$i" -- python3 examples/llama_infer.py --batch 32 --warmup fast --measure-batches 3 2>/dev/null | grep '^llama_infer: {')
    else
      res=$(python3 examples/llama_infer.py --batch 32 --warmup fast --measure-batches 3 | grep '^llama_infer: {')
    fi
    echo "overhead $i $mode ${res#llama_infer: }"
  done
done
