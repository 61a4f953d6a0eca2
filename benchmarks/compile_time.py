#!/usr/bin/python3
"""Compile time, peak memory and program size of galvatron-compile for real
clusters: GPT-3 175B (sequence 2048) with Megatron's plan (tensor 8 x
pipeline 8) on 64 GPUs (64 micro-batches) and on 1,024 GPUs (data
parallelism 16, 96 micro-batches), and the plan --search finds for 1,024
A100s. Each compile is the whole training step (fp32, full recomputation)
on one core (taskset, --mlir-disable-threading).

  benchmarks/compile_time.py [--bin build/bin] [--timeout 600] [--scaling]
                             [--ranks] [--only-ranks]

--scaling adds rows that vary one quantity of the 1,024-GPU plan (the data
parallel degree, the micro-batches, the layers): compile cost grows with the
stages and layers, not with the data-parallel degree or the micro-batches.
--ranks adds gpt-tiny (pp 2, tp 2, the rest data parallel) on 8 to 512
ranks, the rows issue 14 measured for the per-rank compiler (0.15 s at 8
ranks, 1.5 s at 128, 7.4 s at 512); --only-ranks prints only those, for a
compiler that cannot compile the GPT-3 rows in time (`--bin` of an older
build).
Prints one row per compile: wall and CPU seconds, the compiler's peak
resident memory, the program file's size, and the stages' instruction
count (from galvatron-compile's summary).
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

TRAIN = "lr=1e-4"
MEGATRON = "pp=8 tp=8 precision=fp32 ckpt=1"
CASES = [
    ("gpt3-175b, t8 p8, 64 GPUs, 64 micro-batches",
     ["--model=gpt3-175b",
      "--plan=devices=64 global-batch=64 chunks=64 " + MEGATRON]),
    ("gpt3-175b, t8 p8 d16, 1,024 GPUs, 96 micro-batches",
     ["--model=gpt3-175b",
      "--plan=devices=1024 global-batch=1536 chunks=96 " + MEGATRON]),
    ("gpt3-175b, searched plan, 1,024 A100s",
     ["--model=gpt3-175b",
      "--search=cluster=a100-80gb nodes=128 global-batch=1536 precision=fp32"]),
]
SCALING = [
    ("  d1, 64 GPUs, 96 micro-batches",
     ["--model=gpt3-175b",
      "--plan=devices=64 global-batch=96 chunks=96 " + MEGATRON]),
    ("  d4, 256 GPUs, 96 micro-batches",
     ["--model=gpt3-175b",
      "--plan=devices=256 global-batch=384 chunks=96 " + MEGATRON]),
    ("  d64, 4,096 GPUs, 24 micro-batches",
     ["--model=gpt3-175b",
      "--plan=devices=4096 global-batch=1536 chunks=24 " + MEGATRON]),
    ("  d1, 64 GPUs, 768 micro-batches",
     ["--model=gpt3-175b",
      "--plan=devices=64 global-batch=768 chunks=768 " + MEGATRON]),
    ("  d16, 1,024 GPUs, 96 micro-batches, 48 layers",
     ["--model=gpt3-175b", "--layers=48",
      "--plan=devices=1024 global-batch=1536 chunks=96 " + MEGATRON]),
]

RANKS = [
    ("gpt-tiny, pp2 tp2 d%d, %d ranks" % (ranks // 4, ranks),
     ["--model=gpt-tiny", "--batch=%d" % (ranks // 4),
      "--plan=devices=%d pp=2 tp=2 precision=fp32 global-batch=%d chunks=2"
      % (ranks, ranks // 2)])
    for ranks in (8, 32, 128, 512)
]


def compile_once(binary, flags, output, timeout):
    """(wall s, CPU s, peak RSS MiB, file bytes, instructions, status)."""
    command = [binary] + flags + ["--train=" + TRAIN, "--mlir-disable-threading",
                                  "-o", output]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0"] + command
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return time.perf_counter() - start, None, None, None, None, \
            "did not finish in %d s" % timeout
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        return wall, None, None, None, None, "failed: " + stderr.strip()[-200:]
    instructions = sum(int(n) for n in re.findall(r"(\d+) instructions", stdout))
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0,
            os.path.getsize(output), instructions, "ok")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--ranks", action="store_true")
    parser.add_argument("--only-ranks", action="store_true")
    args = parser.parse_args()
    binary = os.path.join(args.bin, "galvatron-compile")
    print("%-48s %8s %8s %9s %10s %12s" % (
        "case", "wall s", "CPU s", "peak MiB", "file MB", "instructions"))
    if args.only_ranks:
        cases = RANKS
    else:
        cases = CASES + (SCALING if args.scaling else []) + \
            (RANKS if args.ranks else [])
    with tempfile.TemporaryDirectory() as work:
        for index, (name, flags) in enumerate(cases):
            # One child per measurement: getrusage(RUSAGE_CHILDREN) sums the
            # children waited for, so each compile runs in a fresh helper.
            output = os.path.join(work, "%d.gxp" % index)
            helper = subprocess.run(
                [sys.executable, __file__, "--measure", binary, output,
                 str(args.timeout)] + flags, capture_output=True, text=True)
            print("%-48s %s" % (name, helper.stdout.strip()))
            sys.stdout.flush()


def measure(binary, output, timeout, flags):
    wall, cpu, peak, size, instructions, status = compile_once(
        binary, flags, output, timeout)
    if status != "ok":
        print("%8.1f %s" % (wall, status))
        return
    print("%8.2f %8.2f %9.0f %10.3f %12d" % (wall, cpu, peak, size / 1e6,
                                              instructions))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    else:
        main()
