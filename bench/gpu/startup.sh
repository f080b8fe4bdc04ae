#!/usr/bin/env bash
# Where an idle recorder's CPU goes on a real GPU (issue 11): start-up and
# shutdown against steady sampling, for llem record and for nvidia-smi
# -lms 20 / 100 with the issue's four fields, one at a time. recorder-cost.sh
# compares whole 30 s runs, where start-up weighs as much as 30 s of
# sampling; this says which of the two to work on. About 4 minutes.
#
#   LLEM=bin/llem bash bench/gpu/startup.sh      (results in $OUT)
#
#  S1 steady: each tool runs STEADY_S+5 s (60 s); its threads' CPU is read
#     at 5 s and at the end (bench/gpu/steady_cpu.py);
#  S2 start-up: N (8) runs of `llem record -- true` with --cpuprofile
#     (merge them: go tool pprof -top bin/llem $OUT/S-*.prof), and N
#     one-shot nvidia-smi queries, each process's CPU by getrusage.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-startup}; rm -rf "$W"; mkdir -p "$W"
STEADY_S=${STEADY_S:-55}; N=${N:-8}
PARTS=${PARTS:-S1 S2 S3}  # which parts to run, e.g. PARTS=S2 for start-up alone
fields=timestamp,power.draw.instant,temperature.gpu,clocks.sm
cpu_of() { python3 -c '
import resource, subprocess, sys, json
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.4f %.4f rc=%d" % (u.ru_utime, u.ru_stime, r.returncode))' "$@"; }

main() {
  gpu_header
  if [[ " $PARTS " == *" S1 "* ]]; then
  echo "== S1: steady sampling, ${STEADY_S}s after the first 5 s, one tool at a time"
  python3 bench/gpu/steady_cpu.py "llem record, defaults" "$STEADY_S" INT "$W/llem.log" -- \
    "$LLEM" record --device "${DEVICE:-nvml}" --quiet --out "$W/steady" -- sleep 3600
  python3 bench/gpu/steady_cpu.py "llem record, defaults, --cpuprofile" "$STEADY_S" INT "$W/llem2.log" -- \
    "$LLEM" record --device "${DEVICE:-nvml}" --quiet --cpuprofile "$OUT/S1-llem.prof" --out "$W/steady2" -- sleep 3600
  command -v nvidia-smi >/dev/null && for ms in 20 100; do
    python3 bench/gpu/steady_cpu.py "nvidia-smi -lms $ms" "$STEADY_S" TERM "$W/smi$ms.csv" -- \
      nvidia-smi --query-gpu=$fields --format=csv -lms $ms
  done
  fi
  if [[ " $PARTS " == *" S2 "* ]]; then
  echo "== S2: start-up and shutdown, $N runs each (user s, system s)"
  for i in $(seq "$N"); do
    echo "llem record -- true #$i: $(cpu_of "$LLEM" record --device "${DEVICE:-nvml}" --quiet --cpuprofile "$OUT/S2-llem-$i.prof" --out "$W/t$i" -- true)"
  done
  for i in $(seq "$N"); do
    echo "llem --version #$i: $(cpu_of "$LLEM" --version)"
  done
  command -v nvidia-smi >/dev/null && for i in $(seq "$N"); do
    echo "nvidia-smi one query #$i: $(cpu_of nvidia-smi --query-gpu=$fields --format=csv)"
  done
  fi
  if [[ " $PARTS " == *" S3 "* ]] && command -v perf >/dev/null; then
    echo "== S3: perf of an idle recorder, 20 s after the first 5 s"
    "$LLEM" record --device "${DEVICE:-nvml}" --quiet --out "$W/perf" -- sleep 50 & p=$!
    sleep 5
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p $p -- sleep 20 2>&1 | tail -12
    perf record -F 999 -g -o "$W/idle.perf" -p $p -- sleep 20 >/dev/null 2>&1 &&
      perf report -i "$W/idle.perf" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep % | head -50 | tee "$OUT/S3-idle-perf.txt"
    wait $p
  elif [[ " $PARTS " == *" S3 "* ]]; then
    echo "== S3: no perf on this machine"
  fi
  python3 - "$W"/t1/meta.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("meta.json of run 1: recorder", json.dumps(m.get("recorder", {}))[:600])
PY
}
main 2>&1 | tee -a "$OUT/startup.txt"
