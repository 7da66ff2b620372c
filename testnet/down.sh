#!/usr/bin/env bash
# Stops exactly the processes testnet/up.sh started (the pids in <dir>/pids: the nodes and Prometheus):
# SIGTERM, a bounded wait, then SIGKILL for whatever is left. Node data and logs stay unless --clean, so
# up.sh can restart the same network. Running it when nothing runs is fine.
#
# Usage: testnet/down.sh [--clean] [--dir DIR]
# Environment:
#   BASALT_TESTNET_DIR=DIR   run directory (default testnet/.run; --dir wins)
#   BASALT_STOP_SECS=S       how long to wait after SIGTERM before SIGKILL (default 20)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
  echo "down.sh: $*" >&2
  exit 1
}

clean=0
run_dir=${BASALT_TESTNET_DIR:-$script_dir/.run}
while [ $# -gt 0 ]; do
  case "$1" in
    --clean)
      clean=1
      shift
      ;;
    --dir)
      [ $# -ge 2 ] || die "--dir needs a directory"
      run_dir=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      die "unknown argument '$1' (usage: testnet/down.sh [--clean] [--dir DIR])"
      ;;
  esac
done
stop_secs=${BASALT_STOP_SECS:-20}
if [ -d "$run_dir" ]; then run_dir=$(cd "$run_dir" && pwd); fi
pids_file=$run_dir/pids

# Whether process $1 runs (zombies count as gone: nothing may reap them in a container).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo X)
  [ "$state" != Z ] && [ "$state" != X ]
}

# Whether pid $1 is still the process up.sh started as $2 (a reused pid must not be killed): a node's command
# line names its home in the run directory, Prometheus' names its config there.
ours() {
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  case "$2" in
    prometheus) [[ "$cmdline" == *"$run_dir/prometheus/prometheus.yml"* ]] ;;
    *) [[ "$cmdline" == *" start --home $run_dir/$2 "* ]] ;;
  esac
}

targets=()
if [ -f "$pids_file" ]; then
  while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if ! alive "$pid"; then
      continue
    elif ours "$pid" "$name"; then
      targets+=("$name:$pid")
    else
      echo "down.sh: pid $pid ($name) now belongs to another program; leaving it alone" >&2
    fi
  done <"$pids_file"
fi

if [ "${#targets[@]}" -eq 0 ]; then
  echo "down.sh: nothing running from $run_dir"
else
  for t in "${targets[@]}"; do
    kill -TERM "${t#*:}" 2>/dev/null || true
  done
  echo "down.sh: sent SIGTERM to ${targets[*]}; waiting up to ${stop_secs}s"
  deadline=$((SECONDS + stop_secs))
  while :; do
    left=()
    for t in "${targets[@]}"; do
      if alive "${t#*:}"; then left+=("$t"); fi
    done
    [ "${#left[@]}" -gt 0 ] || break
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "down.sh: still running after ${stop_secs}s, sending SIGKILL: ${left[*]}" >&2
      for t in "${left[@]}"; do
        kill -KILL "${t#*:}" 2>/dev/null || true
      done
      break
    fi
    sleep 0.2
  done
  echo "down.sh: stopped"
fi
rm -f "$pids_file"

if [ "$clean" -eq 1 ]; then
  if [ -d "$run_dir" ]; then
    # Only a directory up.sh made: --dir pointing somewhere else by mistake must not lose anything.
    [ -f "$run_dir/testnet.env" ] || [ "$run_dir" = "$script_dir/.run" ] ||
      die "$run_dir has no testnet.env, so up.sh did not create it; not removing it"
    rm -rf "$run_dir"
    echo "down.sh: removed $run_dir"
  fi
elif [ -d "$run_dir" ]; then
  echo "down.sh: data and logs kept in $run_dir (testnet/up.sh restarts this network; --clean removes it)"
fi
