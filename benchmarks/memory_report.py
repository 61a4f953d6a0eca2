#!/usr/bin/python3
"""Per-stage memory: the compile-time arena of each stage's training program
(which every rank of the stage allocates) beside the cost model's prediction.

  benchmarks/memory_report.py --bin build/bin --model gpt-tiny \
      --plan "devices=2 pp=2 precision=fp32 global-batch=8 chunks=4"

Columns: the whole arena and the predicted stage total; the model states
(parameters, gradients, optimizer state) of both; the rest (activations,
temporaries, inputs) of both.

The arena is what the runtime allocates (parameters, gradients, optimizer
state, the slots of the micro-batches in flight and the temporaries of the
step's blocks, placed by the static memory planner); the prediction is
`--galvatron-plan-report`'s stage total (model states + in-flight activations
+ transient buffers).

With --against-fp32 a 16-bit plan is also compiled in fp32: the last column
is the rest of the 16-bit arena over the fp32 arena's (model states are the
same 16 bytes per parameter in both: f32 master weights, gradients and Adam
moments).
"""

import argparse
import json
import re
import subprocess
import sys


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(command), result.stderr))
    return result.stdout


def arenas_of(args, plan):
    """stage -> (arena bytes, model state bytes) of the compiled plan."""
    compiled = run([args.bin + "/galvatron-compile", "--model=" + args.model,
                    "--batch=%d" % args.batch, "--seq-len=%d" % args.seq_len,
                    "--plan=" + plan, "--train=" + args.train, "-o", "/dev/null"])
    arenas = {}
    for stage, arena, params, state in re.findall(
            r"stage (\d+) \([^)]*\): [^;]*; arena \(plan peak\) (\d+) bytes, "
            r"live peak \d+ bytes, parameters (\d+) bytes(?:, training state "
            r"(\d+) bytes)?", compiled):
        arenas[int(stage)] = (int(arena), int(params) + int(state or 0))
    return arenas


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--model", default="gpt-tiny")
    parser.add_argument("--batch", type=int, default=2, help="micro-batch size")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--train", default="lr=1e-3")
    parser.add_argument("--against-fp32", action="store_true",
                        help="also compile the plan in fp32 and print the "
                        "ratio of the non-state bytes")
    args = parser.parse_args()

    compiled = arenas_of(args, args.plan)
    arenas = {stage: arena for stage, (arena, _) in compiled.items()}
    states = {stage: state for stage, (_, state) in compiled.items()}
    fp32 = None
    if args.against_fp32:
        fp32 = arenas_of(args, re.sub(r"precision=\w+", "precision=fp32",
                                      args.plan))

    ir = run([args.bin + "/galvatron-translate", "--model=" + args.model,
              "--batch=%d" % args.batch, "--seq-len=%d" % args.seq_len])
    report = json.loads(subprocess.run(
        [args.bin + "/galvatron-opt",
         "--galvatron-apply-strategy=%s report=json check-memory=false" % args.plan,
         "-o", "/dev/null"],
        input=ir, capture_output=True, text=True, check=True).stdout)
    print("%s, %s (train: %s)" % (args.model, args.plan, args.train))
    print("%5s %12s %12s %8s | %12s %12s | %12s %12s%s" % (
        "stage", "arena", "predicted", "error", "states", "predicted",
        "rest", "predicted", " | rest/fp32" if fp32 else ""))
    worst = 0.0
    for index in sorted(arenas):
        memory = report["stages"][index]["memory_bytes"]
        predicted = memory["total"]
        error = (predicted - arenas[index]) / arenas[index]
        worst = max(worst, abs(error))
        predicted_states = memory["params"] + memory["grads"] + memory["optimizer"]
        rest = arenas[index] - states[index]
        ratio = ""
        if fp32:
            ratio = " | %9.2f" % (rest / (fp32[index][0] - fp32[index][1]))
        print("%5d %12d %12d %+7.1f%% | %12d %12d | %12d %12d%s" % (
            index, arenas[index], predicted, 100 * error, states[index],
            predicted_states, rest, memory["activations"] + memory["buffers"],
            ratio))
    print("largest error %.1f%%" % (100 * worst))


if __name__ == "__main__":
    main()
