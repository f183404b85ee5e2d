#!/usr/bin/env bash
# Installs the Debian packages mk builds with, only those that are missing.
# Safe to run again: with everything present it installs nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang clang-format ccache
  libnuma-dev libhwloc-dev hwloc liburing-dev libboost-dev libfmt-dev
  libgtest-dev libcli11-dev nlohmann-json3-dev doxygen
  libdpdk-dev libck-dev libreaderwriterqueue-dev gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "mk setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
