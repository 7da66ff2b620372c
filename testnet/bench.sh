#!/usr/bin/env bash
# Throughput benchmark: starts a fresh 4-validator fast-local testnet (testnet/up.sh in a temporary directory),
# measures the empty-block interval without load, runs `basalt load` against all four nodes, appends a dated
# section to BENCHMARKS.md (machine facts, the empty-block interval and the load tool's JSON report) and stops
# the network (always, also on failure or Ctrl-C).
#
# Usage: testnet/bench.sh
# Environment:
#   BASALT_BIN=path          use this binary instead of building the release one
#   BENCH_DURATION=30s       how long the load runs
#   BENCH_RATE=N             target tx/s (default: as fast as the nodes accept, --max)
#   BENCH_TRANSPORT=http     http or ws
#   BENCH_CONNECTIONS=8      concurrent connections of the load tool
#   BENCH_ACCOUNTS=1000      funded accounts used as senders
#   BENCH_LOAD_ARGS="..."    extra arguments for `basalt load`
#   BENCH_STARTING_PORT=P    p2p port of node0 (default 16656, below Linux's ephemeral range 32768-60999, so a
#                            client socket of an earlier run cannot hold one; node i: +100i, RPC +1, metrics +4)
#   BENCH_OUT=path           file to append to (default BENCHMARKS.md at the repository root)
#   BENCH_NOTE="..."         a sentence recorded with the result (e.g. what else ran on the machine)
#   BENCH_KEEP=1             keep the run directory (logs, node data) instead of deleting it
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$script_dir")
die() {
  echo "bench.sh: $*" >&2
  exit 1
}

duration=${BENCH_DURATION:-30s}
transport=${BENCH_TRANSPORT:-http}
connections=${BENCH_CONNECTIONS:-8}
accounts=${BENCH_ACCOUNTS:-1000}
starting_port=${BENCH_STARTING_PORT:-16656}
out=${BENCH_OUT:-$repo/BENCHMARKS.md}
nodes=4

# --- the binary ----------------------------------------------------------------------------------------------
if [ -n "${BASALT_BIN:-}" ]; then
  bin=$BASALT_BIN
else
  command -v cargo >/dev/null || die "cargo not found: install Rust or set BASALT_BIN"
  echo "bench.sh: building the release binary"
  (cd "$repo" && cargo build --release --locked --bin basalt)
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/basalt
fi
[ -x "$bin" ] || die "$bin is not an executable file"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# --- a fresh network, stopped on every exit ------------------------------------------------------------------
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/basalt-bench.XXXXXX")
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  "$script_dir/down.sh" --dir "$run_dir" >/dev/null 2>&1 || true
  if [ -n "${BENCH_KEEP:-}" ]; then
    echo "bench.sh: run directory kept: $run_dir"
  else
    rm -rf "$run_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BASALT_BIN=$bin BASALT_NO_PROMETHEUS=1 BASALT_STARTING_PORT=$starting_port \
  "$script_dir/up.sh" "$nodes" --dir "$run_dir" >"$run_dir/up.out" 2>&1 ||
  {
    cat "$run_dir/up.out" >&2
    die "the testnet did not start"
  }
rpc() { echo "http://127.0.0.1:$((starting_port + 100 * $1 + 1))"; }
node_list=$(for ((i = 0; i < nodes; i++)); do rpc "$i"; done | paste -sd, -)

height() {
  curl -fsS --max-time 2 "$(rpc 0)/status" | sed -n 's/.*"latest_block_height":"\([0-9]*\)".*/\1/p'
}

# --- empty blocks: heights over 10 s without load -------------------------------------------------------------
h0=$(height)
t0=$(date +%s.%N)
sleep 10
h1=$(height)
t1=$(date +%s.%N)
empty_line=$(awk -v a="$h0" -v b="$h1" -v s="$t0" -v e="$t1" 'BEGIN {
  n = b - a; secs = e - s;
  if (n > 0) printf "%d blocks in %.1f s = %.1f blocks/s, %.0f ms per block (heights %d..%d)", n, secs, n / secs, 1000 * secs / n, a, b;
  else printf "no block in %.1f s (height %d)", secs, a }')
echo "bench.sh: empty blocks: $empty_line"

# --- load ----------------------------------------------------------------------------------------------------
if [ -n "${BENCH_RATE:-}" ]; then
  rate_args=(--rate "$BENCH_RATE")
  rate_text="rate $BENCH_RATE tx/s"
else
  rate_args=(--max)
  rate_text="as fast as accepted"
