#!/usr/bin/env bash
# One device call (~8.5 min on an H100):
# 1. the example at batch 8 and 32, each with idle phases, 5 cycles and a
#    P0 hold: the shipped reference runs;
# 2. the recorder's CPU at default settings with no client events (60 s);
# 3. the example's tokens/s with and without llem record, alternating 5
#    times, each doing the same fixed work (3 batches of 32).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
LOG="$OUT/cycles.txt"
exec > >(tee -a "$LOG") 2>&1
gpu_header
for b in 8 32; do
  record_measured "$RUNS/h100-bs$b-cycles" --idle-before 5s --idle-after 5s --cycles 5 --cooldown 2s \
    --label batch=$b --label study=cycles -- \
    python3 examples/llama_infer.py --batch $b --warmup fast --measure-seconds 6 --p0-hold 3
  $LLEM info "$RUNS/h100-bs$b-cycles"
done
tar -C "$RUNS" -czf "$OUT/h100-cycles.tgz" h100-bs8-cycles h100-bs32-cycles

echo "== recorder CPU at default settings, no client events"
record_measured "$RUNS/idle-60s" -- sleep 60
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['recorder']; print('meta.json recorder:', json.dumps(r))" "$RUNS/idle-60s/meta.json"

echo "== overhead: tokens/s with and without llem record, alternating"
N=${N:-5} bash "$(dirname "$0")/overhead.sh"
