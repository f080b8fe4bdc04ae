#!/usr/bin/env bash
# The job path of llem record (issue 10) on a real GPU, about a minute:
# the device machines have no Slurm, and llem touches Slurm only through
# the environment srun gives each task (record/slurm/doc.go), so this sets
# that environment by hand for one step of two tasks on one node, as
# `srun -N1 --ntasks-per-node=2 --gpus-per-node=1` would: task 0 (the
# sampler, SLURM_LOCALID 0) samples the step's GPU through NVML, task 1
# (a relay) sends its events through the sampler. Both run a bf16 matmul
# load with phase marks. Then llem check and llem analyze of the job
# directory. From the repository root on the device machine with bin/
# carried (make build); results in $OUT. DEVICE=sim OUT=/tmp/x runs it
# without a GPU (and without torch).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
W=${W:-/tmp/llem-slurm-env}
rm -rf "$W"; mkdir -p "$W"

task() { # task RANK
  env SLURM_JOB_ID=4242 SLURM_STEP_ID=0 SLURM_JOB_NAME=llem-env-test SLURMD_NODENAME=gpunode1 \
      SLURM_NODEID=0 SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=2 SLURM_TASKS_PER_NODE=2 \
      SLURM_STEP_TASKS_PER_NODE=2 SLURM_GTIDS=0,1 SLURM_PROCID="$1" SLURM_LOCALID="$1" \
      SLURM_STEP_GPUS=0 SLURM_JOB_GPUS=0 \
      "$LLEM" record --device "${DEVICE:-nvml}" --quiet --idle-before 3s --idle-after 3s --cycles 2 --cooldown 3s --out "$W/job/%j" -- \
      python3 -c '
import os, socket, time, json
try:
    import torch
except ImportError:  # a dry run without a GPU (DEVICE=sim)
    torch = None
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["LLEM_EVENTS"])
send = lambda **e: s.sendall((json.dumps(dict(e, ts=time.time_ns())) + "\n").encode())
rank = os.environ["SLURM_PROCID"]
a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) if torch else None
send(kind="phase_start", name="measure")
end = time.time() + 8
n = 0
while time.time() < end:
    if torch:
        for _ in range(20): a @ a
        torch.cuda.synchronize()
    else:
        time.sleep(0.05)
    n += 1
    send(kind="mark", name=f"rank{rank}-step")
send(kind="phase_end", name="measure")
print("rank", rank, "steps", n)
'
  echo "task $1: llem exit $?"
}

main() {
  gpu_header
  task 0 & task 1 & wait
  echo "== job directory"; find "$W/job" -maxdepth 3 | sort | head -40
  echo "== llem check"; "$LLEM" check "$W/job/4242/gpunode1" 2>&1 | tail -12
  echo "== llem analyze"; "$LLEM" analyze "$W/job/4242" 2>&1 | head -60
  "$LLEM" analyze --json "$W/job/4242" > "$OUT/slurm-env-analyze.json" 2>&1
  tar -C "$W" -czf "$OUT/slurm-env-job.tgz" job
}
main 2>&1 | tee "$OUT/slurm-env.txt"
