#!/usr/bin/env bash
# Where llem's idle CPU goes, against the floor the driver sets, in one
# device call (issue 11): nvml_floor (bench/gpu/nvml_floor.c, the same
# NVML calls from one C thread and nothing else) at llem's schedule and at
# nvidia-smi -lms 20's, nvidia-smi itself, llem at defaults (state polls
# on the C thread), the same with LLEM_NVML_STATE_THREAD=0 (polls on the
# Go schedule; GOSCHED=0 leaves it out), nvidia-smi recording llem's state
# fields at llem's 10 Hz (SAME=1), and LLEM_OLD if set; each with its busiest threads, in
# ROUNDS alternating rounds. Then, with LOAD_S > 0, llem under a bf16
# matmul load (recorder-cost.sh part C, against LLEM_OLD).
#
#   FLOOR=.devcarry/nvml_floor LLEM=.devcarry/llem LLEM_OLD=.devcarry/llem-old bash bench/gpu/floor.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-floor}; rm -rf "$W"; mkdir -p "$W"
STEADY_S=${STEADY_S:-20}; ROUNDS=${ROUNDS:-2}; LOAD_S=${LOAD_S:-0}
FLOOR=${FLOOR:?set FLOOR to a build of bench/gpu/nvml_floor.c}
OLD=${LLEM_OLD:-}
fields=timestamp,power.draw.instant,temperature.gpu,clocks.sm
# What llem's state poll records, for nvidia-smi at llem's 10 Hz (SAME=1).
# (The H100's nvidia-smi 580.159.04 rejected this list with clocks_event_reasons.active
# in it, 2026-12-06; the throttle name is the one older releases know.)
same=timestamp,power.draw.instant,power.draw.average,temperature.gpu,clocks.sm,clocks.mem,pstate,utilization.gpu,utilization.memory,clocks_throttle_reasons.active,memory.used
SAME=${SAME:-0}; GOSCHED=${GOSCHED:-1}
steady() { python3 bench/gpu/steady_cpu.py "$@"; }
rec() { local name=$1 bin=$2; shift 2
  steady "$name" "$STEADY_S" INT "$W/$name.log" -- "$bin" record --device "${DEVICE:-nvml}" --quiet --out "$W/$name" -- sleep 3600; }

idle() {
  gpu_header
  if [ "$SAME" = 1 ] && ! nvidia-smi --query-gpu=$same --format=csv -c 1; then
    echo "nvidia-smi refuses llem's field list: SAME=0"; SAME=0
  fi
  echo "cores $(nproc); new: $($LLEM --version)${OLD:+; old: $($OLD --version)}; STEADY_S=$STEADY_S ROUNDS=$ROUNDS"
  for r in $(seq "$ROUNDS"); do
    echo "== round $r"
    "$FLOOR" llem "$STEADY_S"
    "$FLOOR" smi "$STEADY_S"
    steady "nvidia-smi -lms 20" "$STEADY_S" TERM "$W/smi20-$r.csv" -- \
      nvidia-smi --query-gpu=$fields --format=csv -lms 20
    [ "$SAME" = 1 ] && steady "nvidia-smi -lms 100, llem's state fields" "$STEADY_S" TERM "$W/same-$r.csv" -- \
      nvidia-smi --query-gpu=$same --format=csv -lms 100
    rec "new-$r" "$LLEM"
    [ "$GOSCHED" = 1 ] && LLEM_NVML_STATE_THREAD=0 rec "new-gosched-$r" "$LLEM"
    [ -n "$OLD" ] && rec "old-$r" "$OLD"
  done
  python3 - "$W" <<'PY'
import json, sys, glob
for d in sorted(glob.glob(sys.argv[1] + "/*/meta.json")):
    loops = json.load(open(d)).get("recorder", {}).get("loops", {})
    print("loops", d.split("/")[-2], {k: (v.get("iterations"), v.get("missed_deadlines"), v.get("mean_jitter_ms"), v.get("worst_jitter_ms"), v.get("thread", "")) for k, v in loops.items()})
PY
}
idle 2>&1 | tee "$OUT/floor.txt"
if [ "$LOAD_S" -gt 0 ]; then
  PROFILE=0 OUT=$OUT PARTS=C LOAD_S=$LOAD_S W=$W/C LLEM_BEFORE=$OLD bash bench/gpu/recorder-cost.sh 2>&1 | grep -E "^\| llem" | tee "$OUT/load.txt"
fi
