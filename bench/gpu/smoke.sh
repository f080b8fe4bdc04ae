#!/usr/bin/env bash
# First contact with a real GPU: NVML readings through the backend, and a
# short recording of the example inference. Run from the repository root
# on the device machine, with bin/ carried (make gpu-bins).
set -uo pipefail
OUT=${OUT:-/tmp/llem-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
{
  nvidia-smi --query-gpu=name,driver_version,persistence_mode,power.limit,power.default_limit,ecc.mode.current,mig.mode.current,temperature.gpu,power.draw --format=csv
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  bin/nvml.test -test.run TestRealNVML -test.v 2>&1 | tail -40
} > "$OUT/smoke.txt" 2>&1
bin/llem record --idle-before 2s --idle-after 2s --out /tmp/smoke-run -- \
  python3 examples/llama_infer.py --batch 8 --warmup fast --measure-seconds 6 --p0-hold 2 >> "$OUT/smoke.txt" 2>&1
echo "record exit $?" >> "$OUT/smoke.txt"
bin/llem info /tmp/smoke-run >> "$OUT/smoke.txt" 2>&1
tar -C /tmp -czf "$OUT/smoke-run.tgz" smoke-run
cat "$OUT/smoke.txt"
