#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (lit and unit tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(bash "$root/scripts/build.sh")
cd "$build"
ctest --output-on-failure -j "$(nproc)"
