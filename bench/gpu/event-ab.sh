#!/usr/bin/env bash
# Two llem builds on the event path (issue 11's 2 us an event), in one
# device call: recorder-cost.sh's part B (8 Python clients at 0, 1k, 10k
# and 50k token events/s, one recorder each, side by side) for the new
# build, the old one, and the new one again (ABA), so a drift of the
# machine shows as a spread between the two new rounds instead of a
# difference. Then part A (idle: llem, nvidia-smi -lms 20 and 100, a pynvml
# poller) for the new build. About (3 x (EVENTS_S+10) + 4 x IDLE_S + 30) s.
#
#   LLEM_OLD=.devcarry/llem-old LLEM=.devcarry/llem bash bench/gpu/event-ab.sh
set -uo pipefail
OLD=${LLEM_OLD:?set LLEM_OLD to the build to compare against}
NEW=${LLEM:-bin/llem}
OUT=${OUT:-/tmp/llem-out}; mkdir -p "$OUT"
R=${ROUNDS:-"new old new"}
i=0
for which in $R; do
  i=$((i + 1))
  bin=$NEW; [ "$which" = old ] && bin=$OLD
  echo "#### round $i: $which ($($bin --version))"
  OUT=$OUT/B$i-$which W=/tmp/llem-ab-$i LLEM=$bin PARTS=B bash bench/gpu/recorder-cost.sh
done
echo "#### idle: new"
OUT=$OUT/A-new W=/tmp/llem-ab-A LLEM=$NEW PARTS=A bash bench/gpu/recorder-cost.sh
