#!/usr/bin/env bash
# Proves the release build is reproducible: builds the `basalt` binary twice with scripts/build-release.sh
# from two clones of one commit that differ in everything that must not matter, and compares sha256.
#
# Usage: scripts/reproducible-build.sh [REV]        (default: HEAD; uncommitted changes are not built)
#   REPRO_TARGET_BASE  parent of everything the run creates (default: /var/cache/basalt if it exists, else
#                      $TMPDIR): the two fresh target dirs repro-a and repro-b-longer-path (deleted first,
#                      kept afterwards for inspection) and the work dir repro-work.XXXXXX (the two clones,
#                      their HOMEs, TMPDIRs, the second CARGO_HOME and the build logs)
#   REPRO_KEEP=1       keep the work dir even on success
#   REPRO_ENV          extra NAME=VALUE words passed to BOTH builds alike, and printed with the result (for
#                      experiments; a run with REPRO_ENV is not a run of the recipe)
#
# The two builds differ in: absolute source dir (and its length), time, HOME, TMPDIR, CARGO_HOME (the
# second one is seeded from the first's registry cache, so it needs no network), target dir, TZ, umask.
# Exit 0 when the sha256 match; otherwise 1, after naming the ELF sections that differ (diffoscope if
# installed, else per-section hashes).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
rev="$(git -C "$repo" rev-parse --verify "${1:-HEAD}^{commit}")"

die() { echo "reproducible-build: $*" >&2; exit 1; }
log() { echo "reproducible-build [$(date -u +%H:%M:%S)]: $*"; }

