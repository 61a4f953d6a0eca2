#!/usr/bin/python3
"""Training-step time in bf16 (and fp16) against fp32 on the CPU backend.

  /usr/bin/python3 benchmarks/mixed_precision_step.py [--build build]
      [--model gpt2-small] [--batch 1] [--seq-len 128] [--steps 4]
      [--threads 1] [--precisions bf16,fp16] [--profile]

Compiles the model's training step (AdamW, global-norm clipping) in fp32 and
in each 16-bit precision, runs --steps steps of each on synthetic tokens with
galvatron-run, and prints each precision's median step time (the first step
warms caches up and is left out), its ratio to fp32 and its arena. Says how
bf16 GEMMs run here: through OpenBLAS's cblas_sbgemm when the OpenBLAS
galvatron-run loads exports it, else as f32 GEMMs on tiles converted from
bf16; and whether the CPU has bf16 instructions (avx512_bf16). --profile adds
each precision's slowest kernels (galvatron-run --profile, last step).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(command), result.stderr))
    return result.stdout


def gemm_path(runner):
    """How the OpenBLAS that `runner` loads multiplies bf16 matrices."""
    libraries = run(["ldd", runner])
    match = re.search(r"libopenblas\S*\s*=>\s*(\S+)", libraries)
    if not match:
        return "unknown (no OpenBLAS found by ldd)"
    symbols = subprocess.run(["nm", "-D", "--defined-only", match.group(1)],
                             capture_output=True, text=True).stdout
    if re.search(r"\bcblas_sbgemm\b", symbols):
        return "cblas_sbgemm (%s exports it)" % match.group(1)
    return ("f32 GEMMs on converted tiles (%s has no cblas_sbgemm)" %
            match.group(1))


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read()
    except OSError:
        return False


def measure(args, precision, workdir):
    tools = os.path.join(args.build, "bin")
    program = os.path.join(workdir, precision + ".gxp")
    compiled = run([os.path.join(tools, "galvatron-compile"),
                    "--model=" + args.model, "--batch=%d" % args.batch,
                    "--seq-len=%d" % args.seq_len,
                    "--train=lr=1e-4 precision=" + precision, "-o", program])
    arena = int(re.search(r"arena \(plan peak\) (\d+) bytes", compiled).group(1))
    log = os.path.join(workdir, precision + ".jsonl")
    command = [os.path.join(tools, "galvatron-run"), program, "--steps",
               str(args.steps), "--synthetic", "--threads=%d" % args.threads,
               "--peak-tflops", "1", "--log", log]
    output = run(command + (["--profile"] if args.profile else ["--quiet"]))
    with open(log) as f:
        seconds = [json.loads(line)["seconds"] for line in f]
    kernels = re.findall(r"kernel (\S+)\s+([\d.]+) ms", output)
    return statistics.median(seconds[1:] or seconds), arena, kernels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--model", default="gpt2-small")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", default="bf16")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    runner = os.path.join(args.build, "bin", "galvatron-run")
    print("%s, batch %d x %d tokens, %d thread(s), median of steps 2-%d" %
          (args.model, args.batch, args.seq_len, args.threads, args.steps))
    print("bf16 GEMMs: %s; CPU bf16 instructions (avx512_bf16): %s" %
          (gemm_path(runner), "yes" if cpu_has_bf16() else "no"))
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for precision in ["fp32"] + args.precisions.split(","):
            results[precision] = measure(args, precision, workdir)
    base = results["fp32"][0]
    print("%-9s %12s %14s %14s" % ("precision", "step (ms)", "vs fp32", "arena (MB)"))
    for precision, (seconds, arena, _) in results.items():
        print("%-9s %12.1f %14.3f %14.1f" % (precision, 1e3 * seconds,
                                             seconds / base, arena / 1e6))
    if args.profile:
        for precision, (_, _, kernels) in results.items():
            top = sorted(kernels, key=lambda k: -float(k[1]))[:8]
            print("%s: %s" % (precision, ", ".join(
                "%s %.0f ms" % (name, float(ms)) for name, ms in top)))


if __name__ == "__main__":
    main()
