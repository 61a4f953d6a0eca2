"""Feeds truncated and corrupted copies of an IR file to a tool.

Usage: mangle-and-parse.py TOOL FILE [ARGS...]

Every mangled copy must either parse (exit 0) or be rejected with an
`error:` diagnostic and exit code 1; a crash (signal, abort, other codes)
fails the test.
"""
import random
import subprocess
import sys
import tempfile

tool, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
data = open(path, "rb").read()
rng = random.Random(1234)

cases = []
for i in range(1, 81):  # truncations at evenly spaced points
    cases.append(("truncate", data[: len(data) * i // 81]))
for _ in range(60):  # single byte flips
    pos = rng.randrange(len(data))
    cases.append(("flip", data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1:]))
for _ in range(20):  # deleted spans
    pos = rng.randrange(len(data))
    cases.append(("delete", data[:pos] + data[pos + rng.randrange(1, 64):]))

rejected = 0
with tempfile.NamedTemporaryFile(suffix=".mlir") as f:
    for kind, text in cases:
        f.seek(0)
        f.truncate()
        f.write(text)
        f.flush()
        result = subprocess.run([tool, f.name, "-o", "/dev/null"] + extra,
                                capture_output=True, text=True, errors="replace")
        if result.returncode == 0:
            continue
        if result.returncode != 1 or "error:" not in result.stderr:
            print(f"FAIL: {kind} copy gave exit {result.returncode}:\n{result.stderr[-2000:]}")
            sys.exit(1)
        rejected += 1
print(f"{len(cases)} mangled copies: {rejected} rejected with a diagnostic, "
      f"{len(cases) - rejected} still valid, 0 crashes")
