#!/usr/bin/env bash
# Two llem builds and nvidia-smi at idle, side by side in one device call
# (issue 11's "less than nvidia-smi -lms 20"): steady sampling CPU and
# context switches a second of each, one tool at a time, in ROUNDS
# alternating rounds, so a drift of the machine shows as a spread instead
# of a difference. About (4 x (STEADY_S+5) x ROUNDS + 40) s.
#
#   LLEM_OLD=.devcarry/llem-old LLEM=.devcarry/llem-new bash bench/gpu/idle-ab.sh
#
# Each round: the old build, the new build, the new build with
# GOMAXPROCS=1, nvidia-smi -lms 20 (the issue's four fields); then
# nvidia-smi -lms 100 once. Ends with a CPU profile of the new build
# (--cpuprofile, Go's 100 Hz: few samples at idle) and each recording's
# sampling-loop timeliness from meta.json.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-idle-ab}; rm -rf "$W"; mkdir -p "$W"
STEADY_S=${STEADY_S:-25}; ROUNDS=${ROUNDS:-2}
OLD=${LLEM_OLD:?set LLEM_OLD to the build to compare against}
fields=timestamp,power.draw.instant,temperature.gpu,clocks.sm
steady() { python3 bench/gpu/steady_cpu.py "$@"; }

main() {
  gpu_header
  echo "old: $($OLD --version); new: $($LLEM --version); STEADY_S=$STEADY_S ROUNDS=$ROUNDS"
  for r in $(seq "$ROUNDS"); do
    echo "== round $r"
    steady "llem old, defaults" "$STEADY_S" INT "$W/old$r.log" -- \
      "$OLD" record --device "${DEVICE:-nvml}" --quiet --out "$W/old$r" -- sleep 3600
    steady "llem new, defaults" "$STEADY_S" INT "$W/new$r.log" -- \
      "$LLEM" record --device "${DEVICE:-nvml}" --quiet --out "$W/new$r" -- sleep 3600
    GOMAXPROCS=1 steady "llem new, GOMAXPROCS=1" "$STEADY_S" INT "$W/g1$r.log" -- \
      "$LLEM" record --device "${DEVICE:-nvml}" --quiet --out "$W/g1$r" -- sleep 3600
    command -v nvidia-smi >/dev/null &&
      steady "nvidia-smi -lms 20" "$STEADY_S" TERM "$W/smi20-$r.csv" -- \
        nvidia-smi --query-gpu=$fields --format=csv -lms 20
  done
  command -v nvidia-smi >/dev/null &&
    steady "nvidia-smi -lms 100" "$STEADY_S" TERM "$W/smi100.csv" -- \
      nvidia-smi --query-gpu=$fields --format=csv -lms 100
  steady "llem new, --cpuprofile" "$STEADY_S" INT "$W/prof.log" -- \
    "$LLEM" record --device "${DEVICE:-nvml}" --quiet --cpuprofile "$OUT/idle-new.prof" --out "$W/prof" -- sleep 3600
  python3 - "$W" <<'PY'
import json, sys, glob
for d in sorted(glob.glob(sys.argv[1] + "/*/meta.json")):
    loops = json.load(open(d)).get("recorder", {}).get("loops", {})
    print(d.split("/")[-2], {k: (v.get("iterations"), v.get("missed_deadlines"), v.get("mean_jitter_ms"), v.get("worst_jitter_ms")) for k, v in loops.items()})
PY
}
main 2>&1 | tee -a "$OUT/idle-ab.txt"
