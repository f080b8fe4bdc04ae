#!/usr/bin/env bash
# Checks on a real GPU of what landed on 2026-12-05 (issue 14), about 1.5
# minutes: llem record --metrics-addr through the NVML backend (scraped
# while recording, beside nvidia-smi), and examples/llama_infer.py with
# the packaged transformers streamer (clients/python/llem_transformers.py)
# under llem record, then llem analyze. From the repository root on the
# device machine with bin/ carried (make build). Results in $OUT.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-check-new}
rm -rf "$W"; mkdir -p "$W"

main() {
  gpu_header
  echo "== live metrics: llem record --metrics-addr 127.0.0.1:9400 -- sleep 15"
  "$LLEM" record --quiet --metrics-addr 127.0.0.1:9400 --out "$W/metrics" -- sleep 15 &
  pid=$!
  sleep 8
  python3 - <<'PY'
import urllib.request, subprocess
body = urllib.request.urlopen("http://127.0.0.1:9400/metrics", timeout=5).read().decode()
smi = subprocess.run(["nvidia-smi", "--query-gpu=power.draw,power.draw.instant,temperature.gpu,clocks.sm,total_energy_consumption",
                      "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
keep = ("DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_POWER_USAGE_INSTANT", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "llem_gpu_driver_power_watts", "process_cpu_seconds_total", "llem_segments_written_total")
for line in body.splitlines():
    if line.startswith(keep):
        print(line)
print("nvidia-smi at the same time (power.draw, power.draw.instant, temperature, sm clock, total energy mJ):", smi)
print("metric lines:", sum(1 for l in body.splitlines() if l and not l.startswith("#")))
PY
  wait $pid; echo "llem exit $?"
  "$LLEM" check "$W/metrics" | tail -2

  echo "== examples/llama_infer.py (packaged streamer) under llem record, 2 cycles"
  "$LLEM" record --quiet --idle-before 3s --idle-after 3s --cycles 2 --cooldown 2s --out "$W/llama" -- \
    python3 examples/llama_infer.py --batch 8 --warmup fast --measure-seconds 6 --p0-hold 3
  echo "record exit $?"
  "$LLEM" analyze -q "$W/llama" | head -24
  tar -C "$W" -czf "$OUT/check-new-runs.tgz" metrics llama
}
main 2>&1 | tee "$OUT/check-new.txt"
