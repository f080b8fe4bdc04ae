#!/usr/bin/env bash
# Where llem's idle CPU goes, against the floor the driver sets, in one
# device call (issue 11): nvml_floor (bench/gpu/nvml_floor.c, the same
# NVML calls from one C thread and nothing else) at llem's schedule and at
# nvidia-smi -lms 20's, nvidia-smi itself, llem at defaults and with the
# state poll at 1 Hz, each with its busiest threads; then the event path
# (recorder-cost.sh part B) at Go's default GOMAXPROCS and at 2.
#
#   FLOOR=.devcarry/nvml_floor LLEM=.devcarry/llem-new bash bench/gpu/floor.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-floor}; rm -rf "$W"; mkdir -p "$W"
STEADY_S=${STEADY_S:-20}; EVENTS_S=${EVENTS_S:-20}
FLOOR=${FLOOR:?set FLOOR to a build of bench/gpu/nvml_floor.c}
fields=timestamp,power.draw.instant,temperature.gpu,clocks.sm
steady() { python3 bench/gpu/steady_cpu.py "$@"; }

idle() {
  gpu_header
  echo "cores $(nproc); GOMAXPROCS default $(nproc)"
  for r in 1 2; do
    echo "== round $r"
    "$FLOOR" llem "$STEADY_S"
    "$FLOOR" smi "$STEADY_S"
    steady "nvidia-smi -lms 20" "$STEADY_S" TERM "$W/smi20-$r.csv" -- \
      nvidia-smi --query-gpu=$fields --format=csv -lms 20
    steady "llem, defaults" "$STEADY_S" INT "$W/llem$r.log" -- \
      "$LLEM" record --device "${DEVICE:-nvml}" --quiet --out "$W/llem$r" -- sleep 3600
    steady "llem, --state-interval 1s" "$STEADY_S" INT "$W/st1-$r.log" -- \
      "$LLEM" record --device "${DEVICE:-nvml}" --quiet --state-interval 1s --out "$W/st1-$r" -- sleep 3600
  done
}
idle 2>&1 | tee "$OUT/floor.txt"
for g in default 2; do
  mkdir -p "$OUT/B-$g"
  if [ $g = default ]; then
    OUT=$OUT/B-$g PARTS=B EVENTS_S=$EVENTS_S W=$W/B-$g bash bench/gpu/recorder-cost.sh
  else
    GOMAXPROCS=$g OUT=$OUT/B-$g PARTS=B EVENTS_S=$EVENTS_S W=$W/B-$g bash bench/gpu/recorder-cost.sh
  fi 2>&1 | grep -E "^\| llem" | sed "s/^/GOMAXPROCS=$g /"
done | tee "$OUT/events-gomaxprocs.txt"
