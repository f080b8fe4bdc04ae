#!/usr/bin/env bash
# The recorder's fault handling on a real GPU (NVML backend), not the
# simulated one (issue 17): about 1.5 minutes. From the repository root on
# the device machine with bin/ carried (make build). Results in $OUT:
# faults.txt (everything printed) and the runs as faults-runs.tgz.
#  1 SIGTERM to llem while its command ignores SIGTERM: passed to the
#    command's group, SIGKILL after --stop-grace (2 s); exit 137; the
#    trace finished, meta.json command.stop says so; llem check passes.
#  2 kill -9 of llem itself 12 s into a 30 s recording: the segments
#    written before stay readable (llem check, llem info); about one
#    rotation (5 s) is lost.
#  3 a full disk: the run directory on a 2 MB tmpfs that the command
#    fills; llem warns at once, the command runs to its end and llem exits
#    with its code (0); meta.json data_ends_*; skipped if tmpfs cannot be
#    mounted here.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-faults}
rm -rf "$W"; mkdir -p "$W"

meta() { # meta DIR EXPR: print a python expression over meta.json as m
  python3 -c "import json,sys; m=json.load(open(sys.argv[1]+'/meta.json')); print($2)" "$1"
}

main() {
  gpu_header
  echo "== 1: SIGTERM, a command that ignores it, --stop-grace 2s"
  "$LLEM" record --quiet --stop-grace 2s --out "$W/term" -- sh -c 'trap "" TERM; sleep 60' &
  pid=$!
  sleep 8
  t0=$(date +%s.%N)
  kill -TERM $pid
  wait $pid; rc=$?
  t1=$(date +%s.%N)
  echo "llem exit $rc after SIGTERM, $(python3 -c "print(f'{$t1-$t0:.1f}')") s later"
  meta "$W/term" "m['status'], m['command'].get('stop'), m['command'].get('exit_signal')"
  "$LLEM" check "$W/term"; echo "check exit $?"

  echo "== 2: kill -9 of llem 12 s into a 30 s recording"
  "$LLEM" record --quiet --out "$W/kill9" -- sleep 30 &
  pid=$!
  sleep 12
  kill -9 $pid; wait $pid; echo "llem exit $?"
  pkill -f "sleep 30" || true
  "$LLEM" check "$W/kill9"; echo "check exit $?"
  "$LLEM" info "$W/kill9" | head -20
  "$LLEM" analyze --quiet "$W/kill9" | head -8

  echo "== 3: a full disk (2 MB tmpfs)"
  mkdir -p "$W/small"
  if mount -t tmpfs -o size=2m tmpfs "$W/small" 2>/dev/null; then
    "$LLEM" record --out "$W/small/run" -- sh -c 'sleep 3; head -c 3000000 /dev/zero > "$LLEM_RUN_DIR/../fill" 2>/dev/null; sleep 8; exit 0'
    echo "llem exit $? (the command's: 0)"
    meta "$W/small/run" "m['status'], m.get('data_ends_ns'), m.get('data_ends_reason')"
    "$LLEM" check "$W/small/run"; echo "check exit $?"
    cp -r "$W/small/run" "$W/fulldisk"
    umount "$W/small"
  else
    echo "skipped: cannot mount a tmpfs here"
  fi
  tar -C "$W" -czf "$OUT/faults-runs.tgz" term kill9 $( [ -d "$W/fulldisk" ] && echo fulldisk )
}
main 2>&1 | tee "$OUT/faults.txt"
