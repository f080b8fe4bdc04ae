#!/usr/bin/env bash
# The recorder's own CPU at default settings: 60 s with no client events,
# then 30 s with 1,000 token events/s from the Python client.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
gpu_header
show() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['recorder']; print('meta.json: cpu_seconds %.3f over %.1f s = %.2f%% of one core; loops %s' % (r['cpu_seconds'], r['wall_seconds'], r['cpu_percent_of_one_core'], json.dumps(r['loops'])))" "$1/meta.json"; }
record_measured "$RUNS/cpu-idle" -- sleep 60; show "$RUNS/cpu-idle"
record_measured "$RUNS/cpu-events" -- python3 bench/recorder/event_flood.py 1000 30; show "$RUNS/cpu-events"
