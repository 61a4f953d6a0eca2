#!/usr/bin/env bash
# Installs the dependencies (when missing) and builds Galvatron into
# $GALVATRON_BUILD_DIR (default: build/): every target, or only the TARGETs
# given (scripts/demo.sh builds the four tools it runs). Prints the build
# directory. The compiler's output goes to $GALVATRON_BUILD_LOG (default:
# BUILD/build.log) and is printed only when the build fails.
#
#   scripts/build.sh [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GALVATRON_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh" >&2
mkdir -p "$build"
log=${GALVATRON_BUILD_LOG:-$build/build.log}
: > "$log"
targets=()
for target in "$@"; do targets+=(--target "$target"); done
echo "build: building ${*:-every target} in $build (log: $log)" >&2
if ! { [ -f "$build/build.ninja" ] ||
       cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release; } \
       >> "$log" 2>&1 ||
   ! cmake --build "$build" -j "$(nproc)" "${targets[@]}" >> "$log" 2>&1; then
  cat "$log" >&2
  echo "build: failed; the output above is also in $log" >&2
  exit 1
fi
echo "$build"
