#!/usr/bin/env bash
# llem load end to end on a real GPU: a small Llama model (random weights, no
# download) behind bench/gpu/serve_openai.py, measured with
#   llem record --device nvml -- llem load ...
# once as a closed loop and once as an open loop, then llem analyze. Run from
# the repository root on the device machine with bin/ carried (make build);
# about 5 minutes. Results in $OUT: serve-load.txt (everything printed) and
# the two runs as serve-load-runs.tgz.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
PORT=${PORT:-8321}
URL=http://127.0.0.1:$PORT/v1

main() {
  gpu_header
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  PYTHONUNBUFFERED=1 python3 bench/gpu/serve_openai.py --port "$PORT" --max-batch 32 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null' EXIT
  # The server answers /v1/models once the model is built and warmed up.
  for _ in $(seq 300); do
    python3 -c "import urllib.request; urllib.request.urlopen('$URL/models', timeout=1)" 2>/dev/null && break
    kill -0 $SERVER 2>/dev/null || { echo "serve_openai exited"; exit 1; }
    sleep 1
  done

  # Closed loop: 32 clients, 30 s warm-up, 60 s measured, 256-word prompts,
  # 128 tokens out, between 10 s idle phases (the server loaded and waiting).
  "$LLEM" record --quiet --idle-before 10s --idle-after 10s --out "$RUNS/serve-closed" --label loop=closed -- \
    "$LLEM" load --url "$URL" --model tiny-llama --concurrency 32 --warmup 30s --duration 60s \
      --prompt-tokens 256 --max-tokens 128
  echo "record exit $?"
  # Open loop: Poisson arrivals at 8 requests/s, at most 64 in flight.
  "$LLEM" record --quiet --idle-before 10s --idle-after 10s --out "$RUNS/serve-open" --label loop=open -- \
    "$LLEM" load --url "$URL" --model tiny-llama --rate 8 --concurrency 64 --warmup 20s --duration 60s \
      --prompt-tokens 256 --max-tokens 128
  echo "record exit $?"

  for run in serve-closed serve-open; do
    "$LLEM" info "$RUNS/$run"
    "$LLEM" analyze "$RUNS/$run"
  done
  "$LLEM" analyze --json --quiet "$RUNS/serve-closed" "$RUNS/serve-open" > "$OUT/serve-load.json"
  tar -C "$RUNS" -czf "$OUT/serve-load-runs.tgz" serve-closed serve-open
}
main 2>&1 | tee "$OUT/serve-load.txt"
