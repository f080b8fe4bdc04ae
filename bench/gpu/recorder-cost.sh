#!/usr/bin/env bash
# The recorder's cost against what a user would run instead, in one device
# call (~5 min on an H200), printing one table with ratios to nvidia-smi
# (issue 11). From the repository root on the GPU host:
#
#   LLEM=bin/llem LLEM_BEFORE=path/to/older/llem bash bench/gpu/recorder-cost.sh
#
# LLEM_BEFORE (optional) is an older llem measured alongside for the
# before/after rows. Windows, each run side by side (concurrently), every
# process's CPU counted on its own (user + system, start-up included):
#  A (30 s) idle GPU: llem at defaults, nvidia-smi -lms 20 and -lms 100 with
#    the four fields, a pynvml poller at 100 Hz, [older llem];
#  B (60 s) token events from 8 client processes (bench/recorder/event_load.py,
#    the real Python client) at 0, 1k, 10k and 50k events/s, one recorder
#    each; per-event cost = (CPU - CPU at 0 events) / events; [older llem
#    at 0 and 1k];
#  C (30 s) bf16 matmul load, recorded by llem; [older llem beside it];
#  D the example's tokens/s without and with llem, alternating 5 times
#    (bench/gpu/overhead_alt.py).
# Profiles (llem --cpuprofile) of A, B at 50k and C go to $OUT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/llem-out}; W=${W:-/tmp/llem-cost}
mkdir -p "$OUT"; rm -rf "$W"; mkdir -p "$W"
LLEM=${LLEM:-bin/llem}; BEFORE=${LLEM_BEFORE:-}
IDLE_S=${IDLE_S:-30}; EVENTS_S=${EVENTS_S:-60}; LOAD_S=${LOAD_S:-30}; OVH_N=${OVH_N:-5}
DEVICE=${DEVICE:-nvml}   # sim for a dry run without a GPU
B=bench/gpu; R=bench/recorder
exec > >(tee "$OUT/recorder-cost.txt") 2>&1

echo "== machine"
nvidia-smi -L 2>&1; nvidia-smi --query-gpu=name,driver_version,persistence_mode,power.limit,temperature.gpu,power.draw --format=csv 2>&1
echo "cores $(nproc); llem $($LLEM --version)${BEFORE:+; before: $($BEFORE --version)}; $(date -u +%FT%TZ)"

# rec NAME LLEM ARGS... : llem record into $W/NAME, in the background. A
# recording still going 90 s after its window is interrupted (SIGINT, which
# llem forwards to its command), so one stuck run cannot hold the others.
rec() { local name=$1 bin=$2; shift 2
  timeout -s INT $((EVENTS_S + 90)) "$bin" record --device "$DEVICE" --quiet --out "$W/$name" "$@" > "$W/$name.log" 2>&1 & }

echo "== A: idle GPU, ${IDLE_S}s side by side"
pids=()
rec A-llem "$LLEM" --cpuprofile "$OUT/A-llem.prof" -- sleep "$IDLE_S"; pids+=($!)
[ -n "$BEFORE" ] && { rec A-before "$BEFORE" -- sleep "$IDLE_S"; pids+=($!); }
if command -v nvidia-smi >/dev/null; then
  for ms in 20 100; do
    python3 $B/measure_cmd.py "nvidia-smi -lms $ms" "$IDLE_S" "$W/smi$ms.csv" -- \
      nvidia-smi --query-gpu=timestamp,power.draw.instant,temperature.gpu,clocks.sm --format=csv -lms $ms > "$W/A-smi$ms.json" & pids+=($!)
  done
fi
python3 -c 'import pynvml' 2>/dev/null && { python3 $B/pynvml_poller.py "$IDLE_S" > "$W/A-pynvml.json" 2>&1 & pids+=($!); }
wait "${pids[@]}"

echo "== B: token events from 8 clients, ${EVENTS_S}s side by side"
pids=()
for rate in 0 1000 10000 50000; do
  prof=(); [ $rate = 50000 ] && prof=(--cpuprofile "$OUT/B-llem-50k.prof")
  if [ $rate = 0 ]; then rec B-llem-$rate "$LLEM" -- sleep "$EVENTS_S"
  else rec B-llem-$rate "$LLEM" "${prof[@]}" -- python3 $R/event_load.py $rate "$EVENTS_S" 8; fi
  pids+=($!)
done
if [ -n "$BEFORE" ]; then
  rec B-before-0 "$BEFORE" -- sleep "$EVENTS_S"; pids+=($!)
  rec B-before-1000 "$BEFORE" -- python3 $R/event_load.py 1000 "$EVENTS_S" 8; pids+=($!)
fi
# Memory of the 50k recorder every 5 s: it must stay flat.
( sleep 2; p=$(pgrep -f "out $W/B-llem-50000 " | head -1)
  while [ -n "$p" ] && kill -0 "$p" 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$p/status; sleep 5; done > "$W/B-rss-50k.txt" ) & rsspid=$!
wait "${pids[@]}" "$rsspid"

echo "== C: bf16 matmul load, ${LOAD_S}s"
load="import torch,time
a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16)
end=time.time()+$LOAD_S
while time.time()<end:
    for _ in range(50): a@a
    torch.cuda.synchronize()"
pids=()
if [ "$DEVICE" = nvml ]; then rec C-llem "$LLEM" --cpuprofile "$OUT/C-llem.prof" -- python3 -c "$load"
else rec C-llem "$LLEM" --cpuprofile "$OUT/C-llem.prof" -- sleep "$LOAD_S"; fi
pids+=($!)
[ -n "$BEFORE" ] && { rec C-before "$BEFORE" -- sleep $((LOAD_S + 8)); pids+=($!); }
wait "${pids[@]}"

echo "== table"
python3 $B/cost_table.py "$W"
tar -C "$W" -czf "$OUT/runs.tgz" --exclude='*.parquet' --exclude='*.csv' .

if [ "$DEVICE" = nvml ] && [ "$OVH_N" -gt 0 ]; then
  echo "== D: the example's tokens/s without and with llem, alternating $OVH_N times"
  python3 $B/overhead_alt.py "$LLEM" "$OVH_N" --batch 32 --new-tokens 64 --measure-batches 3 2>&1 | grep -v Warning
fi
