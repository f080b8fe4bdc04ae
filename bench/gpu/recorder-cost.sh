#!/usr/bin/env bash
# The recorder's cost against what a user would run instead, in one device
# call (~6.5 min on an H200), printing one table with ratios to nvidia-smi
# (issue 11). From the repository root on the GPU host:
#
#   LLEM=bin/llem LLEM_BEFORE=path/to/older/llem bash bench/gpu/recorder-cost.sh
#
# LLEM_BEFORE (optional) is an older llem measured too, for the
# before/after rows. Every process's own CPU is counted (user + system,
# start-up included: meta.json for llem, getrusage for the others):
#  A idle GPU, IDLE_S (30 s) each, one after the other: llem at defaults,
#    [older llem], nvidia-smi -lms 20 and -lms 100 with the four
#    fields, a pynvml poller at 100 Hz. One at a time: NVML calls from
#    several processes at once cost each of them several times more CPU
#    (a first version of this script, running them side by side, saw
#    llem's state poll cost 10x its lone cost);
#  B token events from 8 client processes (bench/recorder/event_load.py,
#    the real Python client, holding lines for 100 ms) at 0, 1k, 10k and 50k
#    events/s for EVENTS_S (60 s), one recorder each, side by side;
#    per-event cost = (CPU - the 0-event recorder's CPU rate x wall) /
#    events; [older llem at 0 and 1k]; with EACH=1 then the same again
#    with clients writing every event at once (EVENT_HOLD=0, B-each-*);
#    EVENT_LOAD (a command taking RATE SECONDS CLIENTS) replaces the Python
#    clients, e.g. EVENT_LOAD=/tmp/goload for llem's Go client
#    (bench/recorder/goload);
#  C bf16 matmul load for LOAD_S (30 s), recorded by llem, [then by the
#    older llem]; both runs read by pandas (read_parquet.py), their
#    driver_power tables copied to $OUT;
#  D the example's tokens/s without and with llem, alternating OVH_N (5)
#    times (bench/gpu/overhead_alt.py).
# Profiles (llem --cpuprofile) of A, B at 50k and C go to $OUT. PARTS
# ("A B C D") picks parts, e.g. PARTS=B for the event path alone.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/llem-out}; W=${W:-/tmp/llem-cost}
mkdir -p "$OUT"; rm -rf "$W"; mkdir -p "$W"
LLEM=${LLEM:-bin/llem}; BEFORE=${LLEM_BEFORE:-}
IDLE_S=${IDLE_S:-30}; EVENTS_S=${EVENTS_S:-60}; LOAD_S=${LOAD_S:-30}; OVH_N=${OVH_N:-5}
DEVICE=${DEVICE:-nvml}   # sim for a dry run without a GPU
PARTS=" ${PARTS:-A B C D} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
B=bench/gpu; R=bench/recorder
EVENT_LOAD=${EVENT_LOAD:-python3 $R/event_load.py}
exec > >(tee "$OUT/recorder-cost.txt") 2>&1

echo "== machine"
command -v nvidia-smi >/dev/null && { nvidia-smi -L 2>&1; nvidia-smi --query-gpu=name,driver_version,persistence_mode,power.limit,temperature.gpu,power.draw --format=csv 2>&1; }
echo "cores $(nproc); llem $($LLEM --version)${BEFORE:+; before: $($BEFORE --version)}; $(date -u +%FT%TZ)"

# rec NAME LLEM ARGS... : llem record into $W/NAME, in the background. A
# recording still going 90 s after its window is interrupted (SIGINT, which
# llem forwards to its command), so one stuck run cannot hold the others.
rec() { local name=$1 bin=$2; shift 2
  timeout -s INT $((EVENTS_S + 90)) "$bin" record --device "$DEVICE" --quiet --out "$W/$name" "$@" > "$W/$name.log" 2>&1 & }

if part A; then
echo "== A: idle GPU, ${IDLE_S}s each, one at a time"
rec A-llem "$LLEM" --cpuprofile "$OUT/A-llem.prof" -- sleep "$IDLE_S"; wait $!
[ -n "$BEFORE" ] && { rec A-before "$BEFORE" -- sleep "$IDLE_S"; wait $!; }
if command -v nvidia-smi >/dev/null; then
  for ms in 20 100; do
    python3 $B/measure_cmd.py "nvidia-smi -lms $ms" "$IDLE_S" "$W/smi$ms.csv" -- \
      nvidia-smi --query-gpu=timestamp,power.draw.instant,temperature.gpu,clocks.sm --format=csv -lms $ms > "$W/A-smi$ms.json"
  done
