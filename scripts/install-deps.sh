#!/usr/bin/env bash
# Installs the system packages a fresh Debian/Ubuntu machine lacks for building and testing Basalt.
# RocksDB's Rust bindings need libclang (bindgen) and a C++ compiler. git: node/build.rs embeds the commit and
# the reproducible-build scripts clone; binutils: readelf/objcopy/strings of scripts/check-build-info.sh and
# scripts/reproducible-build.sh; ca-certificates: cargo's downloads from crates.io over TLS.
set -euo pipefail
missing=()
# prometheus: its server and promtool are used by the metrics and dashboard tests.
for pkg in libclang-dev g++ make git binutils ca-certificates prometheus curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# Node.js and npm: tests/tests/cosmjs.rs runs CosmJS (tests/cosmjs, versions pinned by its
# package-lock.json) against a real node.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
(cd "$(dirname "$0")/../tests/cosmjs" && npm ci --no-audit --no-fund --loglevel=error)
