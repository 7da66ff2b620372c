#!/usr/bin/env bash
# Re-runs Basalt's key node figures and compares them with the recorded baseline as ratios (issue 17): run it
# before and after every performance change and quote its table. Not part of CI's pass/fail (timings depend
# on the machine and its load); the baseline names the machine, commit and load it was taken on, so compare
# on a machine like it, with nothing else running. Runs vary: on the 2-core machine the p99 at 3,000 tx/s
# ranged 0.4-1.2 s over runs of one binary and the most committed +-10%, so run it twice before concluding.
#
# Figures (each from a fresh 4-validator fast-local testnet, `testnet/bench.sh`):
#   empty_blocks_per_s   empty-block rate without load (node0, 10 s)
#   committed_tps        committed transfers/s at a fixed offered rate (REGRESS_RATE, 60 s)
#   p50_ms, p99_ms       latency from each transaction's intended send time at that rate
#   send_lag_p99_ms      of that, how late the load tool itself sent (client-side queueing)
#   max_committed_tps    committed transfers/s offered as fast as the nodes accept (30 s)
#   rss_mib_max          largest validator RSS after the fixed-rate run
#
# Usage: scripts/bench-regress.sh [--record]
#   --record             write the figures as the new baseline (after a change that is kept)
# Environment:
#   BASALT_BIN=path      the binary to measure (default: build the release one)
#   REGRESS_RATE=3000    offered rate of the fixed-rate run, tx/s
#   REGRESS_BASELINE=p   baseline file (default testnet/bench-baseline.json)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
baseline=${REGRESS_BASELINE:-$repo/testnet/bench-baseline.json}
rate=${REGRESS_RATE:-3000}
record=""
case "${1:-}" in
  "") ;;
  --record) record=1 ;;
  *)
    echo "usage: $0 [--record]" >&2
    exit 2
    ;;
esac
command -v jq >/dev/null || {
  echo "bench-regress.sh: jq is needed (apt-get install jq)" >&2
  exit 1
}

if [ -z "${BASALT_BIN:-}" ]; then
  echo "bench-regress.sh: building the release binary"
  (cd "$repo" && cargo build --release --locked --bin basalt)
  BASALT_BIN=${CARGO_TARGET_DIR:-$repo/target}/release/basalt
fi
export BASALT_BIN

work=$(mktemp -d "${TMPDIR:-/tmp}/basalt-regress.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One bench.sh run; prints the kept run directory (its load.json is the load tool's report).
run() {
  local out=$work/$1.md
  shift
  local log
  log=$(env "$@" BENCH_OUT="$out" BENCH_KEEP=1 "$repo/testnet/bench.sh" 2>&1) || {
    echo "$log" >&2
    echo "bench-regress.sh: bench.sh failed" >&2
    exit 1
  }
  sed -n 's/^bench.sh: run directory kept: //p' <<<"$log"
}

echo "bench-regress.sh: fixed rate $rate tx/s, 60 s"
fixed_dir=$(run fixed BENCH_RATE="$rate" BENCH_DURATION=60s)
echo "bench-regress.sh: as fast as accepted, 30 s"
max_dir=$(run max BENCH_DURATION=30s)

empty=$(sed -n 's/.*no load, node0 over 10 s: [0-9]* blocks in [0-9.]* s = \([0-9.]*\) blocks\/s.*/\1/p' "$work/fixed.md")
rss=$(sed -n 's/^- After the run: .*RSS \(.*\); [0-9]* blocks with txs.*/\1/p' "$work/fixed.md" |
  grep -o '[0-9]* MiB' | awk '{ if ($1 > m) m = $1 } END { print m + 0 }')
now=$(jq -n \
  --argjson empty "${empty:-0}" \
  --argjson rss "${rss:-0}" \
  --slurpfile fixed "$fixed_dir/load.json" \
  --slurpfile max "$max_dir/load.json" \
  '{empty_blocks_per_s: $empty,
    committed_tps: $fixed[0].committed_tps,
    p50_ms: $fixed[0].latency.p50_ms,
    p99_ms: $fixed[0].latency.p99_ms,
    send_lag_p99_ms: ($fixed[0].send_lag.p99_ms // null),
    max_committed_tps: $max[0].committed_tps,
    rss_mib_max: $rss}')
rm -rf "$fixed_dir" "$max_dir"

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
machine="nproc $(nproc), $(sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' /proc/cpuinfo)"

if [ -f "$baseline" ]; then
  echo
  echo "Baseline: $(jq -r '"commit \(.commit), \(.date), \(.machine), offered \(.rate) tx/s"' "$baseline")"
  echo "Now:      commit $commit, $(date -u +%Y-%m-%dT%H:%MZ), $machine, offered $rate tx/s"
  echo
  echo "| figure | baseline | now | now / baseline | better when |"
  echo "|---|---|---|---|---|"
  jq -r --argjson now "$now" '
    .figures as $b
    | [["empty_blocks_per_s", "higher"], ["committed_tps", "higher"], ["p50_ms", "lower"],
       ["p99_ms", "lower"], ["send_lag_p99_ms", "lower"], ["max_committed_tps", "higher"], ["rss_mib_max", "lower"]][]
    | . as [$k, $better]
    | "| \($k) | \($b[$k]) | \($now[$k]) | "
      + (if ($b[$k] // 0) > 0 then "\(($now[$k] / $b[$k] * 100 | round) / 100)" else "-" end)
      + " | \($better) |"' "$baseline"
else
  echo "bench-regress.sh: no baseline at $baseline (run with --record to write one)"
  jq . <<<"$now"
fi

if [ -n "$record" ]; then
  jq -n --argjson figures "$now" --arg commit "$commit" --arg machine "$machine" \
    --arg date "$(date -u +%Y-%m-%dT%H:%MZ)" --argjson rate "$rate" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{commit: $commit, date: $date, machine: $machine, load_average_after: $load, rate: $rate,
      figures: $figures}' >"$baseline"
  echo "bench-regress.sh: baseline written to $baseline"
fi
