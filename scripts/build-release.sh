#!/usr/bin/env bash
# Reproducible release build of the `basalt` binary (docs/REPRODUCIBLE_BUILDS.md explains every flag).
#
# Usage: scripts/build-release.sh [extra cargo build args]
#   CARGO_TARGET_DIR   where to build (default: <repo>/target); the binary lands in
#                      $CARGO_TARGET_DIR/<host triple>/release/basalt, its hash in basalt.sha256 next to it
#   SOURCE_DATE_EPOCH  kept if set, else the commit time of HEAD
#
# Anyone building the same commit with the toolchain of rust-toolchain.toml and the same C++ compiler gets
# a bit-for-bit identical binary, wherever the checkout, CARGO_HOME, RUSTUP_HOME and target dir live.
# The last line printed is `<sha256>  <path of the binary>`.
set -euo pipefail

src_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$src_dir"

die() { echo "build-release: $*" >&2; exit 1; }
# The absolute, symlink-free form of a directory (created if missing).
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

# --- Toolchain: exactly the one rust-toolchain.toml pins (rustup selects it in this directory).
want_channel="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
rustc_vv="$(rustc -vV)"
rustc_release="$(sed -n 's/^release: //p' <<<"$rustc_vv")"
host="$(sed -n 's/^host: //p' <<<"$rustc_vv")"
[ -n "$want_channel" ] || die "no channel in rust-toolchain.toml"
[ "$rustc_release" = "$want_channel" ] || die "rustc is $rustc_release, rust-toolchain.toml pins $want_channel"
sysroot="$(cd "$(rustc --print sysroot)" && pwd -P)"

# --- The absolute paths that must not end up in the binary.
cargo_home="$(abs_dir "${CARGO_HOME:-$HOME/.cargo}")"
rustup_home="$(abs_dir "${RUSTUP_HOME:-$HOME/.rustup}")"
target_dir="$(abs_dir "${CARGO_TARGET_DIR:-$src_dir/target}")"
export CARGO_TARGET_DIR="$target_dir"

# Rewrite rules, general first: rustc and GCC both let the last matching rule win, so the target dir
# (often inside the source dir) and the sysroot (inside RUSTUP_HOME) come after their parents.
maps=(
  "$src_dir=."
  "$cargo_home=/cargo"
  "$rustup_home=/rustup"
  "$sysroot=/rustup/toolchain"
  "$target_dir=/target"
)

# --- Rust flags. CARGO_ENCODED_RUSTFLAGS (0x1f-separated) overrides RUSTFLAGS and any build.rustflags
# in a .cargo/config.toml, survives spaces in paths, and cargo keeps --remap-path-prefix out of the
# -C metadata hash, so symbol names do not depend on where the build happens.
rustflags=()
for m in "${maps[@]}"; do rustflags+=("--remap-path-prefix=$m"); done
rustflags+=("-Clink-arg=-Wl,--build-id=none")
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${rustflags[*]}")"
export CARGO_ENCODED_RUSTFLAGS
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS

# --- C/C++ flags for the cc crate (RocksDB's C++ in librocksdb-sys, linked into `basalt`).
# -ffile-prefix-map rewrites __FILE__ (RocksDB's log macros), __builtin_FILE and debug-info paths; the
# -fdebug-prefix-map and -fmacro-prefix-map it implies since GCC 8 / clang 10 are spelled out as well, so
# an older or different compiler that knows only those still remaps. -Werror=date-time makes any use of
# __DATE__/__TIME__/__TIMESTAMP__ a hard error, so no date can reach the binary whatever SOURCE_DATE_EPOCH
# is. Nothing here adds -g: cc adds it only when cargo's DEBUG is true, and [profile.release] has
# debug = false. Archives: cc runs `ar cqD`/`ar sD` (deterministic: no mtimes, uids or modes) in the
# order of librocksdb-sys's fixed source list; ARFLAGS must stay unset (cc puts it before its own mode).
cflags="-Werror=date-time"
for m in "${maps[@]}"; do
  case "$m" in *[[:space:]]*) die "CFLAGS cannot carry a path with whitespace: ${m%=*}" ;; esac
  cflags+=" -ffile-prefix-map=$m -fdebug-prefix-map=$m -fmacro-prefix-map=$m"
done
export CFLAGS="$cflags" CXXFLAGS="$cflags"
unset "CFLAGS_${host//-/_}" "CXXFLAGS_${host//-/_}" "CFLAGS_$host" "CXXFLAGS_$host" TARGET_CFLAGS TARGET_CXXFLAGS \
  ARFLAGS "ARFLAGS_${host//-/_}" "ARFLAGS_$host" TARGET_ARFLAGS
# The C/C++ compiler and archiver are inputs like rustc: a CC/CXX/AR from the environment is refused
# rather than silently giving another binary (the published hashes use the system's cc/c++/ar).
for v in CC CXX AR "CC_${host//-/_}" "CXX_${host//-/_}" "AR_${host//-/_}" TARGET_CC TARGET_CXX TARGET_AR; do
  [ -z "${!v:-}" ] || die "$v is set (${!v}); the recipe uses the system's cc, c++ and ar: unset it"
done

# librocksdb-sys links a prebuilt library instead of compiling RocksDB's C++ when one of these is set, and
# bindgen takes extra clang arguments from the environment: either gives another binary.
for v in $(compgen -e | grep -E '^((ROCKSDB|SNAPPY|LZ4|ZSTD|Z|BZIP2)_(LIB_DIR|STATIC|COMPILE|INCLUDE_DIR)|ROCKSDB_CXX_STD|BINDGEN_EXTRA_CLANG_ARGS.*)$' || true); do
  die "$v is set (${!v}); the recipe compiles RocksDB's C++ itself with fixed options: unset it"
done

# Timestamps for any tool that honours it: the commit's time, not the wall clock.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
fi
export SOURCE_DATE_EPOCH
export CARGO_INCREMENTAL=0

echo "build-release: $(rustc -V), $(c++ --version | sed -n 1p), host $host"
echo "build-release: source $src_dir, target dir $target_dir, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"

# --target: RUSTFLAGS then apply to the binary's crates only, not to build scripts and proc-macros, so
# a change of the remapped paths does not rebuild (and rerun) every build script, RocksDB's included.
cargo build --release --locked -p basalt-node --bin basalt --target "$host" "$@"

bin="$target_dir/$host/release/basalt"
[ -x "$bin" ] || die "no binary at $bin"
(cd "$(dirname "$bin")" && sha256sum basalt >basalt.sha256)
echo "$(cut -d' ' -f1 "$(dirname "$bin")/basalt.sha256")  $bin"
