#!/usr/bin/env bash
# Fast regression guard for reproducible builds (run by .ci/run; the full double build is
# scripts/reproducible-build.sh). Builds, or on a warm cache reuses, the release binary of this checkout's
# HEAD with scripts/build-release.sh, then checks that
#   - `basalt version --long` / `--json` report this checkout: version, commit (`git rev-parse HEAD` here),
#     a clean tree, the pinned rustc, the host target, the release profile and the sha256 of Cargo.lock;
#   - the binary holds no local absolute path (this checkout, the build dirs, HOME, CARGO_HOME, RUSTUP_HOME)
#     and no GNU build-id note.
#
# Staying warm: build-release.sh remaps the source and target dirs in RUSTFLAGS and CFLAGS, so a build from
# a new path (CI clones to a new directory every run) would change the flags and rebuild every release crate,
# RocksDB's C++ included. So the committed tree of HEAD is synced into a FIXED source dir (a git checkout of
# its own, updated with fetch + checkout, which rewrites only the files that changed and keeps the mtimes of
# the others) and built with a FIXED target dir: the flags are the same on every run, and only what the new
# commit changed is rebuilt. Uncommitted changes in this checkout are not part of the check.
#
# Usage: scripts/check-build-info.sh
#   BASALT_RELEASE_SRC     the fixed source dir    (default: /var/cache/basalt/release-src if /var/cache/basalt
#   BASALT_RELEASE_TARGET  the fixed target dir     is writable, else ~/.cache/basalt/…; …/release-target)
#   CARGO_HOME, RUSTUP_HOME are honoured; CARGO_TARGET_DIR is not used (that is the debug/test build's dir).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"
echo "== build info (reproducible release build)"
start=$SECONDS

die() { echo "check-build-info: $*" >&2; exit 1; }
failures=0
fail() { echo "check-build-info: FAIL: $*" >&2; failures=$((failures + 1)); }
# The absolute, symlink-free form of a directory (created if missing).
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

want_commit="$(git rev-parse --verify 'HEAD^{commit}' 2>/dev/null)" || die "$repo is not a git checkout with a commit"
if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no)" ]; then
  echo "note: $repo has uncommitted changes; they are not built, the check builds commit $want_commit"
fi

# --- The fixed build location.
if [ -d /var/cache/basalt ] && [ -w /var/cache/basalt ]; then
  cache_base=/var/cache/basalt
else
  cache_base="${XDG_CACHE_HOME:-$HOME/.cache}/basalt"
fi
release_src="${BASALT_RELEASE_SRC:-$cache_base/release-src}"
release_target="${BASALT_RELEASE_TARGET:-$cache_base/release-target}"
mkdir -p "$release_src" "$release_target"
release_src="$(abs_dir "$release_src")"
release_target="$(abs_dir "$release_target")"
case "$release_src/" in "$repo/"*) die "BASALT_RELEASE_SRC ($release_src) must not be inside the checkout" ;; esac
case "$repo/" in "$release_src/"*) die "the checkout must not be inside BASALT_RELEASE_SRC ($release_src)" ;; esac

# One check at a time per fixed dir (two CI runs must not check out over each other's build).
if command -v flock >/dev/null; then
  exec 9>"$release_target/.check-build-info.lock"
  if ! flock -n 9; then
    echo "waiting for another scripts/check-build-info.sh using $release_target (lock: $release_target/.check-build-info.lock)"
    flock 9
  fi
fi

# --- Sync the committed tree of HEAD into the fixed source dir.
if ! git -C "$release_src" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  [ "$(git -C "$release_src" rev-parse --show-toplevel)" != "$release_src" ]; then
  # Never wipe a directory this script did not create: only an empty one or the default is (re)initialised.
  if [ -n "$(ls -A "$release_src")" ]; then
    [ -z "${BASALT_RELEASE_SRC:-}" ] || die "$release_src is neither empty nor a git checkout made by this script"
    find "$release_src" -mindepth 1 -delete
  fi
  git init --quiet "$release_src"
fi
# --update-shallow: CI may clone with --depth.
git -C "$release_src" fetch --quiet --no-tags --update-shallow "$repo" HEAD
[ "$(git -C "$release_src" rev-parse FETCH_HEAD)" = "$want_commit" ] || die "fetched $(git -C "$release_src" rev-parse FETCH_HEAD), expected $want_commit"
# Checking out the commit already there would still touch .git/HEAD and rerun node/build.rs: skip it.
if [ "$(git -C "$release_src" rev-parse -q --verify HEAD 2>/dev/null || true)" != "$want_commit" ] ||
  [ -n "$(git -C "$release_src" --no-optional-locks status --porcelain --untracked-files=all --ignored)" ]; then
  git -C "$release_src" checkout --quiet --force --detach "$want_commit"
  git -C "$release_src" clean --quiet -ffdx
