#!/usr/bin/env bash
# Runs COMMAND... on a one-node Slurm cluster started for it in DIR (munge
# and slurmctld/slurmd on free ports, everything under DIR), then stops the
# daemons it started. With Slurm or munge missing, or a daemon that does not
# come up, prints "slurm: skipped: REASON" and exits 0 without running the
# command. The command sees SLURM_CONF and can call srun.
#
#   slurm_cluster.sh DIR CPUS COMMAND...
set -u
dir=$1 cpus=$2
shift 2
mkdir -p "$dir/state" "$dir/spool"
dir=$(cd "$dir" && pwd)

skip() {
  echo "slurm: skipped: $*"
  exit 0
}
pids=()
stop() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  done
}
trap stop EXIT

for tool in munged slurmctld slurmd srun sinfo; do
  command -v "$tool" > /dev/null || PATH=$PATH:/usr/sbin command -v "$tool" > /dev/null ||
    skip "'$tool' is not installed (Debian: apt-get install slurm-wlm munge)"
done
export PATH=$PATH:/usr/sbin

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
host=$(hostname -s)

# munge with a key of its own.
head -c 1024 /dev/urandom > "$dir/munge.key"
chmod 400 "$dir/munge.key"
munged --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
  --seed-file="$dir/munge.seed" > "$dir/munged.out" 2>&1 ||
  skip "munged did not start: $(tail -n 2 "$dir/munged.log" "$dir/munged.out" 2>/dev/null | tr '\n' ' ')"
pids+=("$(cat "$dir/munged.pid")")

cat > "$dir/slurm.conf" <<CONF
ClusterName=galvatron
SlurmctldHost=$host
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$dir/slurm.conf

slurmctld -i > "$dir/slurmctld.out" 2>&1 ||
  skip "slurmctld did not start: $(tail -n 3 "$dir/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [ -s "$dir/slurmctld.pid" ] && break; sleep 0.1; done
[ -s "$dir/slurmctld.pid" ] && pids+=("$(cat "$dir/slurmctld.pid")")
slurmd -N "$host" > "$dir/slurmd.out" 2>&1 ||
  skip "slurmd did not start: $(tail -n 3 "$dir/slurmd.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [ -s "$dir/slurmd.pid" ] && break; sleep 0.1; done
[ -s "$dir/slurmd.pid" ] && pids+=("$(cat "$dir/slurmd.pid")")

# Wait for the node to be ready (at most 30 s).
ready=
for _ in $(seq 150); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1)
  case $state in idle*|mix*) ready=1; break ;; esac
  sleep 0.2
done
[ -n "$ready" ] ||
  skip "the node did not become idle (state '${state:-none}'): $(tail -n 3 "$dir/slurmd.log" "$dir/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
"$@"