extra_env=()
read -r -a extra_env <<<"${REPRO_ENV:-}"
for kv in "${extra_env[@]}"; do
  [[ "$kv" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "REPRO_ENV: '$kv' is not NAME=VALUE"
done

# Captured before HOME changes: rustup finds its toolchains through RUSTUP_HOME, which defaults to ~.
cargo_home_a="$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)"
rustup_home="$(cd "${RUSTUP_HOME:-$HOME/.rustup}" && pwd -P)"

if [ -z "${REPRO_TARGET_BASE:-}" ]; then
  if [ -d /var/cache/basalt ] && [ -w /var/cache/basalt ]; then
    REPRO_TARGET_BASE=/var/cache/basalt
  else
    REPRO_TARGET_BASE="${TMPDIR:-/tmp}"
  fi
fi
mkdir -p "$REPRO_TARGET_BASE"
REPRO_TARGET_BASE="$(cd "$REPRO_TARGET_BASE" && pwd -P)"
work="$(mktemp -d "$REPRO_TARGET_BASE/repro-work.XXXXXX")"
target_a="$REPRO_TARGET_BASE/repro-a"
target_b="$REPRO_TARGET_BASE/repro-b-longer-path"

# Different path lengths on purpose: a leaked path would also shift every offset after it.
src_a="$work/a/basalt"
src_b="$work/bb/a-much-longer-directory-name/basalt-checkout"
cargo_home_b="$work/bb/cargo-home"

for d in "$src_a" "$src_b"; do
  mkdir -p "$(dirname "$d")"
  git clone --quiet --no-checkout "$repo" "$d"
  git -C "$d" checkout --quiet --detach "$rev"
done
mkdir -p "$work/a/home" "$work/a/tmp" "$work/bb/home-b" "$work/bb/tmp-b"

# Seed the second CARGO_HOME with the first one's registry index and downloaded .crate files (not the
# unpacked sources: cargo unpacks them again, under the new path).
mkdir -p "$cargo_home_b/registry"
for sub in index cache; do
  [ -d "$cargo_home_a/registry/$sub" ] && cp -a "$cargo_home_a/registry/$sub" "$cargo_home_b/registry/"
done

# Only what the build needs passes through: a stray RUSTFLAGS, CFLAGS or CC must not make builds agree
# or differ by accident. Proxy and certificate settings pass so the registries stay reachable.
passthrough=()
while IFS='=' read -r name _; do
  case "$name" in
    PATH | USER | LOGNAME | CARGO_BUILD_JOBS | CARGO_NET_OFFLINE | CARGO_HTTP_* | CARGO_REGISTRIES_* | \
      SSL_CERT_FILE | SSL_CERT_DIR | http_proxy | https_proxy | no_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY)
      passthrough+=("$name=${!name}") ;;
  esac
done < <(env)

# build NAME SRC HOME TMPDIR CARGO_HOME TARGET TZ UMASK
build() {
  local name="$1" src="$2" home="$3" tmp="$4" chome="$5" target="$6" tz="$7" mask="$8"
  rm -rf "$target"
  mkdir -p "$target"
  log "build $name: source $src, CARGO_HOME $chome, target $target, TZ $tz, umask $mask${extra_env[*]:+, extra env: ${extra_env[*]}}"
  local start=$SECONDS
  (
    umask "$mask"
    cd "$src"
    env -i "${passthrough[@]}" HOME="$home" TMPDIR="$tmp" CARGO_HOME="$chome" RUSTUP_HOME="$rustup_home" \
      CARGO_TARGET_DIR="$target" TZ="$tz" LANG=C.UTF-8 "${extra_env[@]}" \
      bash scripts/build-release.sh
  ) >"$work/build-$name.log" 2>&1 || { tail -n 40 "$work/build-$name.log" >&2; die "build $name failed (log: $work/build-$name.log)"; }
  log "build $name: done in $((SECONDS - start)) s"
}

host="$(cd "$src_a" && rustc -vV | sed -n 's/^host: //p')"
build a "$src_a" "$work/a/home" "$work/a/tmp" "$cargo_home_a" "$target_a" UTC 022
sleep 2 # distinct wall-clock seconds even if the second build were instantaneous
build b "$src_b" "$work/bb/home-b" "$work/bb/tmp-b" "$cargo_home_b" "$target_b" Asia/Kolkata 077

bin_a="$target_a/$host/release/basalt"
bin_b="$target_b/$host/release/basalt"
sum_a="$(sha256sum "$bin_a" | cut -d' ' -f1)"
sum_b="$(sha256sum "$bin_b" | cut -d' ' -f1)"
echo "commit $rev"
if [ "${#extra_env[@]}" -gt 0 ]; then echo "extra environment (REPRO_ENV, both builds): ${extra_env[*]}"; fi
echo "a: $sum_a  $bin_a"
echo "b: $sum_b  $bin_b"

# What the binaries link from C/C++: say so, so a run where RocksDB's C++ is absent cannot pass for one where
# it was compared.
echo "RocksDB linked: $(strings -a "$bin_a" | grep -c 'rocksdb') strings containing 'rocksdb' (a), $(strings -a "$bin_b" | grep -c 'rocksdb') (b)"

if [ "$sum_a" = "$sum_b" ]; then
  echo "reproducible-build: OK, identical binaries ($(stat -c %s "$bin_a") bytes)"
  [ "${REPRO_KEEP:-0}" = 1 ] || rm -rf "$work"
  exit 0
fi

echo "reproducible-build: MISMATCH; kept $work and both target dirs" >&2
if command -v diffoscope >/dev/null; then
  diffoscope --text - "$bin_a" "$bin_b" | head -n 300 || true
else
  # Per-section sizes and hashes; the sections listed are those whose contents differ.
  section_hashes() {
    local bin="$1" out="$work/section"
    readelf -SW "$bin" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p' | while read -r sec; do
      [ -n "$sec" ] || continue
      rm -f "$out"
      if objcopy -O binary --only-section="$sec" "$bin" "$out" 2>/dev/null && [ -f "$out" ]; then
        echo "$sec $(stat -c %s "$out") $(sha256sum <"$out" | cut -d' ' -f1)"
      else
        echo "$sec - -"
      fi
    done
  }
  section_hashes "$bin_a" >"$work/sections-a.txt"
  section_hashes "$bin_b" >"$work/sections-b.txt"
  echo "sections that differ (name size sha256; < a, > b):" >&2
  diff "$work/sections-a.txt" "$work/sections-b.txt" >&2 || true
  echo "strings that differ (first 40):" >&2
  diff <(strings -n 8 "$bin_a") <(strings -n 8 "$bin_b") | head -n 40 >&2 || true
fi
# Which C/C++ objects differ (RocksDB's C++ is compiled by build scripts into static archives under
# build/<crate>-<hash>/out/): members are compared by name and content, keyed by crate name without the hash.
archive_members() { # TARGET -> lines "<crate>/<archive>/<member> <sha256>"
  local t="$1/$host/release/build" a crate
  find "$t" -path '*/out/*' -name '*.a' 2>/dev/null | sort | while read -r a; do
    crate="${a#"$t"/}"
    crate="${crate%%/*}"
    crate="${crate%-*}"
    ar t "$a" | while read -r m; do
      echo "$crate/$(basename "$a")/$m $(ar p "$a" "$m" | sha256sum | cut -d' ' -f1)"
    done
  done | sort
}
archive_members "$target_a" >"$work/members-a.txt"
archive_members "$target_b" >"$work/members-b.txt"
echo "C/C++ archive members that differ (< a, > b; first 40 lines; full lists in $work/members-?.txt):" >&2
diff "$work/members-a.txt" "$work/members-b.txt" | head -n 40 >&2 || echo "  none" >&2
exit 1
