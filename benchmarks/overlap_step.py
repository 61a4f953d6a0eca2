#!/usr/bin/python3
"""Step time with communication overlapped against the same program run
synchronously, on the CPU backend under mpirun.

  /usr/bin/python3 benchmarks/overlap_step.py [--build build]
      [--model gpt2-small] [--batch 1] [--seq-len 128] [--steps 3]
      [--ranks 2,4] [--plans ddp,zero3] [--threads 1] [--layers N]

For each plan (data parallelism with DDP or ZeRO-3 over all ranks) and rank
count, compiles the training step once (galvatron-compile, asynchronous
communication: the default) and runs it twice with --trace: as compiled
(transfers on the communication thread, beside the kernels) and with
--no-overlap (every transfer completes where it is started, on the main
thread: the same operations in the same order). Prints per run:

- the median step time of rank 0 (the first step, which warms caches up,
  is left out) and the ratio overlapped / synchronous;
- communication time per step: the time the communicator spent on
  transfers (the communication track of the synchronous trace, rank 0);
- hidden: the share of the overlapped run's communication time during
  which a kernel of the same rank ran (from the trace's intervals), and
  the saving (synchronous - overlapped step time) over the synchronous
  communication time;
- predicted: what the cost model's overlap rule hides of that
  communication, exposed(c, d) = max(c, d) + (k - 1) min(c, d) - c with
  k = 1.15 (its overlap coefficient), fed with this run's measured compute
  c (the kernels of the blocks where the communication overlaps: the
  backward for DDP; forward and backward for ZeRO-3) and communication d.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

OVERLAP_COEFFICIENT = 1.15


def run(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit("command failed: %s\n%s%s" % (" ".join(command), result.stdout,
                                               result.stderr))
    return result.stdout


def merged_length(intervals):
    total, end = 0.0, float("-inf")
    for begin, finish in sorted(intervals):
        if finish <= end:
            continue
        total += finish - max(begin, end)
        end = finish
    return total


def covered(interval, merged):
    """Length of `interval` covered by the union `merged` (sorted, disjoint)."""
    begin, end = interval
    return sum(max(0.0, min(end, f) - max(begin, b)) for b, f in merged)


def union(intervals):
    merged = []
    for begin, finish in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], finish)
        else:
            merged.append([begin, finish])
    return merged


def analyze(trace_path, steps, overlap_blocks):
    with open(trace_path) as f:
        events = [e for e in json.load(f)["traceEvents"] if e["ph"] == "X"]
    timed = [e for e in events if e["args"]["step"] > 1]
    counted = max(1, steps - 1)
    kernels = [(e["ts"], e["ts"] + e["dur"]) for e in timed if e["tid"] == 0]
    transfers = [(e["ts"], e["ts"] + e["dur"]) for e in timed if e["tid"] == 1]
    compute = sum(e["dur"] for e in timed if e["tid"] == 0 and
                  e["args"]["block"] in overlap_blocks)
    kernel_union = union(kernels)
    communication = merged_length(transfers)
    hidden = sum(covered(t, kernel_union) for t in union(transfers))
    return {"communication": communication / counted / 1e3,
            "hidden": hidden / counted / 1e3,
            "compute": compute / counted / 1e3}


def step_times(log_path):
    with open(log_path) as f:
        seconds = [json.loads(line)["seconds"] for line in f if line.strip()]
    return seconds[1:] if len(seconds) > 1 else seconds


def exposed(compute, communication):
    k = OVERLAP_COEFFICIENT
    return (max(compute, communication) + (k - 1) * min(compute, communication)
            - compute)


def measure(args, plan, ranks, workdir):
    tools = os.path.join(args.build, "bin")
    name = "%s-%d" % (plan, ranks)
    program = os.path.join(workdir, name + ".gxp")
    dp_type = {"ddp": "ddp", "zero3": "zero3"}[plan]
    compile_ = [os.path.join(tools, "galvatron-compile"), "--model=" + args.model,
                "--seq-len=%d" % args.seq_len,
                "--plan=devices=%d precision=fp32 global-batch=%d chunks=1 "
                "dp-type=%s" % (ranks, ranks * args.batch, dp_type),
                "--train=lr=1e-4", "-o", program, "--quiet"]
    if args.layers:
        compile_.append("--layers=%d" % args.layers)
    run(compile_)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1",
               OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    blocks = {"ddp": {"backward"}, "zero3": {"forward", "backward"}}[plan]
    results = {}
    for mode in ("overlap", "sync"):
        log = os.path.join(workdir, "%s-%s.jsonl" % (name, mode))
        trace = os.path.join(workdir, "%s-%s.{rank}.json" % (name, mode))
        command = ["mpirun", "--oversubscribe", "-np", str(ranks),
                   os.path.join(tools, "galvatron-run"), program, "--steps",
                   str(args.steps), "--synthetic", "--threads",
                   str(args.threads), "--log", log, "--trace", trace, "--quiet"]
        if mode == "sync":
            command.append("--no-overlap")
        run(command, env)
        results[mode] = analyze(trace.replace("{rank}", "0"), args.steps, blocks)
        results[mode]["step"] = statistics.median(step_times(log)) * 1e3
    sync, over = results["sync"], results["overlap"]
    d, c = sync["communication"], sync["compute"]
    predicted = (d - exposed(c, d)) / d if d > 0 else 0.0
    return {
        "plan": plan, "ranks": ranks, "sync": sync["step"],
        "overlap": over["step"], "ratio": over["step"] / sync["step"],
        "communication": d,
        "hidden": over["hidden"] / over["communication"]
        if over["communication"] > 0 else 0.0,
        "saved": (sync["step"] - over["step"]) / d if d > 0 else 0.0,
        "predicted": predicted, "compute": c,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--build", default=os.path.join(root, "build"))
    parser.add_argument("--model", default="gpt2-small")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--ranks", default="2,4")
    parser.add_argument("--plans", default="ddp,zero3")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for plan in args.plans.split(","):
            for ranks in [int(r) for r in args.ranks.split(",")]:
                rows.append(measure(args, plan, ranks, workdir))
                row = rows[-1]
                print("%s on %d ranks: done" % (plan, ranks), file=sys.stderr)
    print("%s, batch %d per rank, sequence %d, %d step(s) (median of the last "
          "%d), %d thread(s) per rank, on %d core(s)" % (
              args.model, args.batch, args.seq_len, args.steps,
              max(1, args.steps - 1), args.threads, os.cpu_count()))
    print("| plan | ranks | synchronous (ms) | overlapped (ms) | ratio | "
          "communication (ms/step) | hidden (trace) | saved / communication | "
          "cost model: hidden |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %.0f | %.0f | %.3f | %.0f | %.0f%% | %.0f%% | %.0f%% "
              "(c = %.0f ms) |" % (
                  r["plan"], r["ranks"], r["sync"], r["overlap"], r["ratio"],
                  r["communication"], 100 * r["hidden"], 100 * r["saved"],
                  100 * r["predicted"], r["compute"]))


if __name__ == "__main__":
    main()
