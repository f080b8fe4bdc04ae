# Shared helpers for the GPU scripts (sourced).
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/llem-out}
RUNS=${RUNS:-/tmp/llem-runs}
mkdir -p "$OUT" "$RUNS"
LLEM=${LLEM:-bin/llem}
VERSION=$($LLEM --version | awk '{print $3}')

# record_measured DIR ARGS... : llem record with its own CPU time read from
# /proc (utime+stime of the llem process alone, children excluded) written
# to DIR.proc-cpu.
record_measured() {
  local dir=$1; shift
  "$LLEM" record --quiet --out "$dir" "$@" &
  local pid=$! tck last=""
  tck=$(getconf CLK_TCK)
  while kill -0 "$pid" 2>/dev/null; do
    last=$(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$last" ] && echo "$last" > "$dir.proc-ticks"
    sleep 0.5
  done
  wait "$pid"; local rc=$?
  echo "llem exit $rc; llem CPU from /proc: $(awk -v t="$tck" '{printf "%.3f s", $1/t}' "$dir.proc-ticks")" | tee "$dir.proc-cpu"
  return $rc
}

gpu_header() {
  nvidia-smi --query-gpu=name,driver_version,persistence_mode,power.limit,power.default_limit,ecc.mode.current,mig.mode.current,temperature.gpu,power.draw --format=csv
  echo "llem $VERSION; $(date -u +%FT%TZ)"
}
