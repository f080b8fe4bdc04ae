#!/usr/bin/env bash
# Stops the cluster that start.sh STATE_DIR started: the slurmd, slurmctld
# and munged whose pid files are in STATE_DIR, and nothing else.
set -uo pipefail
state=${1:?usage: stop.sh STATE_DIR}
stop() { # pidfile
  [ -s "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}
for f in "$state"/run/slurmd-*.pid; do stop "$f"; done
stop "$state/run/slurmctld.pid"
stop "$state/run/munged.pid"
exit 0