fi
load_args=(load --accounts "$run_dir/accounts.json" --max-accounts "$accounts" --node "$node_list"
  "${rate_args[@]}" --duration "$duration" --transport "$transport" --connections "$connections" --output json)
# shellcheck disable=SC2206 # word splitting of the extra arguments is intended
[ -z "${BENCH_LOAD_ARGS:-}" ] || load_args+=($BENCH_LOAD_ARGS)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench.sh: basalt ${load_args[*]}"
set +e
"$bin" "${load_args[@]}" >"$run_dir/load.json" 2>"$run_dir/load.err"
load_status=$?
set -e
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
result=$(cat "$run_dir/load.json")
[ -n "$result" ] || {
  cat "$run_dir/load.err" >&2
  die "basalt load printed no report (exit $load_status)"
}

# Node facts after the run: height, RSS, and the slowest block commits in node0's log.
node_facts=""
while read -r name pid; do
  rss=$(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo "exited")
  node_facts+="$name $rss; "
done <"$run_dir/pids"
final_height=$(height || echo "?")
took=$(grep -o 'txs=[0-9]* round=[0-9]* .*took_ms=[0-9]*' "$run_dir/logs/node0.log" |
  sed 's/txs=\([0-9]*\) round=\([0-9]*\) .*took_ms=\([0-9]*\)/\1 \2 \3/' |
  awk '$1 > 0 { n++; t += $3; if ($3 > m) m = $3; if ($2 > r) r = $2 } END {
    if (n) printf "%d blocks with txs on node0, commit took_ms mean %.0f max %d, highest round %d", n, t / n, m, r;
    else printf "no block with txs on node0" }')

# --- record --------------------------------------------------------------------------------------------------
cpu=$(sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  dirty=" (working tree has uncommitted changes)"
fi
build=$("$bin" version --json 2>/dev/null || echo '{}')
profile=$(sed -n 's/.*"profile":"\([a-z]*\)".*/\1/p' <<<"$build")
summary=""
if command -v jq >/dev/null; then
  summary=$(jq -r '"committed \(.committed) txs = **\(.committed_tps) tx/s** over \(.window_s) s (within the duration \(.committed_in_duration_tps) tx/s); accepted \(.accepted) of \(.submitted) submitted, rejected \(.rejected_total) \(.rejected), re-sent while still in the node cache \(.resent_in_cache); latency from the intended send time " + (if .latency then "p50 \(.latency.p50_ms) ms, p95 \(.latency.p95_ms) ms, p99 \(.latency.p99_ms) ms, p99.9 \(.latency.p999_ms) ms, max \(.latency.max_ms) ms" else "no samples" end) + (if .send_lag then " (of which the client sent p50 \(.send_lag.p50_ms) ms, p99 \(.send_lag.p99_ms) ms after the slot)" else "" end) + "; \(.blocks) blocks, mean \(.mean_txs_per_block) txs/block; " + (if .offered then "offered \(.offered), not sent \(.not_sent); " else "" end) + "sent \(.sent) = committed \(.committed) + pending \(.pending) + lost \(.lost)" + (if .watch_fallback then "; block subscription ended (\(.watch_fallback)), blocks read by height since" else "" end) + (if .watch_error then "; commit tracking failed: \(.watch_error)" else "" end)' <<<"$result")
fi
{
  echo
  echo "## load: $(date -u +%Y-%m-%dT%H:%MZ), ${profile:-unknown} binary, $transport, $rate_text, $duration"
  echo
  echo "Recorded by \`testnet/bench.sh\`: 4 validators (fast-local profile) and the load tool on one machine."
  echo
  echo "- Machine: \`nproc\` = $(nproc), CPU \"$cpu\", $mem RAM; load average $load_before before the load, $load_after after"
  echo "  (\`uptime\`: $(uptime | sed 's/^ *//'))."
  echo "- Build: commit $commit$dirty, $(rustc --version 2>/dev/null || echo 'rustc unknown'); binary: \`$build\`."
  echo "- Empty-block interval, no load, node0 over 10 s: $empty_line."
  [ -z "$summary" ] || echo "- Result: $summary."
  echo "- After the run: node0 at height $final_height; RSS $node_facts$took."
  [ "$load_status" -eq 0 ] || echo "- \`basalt load\` exited with status $load_status: $(head -c 300 "$run_dir/load.err")"
  [ -z "${BENCH_NOTE:-}" ] || echo "- Note: $BENCH_NOTE"
  echo
  echo '```json'
  echo "$result"
  echo '```'
} >>"$out"
echo "bench.sh: appended to $out"
[ -z "$summary" ] || echo "bench.sh: $summary"
exit "$load_status"
