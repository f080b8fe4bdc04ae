#!/usr/bin/env bash
# A hard load step on the real GPU: bf16 matmuls for ~10 s per cycle,
# 3 cycles with idle phases, then the counter-versus-instant-power check.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
gpu_header
load='import torch,time
a=torch.randn(8192,8192,device="cuda",dtype=torch.bfloat16)
end=time.time()+10
while time.time()<end:
    for _ in range(50): a@a
    torch.cuda.synchronize()'
record_measured "$RUNS/h100-matmul" --idle-before 3s --idle-after 3s --cycles 3 --cooldown 3s -- python3 -c "$load"
bin/checkrun "$RUNS/h100-matmul"
tar -C "$RUNS" -czf "$OUT/h100-matmul.tgz" h100-matmul
