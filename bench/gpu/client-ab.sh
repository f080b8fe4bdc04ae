#!/usr/bin/env bash
# Does the Python client's one-write-a-step (step_tokens) give back the
# 0.6% that llem record took from examples/llama_infer.py (issue 11 part D)?
# overhead_alt.py alternates without/with a recorder inside one process; this
# runs it four times, ABBA: the client before step_tokens (OLD, a directory
# holding cab1cf6's clients/python), then this checkout's twice, then OLD
# again, so a drift of the card over the call weighs on both alike. Each
# process prints its own with/without means; compare the ratios.
#
#   OLD=.devcarry/oldclients LLEM=.devcarry/llem bash bench/gpu/client-ab.sh
#
# Then, if less than BUDGET_S (420) seconds have gone, startup.sh S1 (the
# steady idle CPU split, STEADY_S=25) in what is left.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
OLD=${OLD:?OLD names a directory with the older llem_events.py and llem_transformers.py}
N=${N:-5}; BUDGET_S=${BUDGET_S:-420}
args=(--batch 32 --new-tokens 64 --measure-batches 3)
start=$SECONDS

main() {
  gpu_header
  for which in old new new old; do
    echo "== client $which"
    if [ "$which" = old ]; then
      PYTHONPATH="$OLD" python3 -c 'import llem_events as e; print("client", e.__file__, "step_tokens" in dir(e))'
      PYTHONPATH="$OLD" python3 bench/gpu/overhead_alt.py "$LLEM" "$N" "${args[@]}"
    else
      (cd clients/python && python3 -c 'import llem_events as e; print("client", e.__file__, "step_tokens" in dir(e))')
      python3 bench/gpu/overhead_alt.py "$LLEM" "$N" "${args[@]}"
    fi 2>&1 | grep -v '^llem: warning'
  done
  echo "== client A/B took $((SECONDS - start)) s"
}
main > "$OUT/client-ab.txt" 2>&1
pkill -f "llem record" 2>/dev/null
cat "$OUT/client-ab.txt"
if (( SECONDS - start < BUDGET_S )); then
  PARTS=S1 STEADY_S=${STEADY_S:-25} bash bench/gpu/startup.sh > /dev/null 2>&1
  pkill -f "llem record" 2>/dev/null
  cat "$OUT/startup.txt"
fi
