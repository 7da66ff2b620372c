#!/usr/bin/env bash
# Stops what testnet/ibc-up.sh started: the relayer, then both chains (down.sh; --clean removes their
# data and the relayer's files too).
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
pid_file=$run_dir/relay.pid
if [ -f "$pid_file" ]; then
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
fi
for chain in a b; do
  [ -d "$run_dir/$chain" ] && "$script_dir/down.sh" "${clean[@]}" --dir "$run_dir/$chain"
done
if [ ${#clean[@]} -gt 0 ]; then rm -rf "$run_dir"; fi
echo "ibc-down.sh: stopped"
