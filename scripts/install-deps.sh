#!/usr/bin/env bash
# Installs the system packages a fresh Debian/Ubuntu machine lacks for building and testing Basalt.
# RocksDB's Rust bindings need libclang (bindgen) and a C++ compiler.
set -euo pipefail
missing=()
for pkg in libclang-dev g++ make; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
