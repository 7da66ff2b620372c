#!/usr/bin/env bash
# The project's test command (README "Quick start"; .ci/run calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo test --workspace --locked "$@"
