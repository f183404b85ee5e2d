#!/usr/bin/env bash
# Uses mk the three ways its users do, from the release build (build/release, which
# `scripts/test.sh release` makes; nothing of mk is compiled again):
#   1. `cmake --install` into a scratch prefix;
#   2. examples/ built as a project of its own with find_package(mk) against it, its tests run
#      with ctest, and none of mk's own warning or sanitizer flags on its compile lines;
#   3. examples/ping_pong.cc compiled and linked with g++ and `pkg-config mk`, and run;
#   4. the Debian packages (cpack -G DEB) installed with apt-get, examples/ built against them
#      in /usr and run, mk-skb loading a topology file through the installed hwloc probe, and
#      the packages removed again.
# Installing the packages needs root (or sudo). Fails if they are installed already.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/release
jobs=$(nproc)
((jobs <= 2)) || jobs=2

if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "check_install: no release build in $build: run scripts/test.sh release first" >&2
  exit 2
fi
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
packages=(libmk-dev mk-tools)
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "check_install: $p is installed already; remove it first (apt-get remove $p)" >&2
    exit 2
  fi
done

scratch=$(mktemp -d)
probe=$build/src/skb/mk-hwloc-probe
installed=0
cleanup() {
  [[ -e $scratch/mk-hwloc-probe ]] && mv "$scratch/mk-hwloc-probe" "$probe"
  if ((installed)); then
    "${sudo_cmd[@]}" apt-get remove -y -qq "${packages[@]}" >/dev/null
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

start=$SECONDS
say() { echo "check_install: $* (at $((SECONDS - start)) s)"; }

# Up to date after scripts/test.sh: this only checks that it is.
cmake --build "$build" -j "$jobs" >/dev/null

# A project of its own made of examples/, built against mk found under $1 (empty: the system).
build_examples() {
  local dir=$1 prefix=$2
  cmake -S examples -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    ${prefix:+-DCMAKE_PREFIX_PATH="$prefix"} >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" | tail -n 3
  # mk's warnings and sanitizers stay on mk's own targets (the top CMakeLists.txt).
  if grep -E -e '-W(all|extra|pedantic|no-interference-size)|-fsanitize|MK_SANITIZED' \
    "$dir/compile_commands.json"; then
    echo "check_install: mk's build flags reached a program using mk (above)" >&2
    exit 1
  fi
}

say "1. cmake --install into $scratch/prefix"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null

say "2. examples/ with find_package(mk)"
build_examples "$scratch/examples" "$scratch/prefix"

say "3. examples/ping_pong.cc with pkg-config"
pc_dir=$(dirname "$(find "$scratch/prefix" -name mk.pc)")
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
g++ -O2 -o "$scratch/ping_pong" examples/ping_pong.cc \
  $(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs mk)
"$scratch/ping_pong" 1000

say "4. the Debian packages"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/packages" >/dev/null
debs=("$scratch"/packages/*.deb)
echo "check_install: built ${debs[*]##*/}"
installed=1
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${debs[@]}" >/dev/null
build_examples "$scratch/examples-system" ""
"$scratch/examples-system/ping_pong" 1000
# The installed libraries run the installed probe: hide the build tree's while mk-skb loads a
# topology file (cleanup puts it back).
mv "$probe" "$scratch/mk-hwloc-probe"
shown=$(env -u MK_HWLOC_PROBE /usr/bin/mk-skb --topology \
  tests/data/topologies/16amd64-4distances.xml show)
head -n 2 <<<"$shown"
mv "$scratch/mk-hwloc-probe" "$probe"
"${sudo_cmd[@]}" apt-get remove -y -qq "${packages[@]}" >/dev/null
installed=0

say "passed"
