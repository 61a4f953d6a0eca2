#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (lit and unit tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(bash "$root/scripts/build.sh")
cd "$build"
status=0
ctest --output-on-failure -j "$(nproc)" || status=$?
if [[ $status -ne 0 ]]; then
  # Parallel tests print a failure's output among the others' lines: end with
  # the last lines of each failed test's output, where a short log keeps them.
  echo "=== the end of each failed test's output ==="
  while read -r failed; do
    name=${failed#*:}
    echo "--- $name"
    awk -v name="$name" '
      $0 ~ ("^[0-9]+/[0-9]+ Testing: " name "$") { inside = 1; n = 0; next }
      inside && /^<end of output>$/ { inside = 0 }
      inside { lines[n++ % 60] = $0 }
      END { for (i = (n > 60 ? n - 60 : 0); i < n; i++) print lines[i % 60] }
    ' Testing/Temporary/LastTest.log
  done < Testing/Temporary/LastTestsFailed.log
fi
exit "$status"
