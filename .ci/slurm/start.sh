#!/usr/bin/env bash
# Starts a real two-node Slurm cluster on this one host, for llem's tests:
# munged, slurmctld and two slurmd (nodes n1 and n2, told apart by
# `slurmd -N`, each on its own port). Everything lives in STATE_DIR (the
# configuration, the munge key and socket, spool, logs and pid files), so
# nothing under /etc is touched and several clusters can coexist.
#
#   .ci/slurm/start.sh STATE_DIR        # then: export SLURM_CONF=STATE_DIR/slurm.conf
#   .ci/slurm/stop.sh STATE_DIR
#
# Needs root (slurmd starts job steps as their user) and Debian's munge and
# slurm-wlm packages. Each node offers 4 CPUs and 4 fake GPUs (GRES backed by
# plain files), so jobs can ask for --gpus-per-node and get SLURM_STEP_GPUS.
# Ports: SLURM_TEST_PORT (default 26817) for slurmctld, the next two for the
# slurmd. Exits non-zero, with the daemons' log tails, if the cluster does
# not come up within 60 s.
set -euo pipefail

state=${1:?usage: start.sh STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)
port=${SLURM_TEST_PORT:-26817}

for bin in munged slurmctld slurmd srun sinfo scontrol; do
  command -v "$bin" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
  command -v "$bin" >/dev/null 2>&1 || { echo "start.sh: $bin not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "start.sh: slurmd needs root" >&2; exit 2; }

mkdir -p "$state"/{spool/n1,spool/n2,ctld,log,run,dev}
chmod 0700 "$state"

# munge: a fresh key and a private socket, so a system munged (if any) is
# left alone.
if [ ! -s "$state/munge.key" ]; then
  dd if=/dev/urandom of="$state/munge.key" bs=1024 count=1 status=none
fi
chmod 0400 "$state/munge.key"
munged --force --key-file="$state/munge.key" --socket="$state/run/munge.sock" \
  --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
  --seed-file="$state/run/munged.seed"

# Fake GPU devices: GRES needs a character device per GPU to hand out
# indices; links to harmless devices every system has (mknod may be
# refused in a container).
i=0
for d in /dev/null /dev/zero /dev/full /dev/urandom; do
  ln -sfn "$d" "$state/dev/gpu$i"
  i=$((i + 1))
done

host=$(hostname -s)
cat > "$state/slurm.conf" <<CONF
ClusterName=llemtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/run/munge.sock
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd-%n.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
KillWait=5
MinJobAge=30
GresTypes=gpu
NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=$host Port=$((port + 1)) CPUs=4 RealMemory=1000 Gres=gpu:4 State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 NodeHostname=$host Port=$((port + 2)) CPUs=4 RealMemory=1000 Gres=gpu:4 State=UNKNOWN
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=UNLIMITED State=UP OverSubscribe=NO
CONF
cat > "$state/gres.conf" <<CONF
Name=gpu File=$state/dev/gpu[0-3]
CONF
echo "# an empty cgroup.conf: no cgroup plugin is used" > "$state/cgroup.conf"
: > "$state/plugstack.conf"

export SLURM_CONF=$state/slurm.conf
slurmctld -f "$SLURM_CONF"
for n in n1 n2; do
  slurmd -f "$SLURM_CONF" -N "$n"
done

# Wait until both nodes take jobs.
for _ in $(seq 1 120); do
  if [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2=="idle"' | wc -l)" = 2 ]; then
    echo "start.sh: cluster up (SLURM_CONF=$SLURM_CONF)"
    sinfo -N
    exit 0
  fi
  sleep 0.5
done
echo "start.sh: the cluster did not come up within 60 s" >&2
sinfo -N >&2 || true
tail -n 30 "$state"/log/*.log >&2 || true
exit 1
