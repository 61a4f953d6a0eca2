#!/usr/bin/env bash
# Installs the dependencies (when missing) and builds Galvatron into
# $GALVATRON_BUILD_DIR (default: build/). Prints the build directory.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GALVATRON_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh" >&2
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
fi
cmake --build "$build" -j "$(nproc)" >&2
echo "$build"
