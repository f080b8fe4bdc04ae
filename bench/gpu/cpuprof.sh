#!/usr/bin/env bash
# Where the recorder's CPU goes under load: 60 s of bf16 matmuls recorded
# at default settings with a Go CPU profile, the profile's top entries, and
# the recorder's own account from meta.json.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
gpu_header
load='import torch,time
a=torch.randn(8192,8192,device="cuda",dtype=torch.bfloat16)
end=time.time()+60
while time.time()<end:
    for _ in range(50): a@a
    torch.cuda.synchronize()'
record_measured "$RUNS/cpuprof" --cpuprofile "$OUT/recorder-load.prof" -- python3 -c "$load"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['recorder']; print('meta.json: cpu_seconds %.3f over %.1f s = %.2f%% of one core; loops %s' % (r['cpu_seconds'], r['wall_seconds'], r['cpu_percent_of_one_core'], json.dumps(r['loops'])))" "$RUNS/cpuprof/meta.json"
go_tool=$(command -v go || true)
[ -n "$go_tool" ] && go tool pprof -top -nodecount=40 "$LLEM" "$OUT/recorder-load.prof"
cp "$LLEM" "$OUT/llem.bin"