fi
python3 -c 'import pynvml' 2>/dev/null && python3 $B/pynvml_poller.py "$IDLE_S" > "$W/A-pynvml.json" 2>&1
fi

if part B; then

# rates WHO HOLD [LLEM ARGS AT 50k...]: one recorder at each rate, side by
# side, into B-WHO-RATE, the clients holding lines HOLD seconds (their
# default when empty); their pids in pids.
rates() { local who=$1 hold=$2; shift 2; pids=()
  for rate in 0 1000 10000 50000; do
    local at50k=(); [ $rate = 50000 ] && at50k=("$@")
    if [ $rate = 0 ]; then rec B-$who-$rate "$LLEM" -- sleep "$EVENTS_S"
    else rec B-$who-$rate "$LLEM" "${at50k[@]}" -- env ${hold:+EVENT_HOLD=$hold} $EVENT_LOAD $rate "$EVENTS_S" 8; fi
    pids+=($!)
  done; }

echo "== B: token events from 8 clients, ${EVENTS_S}s side by side"
rates llem "" --cpuprofile "$OUT/B-llem-50k.prof"
if [ -n "$BEFORE" ]; then
  rec B-before-0 "$BEFORE" -- sleep "$EVENTS_S"; pids+=($!)
  rec B-before-1000 "$BEFORE" -- $EVENT_LOAD 1000 "$EVENTS_S" 8; pids+=($!)
fi
# Memory of the 50k recorder every 5 s: it must stay flat.
( sleep 2; p=$(pgrep -f "^[^ ]*llem record --device [a-z]+ --quiet --out $W/B-llem-50000 " | head -1)
  while [ -n "$p" ] && kill -0 "$p" 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$p/status; sleep 5; done > "$W/B-rss-50k.txt" ) & rsspid=$!
wait "${pids[@]}" "$rsspid"
if [ "${EACH:-0}" = 1 ]; then
  echo "== B: the same, clients writing each event at once (EVENT_HOLD=0)"
  rates each 0
  wait "${pids[@]}"
fi
fi

if part C; then

echo "== C: bf16 matmul load, ${LOAD_S}s each"
load="import torch,time
a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16)
end=time.time()+$LOAD_S
while time.time()<end:
    for _ in range(50): a@a
    torch.cuda.synchronize()"
# The profile costs the recorder CPU too: PROFILE=0 leaves it out when the
# figure is compared with LLEM_BEFORE's (which runs without one).
prof=(); [ "${PROFILE:-1}" = 1 ] && prof=(--cpuprofile "$OUT/C-llem.prof")
if [ "$DEVICE" = nvml ]; then rec C-llem "$LLEM" "${prof[@]}" -- python3 -c "$load"
else rec C-llem "$LLEM" "${prof[@]}" -- sleep "$LOAD_S"; fi
wait $!
if [ -n "$BEFORE" ]; then
  if [ "$DEVICE" = nvml ]; then rec C-before "$BEFORE" -- python3 -c "$load"; else rec C-before "$BEFORE" -- sleep "$LOAD_S"; fi
  wait $!
fi
echo "== C: the runs read by pandas (pyarrow)"
python3 $B/read_parquet.py "$W/C-llem" ${BEFORE:+"$W/C-before"}
for r in C-llem C-before; do
  [ -d "$W/$r/driver_power" ] && mkdir -p "$OUT/$r" && cp -r "$W/$r/driver_power" "$W/$r/meta.json" "$OUT/$r/"
done
fi

echo "== table"
python3 $B/cost_table.py "$W"
tar -C "$W" -czf "$OUT/runs.tgz" --exclude='*.parquet' --exclude='*.csv' .

if part D && [ "$DEVICE" = nvml ] && [ "$OVH_N" -gt 0 ]; then
  echo "== D: the example's tokens/s without and with llem, alternating $OVH_N times"
  python3 $B/overhead_alt.py "$LLEM" "$OVH_N" --batch 32 --new-tokens 64 --measure-batches 3 2>&1 | grep -v Warning
fi
