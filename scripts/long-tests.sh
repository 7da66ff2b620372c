#!/usr/bin/env bash
# Tests whose network must grow a long chain first: minutes with the release binary, far longer with the
# debug build `cargo test` makes, so they are `#[ignore]`d there and run here instead. .ci/run calls this
# after scripts/check-build-info.sh, with the release binary that check built (or reused).
#
# Usage: scripts/long-tests.sh <release basalt binary>
#   Today: CosmJS's txSearchAll over a chain of more than 10,000 blocks (tests/tests/cosmjs.rs, issue 15).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: scripts/long-tests.sh <release basalt binary>}"
if [ ! -x "$bin" ]; then
  echo "long-tests: $bin is not an executable" >&2
  exit 1
fi
echo "== long tests (release binary $bin)"
BASALT_BIN="$bin" cargo test --locked -p basalt-tests --test cosmjs -- --ignored --nocapture
