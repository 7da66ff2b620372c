#!/usr/bin/env bash
# Stops what testnet/ibc-up.sh started: the relayer and its Prometheus, then both chains (down.sh;
# --clean removes their data and the relayer's files too).
#
# Usage: testnet/ibc-down.sh [--clean] [--dir DIR]
# Environment: BASALT_IBC_DIR=DIR  run directory (default testnet/.run-ibc; --dir wins)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run_dir=${BASALT_IBC_DIR:-$script_dir/.run-ibc}
clean=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clean)
      clean=(--clean)
      shift
      ;;
    --dir)
      [ $# -ge 2 ] || { echo "ibc-down.sh: --dir needs a directory" >&2; exit 1; }
      run_dir=$2
      shift 2
      ;;
    *)
      echo "ibc-down.sh: unknown argument '$1' (usage: testnet/ibc-down.sh [--clean] [--dir DIR])" >&2
      exit 1
      ;;
  esac
done
[ -d "$run_dir" ] || { echo "ibc-down.sh: nothing in $run_dir"; exit 0; }
# Stops the process whose pid is in file $1 (TERM, then KILL after 5 s) and removes the file.
stop_pid_file() {
  local pid_file=$1 pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}
stop_pid_file "$run_dir/relay.pid"
stop_pid_file "$run_dir/prometheus.pid"
for chain in a b; do
  [ -d "$run_dir/$chain" ] && "$script_dir/down.sh" "${clean[@]}" --dir "$run_dir/$chain"
done
if [ ${#clean[@]} -gt 0 ]; then rm -rf "$run_dir"; fi
echo "ibc-down.sh: stopped"
