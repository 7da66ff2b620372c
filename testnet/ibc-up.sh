#!/usr/bin/env bash
# Starts two local Basalt chains with an IBC path between them and a relayer: chain basalt-a (p2p from
# port 26656) and chain basalt-b (from 36656), N validators each (default 2), with up.sh; then
# `basalt relay create-path` (clients, connection, ICS-20 channel), `basalt relay start` in the
# background, and prints a transfer command. Stop everything with testnet/ibc-down.sh.
#
# Usage: testnet/ibc-up.sh [N] [--dir DIR]
# Environment:
#   BASALT_BIN=path     use this binary instead of building the release one
#   BASALT_IBC_DIR=DIR  run directory (default testnet/.run-ibc; --dir wins): a/, b/, relay.toml, relay.log
#
# Running it again while everything runs changes nothing: the path is found, the relayer kept.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$script_dir")

die() {
  echo "ibc-up.sh: $*" >&2
  exit 1
}

nodes=2
run_dir=${BASALT_IBC_DIR:-$script_dir/.run-ibc}
while [ $# -gt 0 ]; do
  case "$1" in
    --dir)
      [ $# -ge 2 ] || die "--dir needs a directory"
      run_dir=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *[!0-9]* | '') die "unknown argument '$1' (usage: testnet/ibc-up.sh [N] [--dir DIR])" ;;
    *)
      nodes=$1
      shift
      ;;
  esac
done
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)

if [ -z "${BASALT_BIN:-}" ]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) or set BASALT_BIN"
  echo "ibc-up.sh: building the release binary (cargo build --release --locked --bin basalt)"
  (cd "$repo" && cargo build --release --locked --bin basalt)
  BASALT_BIN=${CARGO_TARGET_DIR:-$repo/target}/release/basalt
fi
export BASALT_BIN

BASALT_CHAIN_ID=basalt-a BASALT_STARTING_PORT=26656 BASALT_NO_PROMETHEUS=1 \
  "$script_dir/up.sh" "$nodes" --dir "$run_dir/a"
BASALT_CHAIN_ID=basalt-b BASALT_STARTING_PORT=36656 BASALT_NO_PROMETHEUS=1 \
  "$script_dir/up.sh" "$nodes" --dir "$run_dir/b"

config=$run_dir/relay.toml
cat >"$config" <<TOML
# basalt relay's config (docs/IBC.md): the relayer signs with each chain's first test account.
[a]
rpc = "http://127.0.0.1:26657"
key_file = "a/accounts.json"
[b]
rpc = "http://127.0.0.1:36657"
key_file = "b/accounts.json"
TOML

echo "ibc-up.sh: creating the IBC path (basalt relay create-path --config $config)"
path=$("$BASALT_BIN" relay create-path --config "$config") || die "create-path failed"
echo "ibc-up.sh: path $path"

pid_file=$run_dir/relay.pid
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "ibc-up.sh: the relayer is already running (pid $(cat "$pid_file"))"
else
  nohup "$BASALT_BIN" relay start --config "$config" >>"$run_dir/relay.log" 2>&1 &
  echo $! >"$pid_file"
  echo "ibc-up.sh: relayer started (pid $!, log $run_dir/relay.log)"
fi

receiver=$(sed -n 's/.*"address": *"\([0-9A-Fa-f]*\)".*/\1/p' "$run_dir/b/accounts.json" | sed -n 2p)
echo
echo "Send 100 basalt from chain basalt-a to an account on basalt-b:"
echo "  $BASALT_BIN tx ibc-transfer --node http://127.0.0.1:26657 --key-file $run_dir/a/accounts.json \\"
echo "    --key-index 1 --channel channel-0 --receiver ${receiver:-<address on basalt-b>} --amount 100"
echo "Its voucher on basalt-b (response.value: base64 of the big-endian u128 amount):"
echo "  curl -s 'http://127.0.0.1:36657/abci_query?path=%22/store/transfer/key%22&data=0x$(printf 'balances/%s/transfer/channel-0/basalt' "$(echo "${receiver:-}" | tr 'A-F' 'a-f')" | od -An -tx1 | tr -d ' \n')'"
echo "Stop: $script_dir/ibc-down.sh$([ "$run_dir" = "$script_dir/.run-ibc" ] || echo " --dir $run_dir")"