fi
echo "release build of $want_commit in $release_src (target dir $release_target)"

# cc reruns RocksDB's C++ build whenever SOURCE_DATE_EPOCH changes (it is one of the variables the cc crate
# tracks); build-release.sh would set it to the commit time, so pin it here to keep the cache warm across
# commits. The value cannot reach the binary: build-release.sh compiles C/C++ with -Werror=date-time and
# rustc does not read it.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
# The commit must come from the synced checkout's git, not from a stray variable.
unset BASALT_GIT_COMMIT BASALT_GIT_DIRTY

build_log="$(mktemp)"
bin_strings="$(mktemp)"
trap 'rm -f "$build_log" "$bin_strings"' EXIT
if ! CARGO_TARGET_DIR="$release_target" "$release_src/scripts/build-release.sh" >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  die "scripts/build-release.sh failed"
fi
read -r bin_sha256 bin < <(tail -n 1 "$build_log")
echo "binary: $bin"
echo "sha256: $bin_sha256"
echo "build: $((SECONDS - start)) s"

long="$("$bin" version --long)"
json="$("$bin" version --json)"
short="$("$bin" version)"
printf '  %s\n' "${long//$'\n'/$'\n'  }"
field() { sed -n "s/^$1: //p" <<<"$long"; }

# Expected values, from this checkout's commit, computed independently of build.rs.
want_version="$(git show HEAD:Cargo.toml | sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p')"
want_channel="$(git show HEAD:rust-toolchain.toml | sed -n 's/^channel *= *"\(.*\)"/\1/p')"
want_target="$(rustc -vV | sed -n 's/^host: //p')"
want_lock="$(git show HEAD:Cargo.lock | sha256sum | cut -d' ' -f1)"

expect() { # NAME ACTUAL EXPECTED
  if [ "$2" != "$3" ]; then fail "$1 is '$2', expected '$3'"; fi
}
expect "basalt version" "$short" "$want_version"
expect version "$(field version)" "$want_version"
expect git_commit "$(field git_commit)" "$want_commit"
expect git_dirty "$(field git_dirty)" false
case "$(field rustc)" in
  "rustc $want_channel "*) ;;
  *) fail "rustc is '$(field rustc)', expected rustc $want_channel (rust-toolchain.toml)" ;;
esac
expect target "$(field target)" "$want_target"
expect profile "$(field profile)" release
expect cargo_lock_sha256 "$(field cargo_lock_sha256)" "$want_lock"
for key in version git_commit rustc target profile cargo_lock_sha256; do
  case "$json" in
    *"\"$key\":\"$(field "$key")\""*) ;;
    *) fail "--json lacks \"$key\":\"$(field "$key")\": $json" ;;
  esac
done
case "$json" in *"\"git_dirty\":$(field git_dirty)"[,\}]*) ;; *) fail "--json git_dirty differs: $json" ;; esac

# No local absolute path may survive (build-release.sh remaps them all).
paths=("$repo" "$release_src" "$release_target" "$cache_base" "${CARGO_HOME:-$HOME/.cargo}"
  "${RUSTUP_HOME:-$HOME/.rustup}" /root/.cargo /root/.rustup)
if [ -n "${HOME:-}" ] && [ "$HOME" != / ]; then paths+=("$HOME/"); fi
patterns=()
for p in "${paths[@]}"; do patterns+=(-e "$p"); done
# The strings go to a file first: under pipefail, `strings | grep -q` fails whenever grep stops reading at
# the first match and strings dies of SIGPIPE, which turned a found string into "not found".
strings -a -n 6 "$bin" >"$bin_strings"
leaks="$({ grep -F "${patterns[@]}" "$bin_strings" || true; } | sort -u | sed -n 1,20p)"
if [ -n "$leaks" ]; then
  fail "the binary contains local paths:"
  while IFS= read -r line; do echo "    $line" >&2; done <<<"$leaks"
fi
if readelf -n "$bin" | grep -c 'Build ID' >/dev/null; then
  fail "the binary has a GNU build-id note (expected -Wl,--build-id=none)"
fi
# RocksDB's C++ must be in the binary, or the path checks above said nothing about it: a string literal of
# RocksDB's options parser (C++), not of the Rust wrapper.
if ! grep -qF '# This is a RocksDB option file.' "$bin_strings"; then
  fail "the binary does not contain RocksDB's C++ (no '# This is a RocksDB option file.' string)"
fi
echo "toolchain (.comment): $(readelf -p .comment "$bin" | sed -n 's/^ *\[ *[0-9a-f]*\] *//p' | sort -u | paste -sd';' | sed 's/;/; /g')"

if [ "$failures" -gt 0 ]; then
  echo "check-build-info: $failures check(s) failed" >&2
  exit 1
fi
echo "check-build-info: OK in $((SECONDS - start)) s"
