#!/usr/bin/env bash
# The recorder's CPU per token event when clients write each event on its
# own (tokens(), a write an event) and when they write a decoding step's
# events together (step_tokens(), STEP events a write), at the same rates,
# without a GPU (--device sim). The recorder's CPU is meta.json's
# recorder.cpu_seconds; the same recording without events is subtracted.
#
#   LLEM=bin/llem bash bench/recorder/steps.sh [SECONDS] [RATES] [STEP]
#   (defaults: 20, "1000 10000", 32)
set -euo pipefail
LLEM=${LLEM:-bin/llem}
S=${1:-20}; RATES=${2:-1000 10000}; STEP=${3:-32}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
here=$(dirname "$0")
cpu() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["recorder"]["cpu_seconds"], m["events"]["accepted"])' "$1/meta.json"; }
rec() { # rec NAME CMD...: record CMD with the simulated GPU, print recorder CPU s and events accepted
  "$LLEM" record --device sim --quiet --out "$W/$1" -- "${@:2}" >/dev/null 2>&1
  cpu "$W/$1"
}
read -r base _ < <(rec idle sleep "$S")
echo "llem record --device sim, ${S} s, no events: recorder CPU ${base} s"
printf '%-8s %-6s %10s %10s %12s\n' rate step events "cpu s" "us/event"
for rate in $RATES; do
  for step in 1 "$STEP"; do
    read -r c n < <(rec "r$rate-$step" python3 "$here/event_load.py" "$rate" "$S" 8 "$step")
    python3 -c 'import sys; r,s,c,n,b=sys.argv[1:]; c,n,b=float(c),int(n),float(b); print("%-8s %-6s %10d %10.3f %12.2f" % (r, s, n, c, (c-b)/n*1e6 if n else float("nan")))' "$rate" "$step" "$c" "$n" "$base"
  done
done
