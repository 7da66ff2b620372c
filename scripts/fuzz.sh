#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for FUZZ_SECONDS seconds each (default 30) over its committed
# seed corpus (fuzz/corpus/<target>/), and fails on the first crash, leaving the input that caused it in
# fuzz/artifacts/<target>/ (replay: `cargo fuzz run -s none -O <target> <file>`).
#
# Stable toolchain, no sanitizer (`-s none`): the decoders are safe Rust, so what the fuzzer hunts is panics,
# failed assertions (each target asserts its decoder's contract), runaway memory (-rss_limit_mb) and hangs
# (-timeout). New inputs the fuzzer finds go to a scratch directory, so a run never changes the committed
# corpus; add an interesting one by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-30}"
# Its own target dir: instrumented builds share nothing with the test build.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/cache/basalt/fuzz-target}"
mkdir -p "$CARGO_TARGET_DIR"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# cargo fuzz has no --locked: make sure fuzz/Cargo.lock is complete and current first.
(cd fuzz && cargo fetch --locked)
cargo fuzz build -s none -O
for target in $(cargo fuzz list); do
  scratch="$(mktemp -d)"
  log="$(mktemp)"
  echo "== fuzz $target (${secs} s)"
  if ! cargo fuzz run -s none -O "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::peak_rss_mb)' "$log" || true
  rm -rf "$scratch" "$log"
done
