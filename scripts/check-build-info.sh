#!/usr/bin/env bash
# Fast regression guard for reproducible builds (run by .ci/run; the full double build is
# scripts/reproducible-build.sh). Builds, or on a warm target dir reuses, the release binary with
# scripts/build-release.sh, then checks that
#   - `basalt version --long` / `--json` report this checkout: version, commit, dirty flag, the pinned rustc,
#     the host target, the release profile and the sha256 of Cargo.lock;
#   - the binary holds no local absolute path (checkout, HOME, CARGO_HOME, RUSTUP_HOME, target dir) and no
#     GNU build-id note.
# Usage: scripts/check-build-info.sh        (honours CARGO_TARGET_DIR, CARGO_HOME, RUSTUP_HOME)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"
echo "== build info (reproducible release build)"
start=$SECONDS

failures=0
fail() { echo "check-build-info: FAIL: $*" >&2; failures=$((failures + 1)); }

# cc reruns RocksDB's C++ build whenever SOURCE_DATE_EPOCH changes; build-release.sh would set it to the
# commit time, so pin it here to keep a warm target dir warm across commits. The value cannot reach the
# binary: build-release.sh compiles C/C++ with -Werror=date-time and rustc does not read it.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"

build_log="$(mktemp)"
trap 'rm -f "$build_log"' EXIT
if ! scripts/build-release.sh >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  echo "check-build-info: scripts/build-release.sh failed" >&2
  exit 1
fi
read -r bin_sha256 bin < <(tail -n 1 "$build_log")
echo "binary: $bin"
echo "sha256: $bin_sha256"

long="$("$bin" version --long)"
json="$("$bin" version --json)"
short="$("$bin" version)"
printf '  %s\n' "${long//$'\n'/$'\n'  }"
field() { sed -n "s/^$1: //p" <<<"$long"; }

# Expected values, computed independently of build.rs.
want_version="$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
want_channel="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
want_target="$(rustc -vV | sed -n 's/^host: //p')"
want_lock="$(sha256sum Cargo.lock | cut -d' ' -f1)"
want_commit=unknown
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  want_commit="$(git rev-parse HEAD)"
fi

expect() { # NAME ACTUAL EXPECTED
  if [ "$2" != "$3" ]; then fail "$1 is '$2', expected '$3'"; fi
}
expect "basalt version" "$short" "$want_version"
expect version "$(field version)" "$want_version"
expect git_commit "$(field git_commit)" "$want_commit"
case "$(field rustc)" in
  "rustc $want_channel "*) ;;
  *) fail "rustc is '$(field rustc)', expected rustc $want_channel (rust-toolchain.toml)" ;;
esac
expect target "$(field target)" "$want_target"
expect profile "$(field profile)" release
expect cargo_lock_sha256 "$(field cargo_lock_sha256)" "$want_lock"
if [ "$want_commit" != unknown ] && [ -z "$(git --no-optional-locks status --porcelain --untracked-files=no)" ]; then
  expect git_dirty "$(field git_dirty)" false
fi
for key in version git_commit rustc target profile cargo_lock_sha256; do
  case "$json" in
    *"\"$key\":\"$(field "$key")\""*) ;;
    *) fail "--json lacks \"$key\":\"$(field "$key")\": $json" ;;
  esac
done
case "$json" in *"\"git_dirty\":$(field git_dirty)"[,\}]*) ;; *) fail "--json git_dirty differs: $json" ;; esac

# No local absolute path may survive (build-release.sh remaps them all).
target_dir="$(cd "${CARGO_TARGET_DIR:-$repo/target}" && pwd -P)"
paths=("$repo" "$target_dir" "${CARGO_HOME:-$HOME/.cargo}" "${RUSTUP_HOME:-$HOME/.rustup}" /root/.cargo /root/.rustup)
if [ -n "${HOME:-}" ] && [ "$HOME" != / ]; then paths+=("$HOME/"); fi
patterns=()
for p in "${paths[@]}"; do patterns+=(-e "$p"); done
if leaks="$(strings -a -n 6 "$bin" | grep -F "${patterns[@]}" | sort -u | head -n 20)" && [ -n "$leaks" ]; then
  fail "the binary contains local paths:"
  while IFS= read -r line; do echo "    $line" >&2; done <<<"$leaks"
fi
if readelf -n "$bin" | grep -q 'Build ID'; then
  fail "the binary has a GNU build-id note (expected -Wl,--build-id=none)"
fi

if [ "$failures" -gt 0 ]; then
  echo "check-build-info: $failures check(s) failed" >&2
  exit 1
fi
echo "check-build-info: OK in $((SECONDS - start)) s"
