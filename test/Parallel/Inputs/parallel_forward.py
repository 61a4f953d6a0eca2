"""Runs a preset's forward pass partitioned for N ranks under mpirun and
checks every rank's outputs against the one-rank program.

usage: parallel_forward.py --tools BIN_OPT BIN_TRANSLATE BIN_RUN --model NAME
           --batch B --seq S --strategy "KNOBS" --ranks N --workdir DIR
The strategy knobs go to --galvatron-apply-strategy (or json=FILE), or,
after "search ", to --galvatron-search; the serial program is the same
model without a plan.
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit("command failed: %s\n%s%s" % (" ".join(cmd), result.stdout,
                                                result.stderr))
    return result.stdout


def parse_common(parser):
    """The options both drivers take; returns the arguments and the
    preset's IR."""
    parser.add_argument("--tools", nargs=3, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=8)
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--ranks", type=int, required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--mpirun", default="mpirun --oversubscribe -np")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model = run([args.tools[1], "--model=" + args.model,
                 "--batch=%d" % args.batch, "--seq-len=%d" % args.seq])
    return args, model


def main():
    args, model = parse_common(argparse.ArgumentParser())
    opt, translate, galvatron_run = args.tools
    work = args.workdir

    rng = np.random.default_rng(7)
    data = {
        "ids": rng.integers(0, 200, size=(args.batch, args.seq)),
        "token_type_ids": rng.integers(0, 2, size=(args.batch, args.seq)),
        "attention_mask": (np.arange(args.seq)[None, :] <
                           rng.integers(1, args.seq + 1, size=(args.batch, 1))),
    }
    for name, value in data.items():
        np.save(os.path.join(work, name + ".npy"), value.astype(np.int64))
    serial = run([opt, "--galvatron-lower-to-runtime"], input=model)
    with open(os.path.join(work, "serial.mlir"), "w") as f:
        f.write(serial)
    run([translate, "--emit-program", os.path.join(work, "serial.mlir"), "-o",
         os.path.join(work, "serial.gxp")])
    input_names = re.findall(r'grt.input "([^"]+)"', serial)
    inputs = []
    for name in input_names:
        file = name if name in data else "ids"
        inputs += ["--input", "%s=%s" % (name, os.path.join(work, file + ".npy"))]
    run([galvatron_run, os.path.join(work, "serial.gxp"), "--seed", "3",
         "--quiet", "--output-dir", os.path.join(work, "serial")] + inputs)

    if args.strategy.startswith("search "):
        strategy = ("--galvatron-search=" + args.strategy[len("search "):] +
                    " precision=fp32")
    else:
        strategy = ("--galvatron-apply-strategy=" + args.strategy +
                    " check-memory=false precision=fp32")
    partitioned = run([opt, strategy, "--galvatron-partition"], input=model)
    with open(os.path.join(work, "partitioned.mlir"), "w") as f:
        f.write(partitioned)
    # One program for all ranks (the plan has one pipeline stage).
    merged = os.path.join(work, "parallel.mlir")
    with open(merged, "w") as f:
        f.write(run([opt, "--galvatron-lower-to-runtime"], input=partitioned))
    run([translate, "--emit-program", merged, "-o",
         os.path.join(work, "parallel.gxp")])
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    run(args.mpirun.split() + [str(args.ranks), galvatron_run,
                               os.path.join(work, "parallel.gxp"), "--seed",
                               "3", "--quiet", "--threads", "1",
                               "--output-dir",
                               os.path.join(work, "parallel")] + inputs,
        env=env)

    outputs = sorted(f for f in os.listdir(os.path.join(work, "serial"))
                     if f.endswith(".npy"))
    worst = 0.0
    for r in range(args.ranks):
        for name in outputs:
            want = np.load(os.path.join(work, "serial", name))
            got = np.load(os.path.join(work, "parallel", "rank%d" % r, name))
            if got.shape != want.shape:
                sys.exit("rank %d: %s has shape %s, serial %s" %
                         (r, name, got.shape, want.shape))
            error = float(np.max(np.abs(got - want)) /
                          max(float(np.max(np.abs(want))), 1e-30))
            worst = max(worst, error)
            if error > 1e-5:
                sys.exit("rank %d: %s differs from serial by %.3g (relative)"
                         % (r, name, error))
    collectives = len(re.findall(r"galvatron\.(all_reduce|all_gather|"
                                 r"reduce_scatter|shard|replicate) ",
                                 partitioned))
    print("%s [%s] on %d ranks: %d outputs match the serial run "
          "(max relative error %s), %d collectives" %
          (args.model, args.strategy, args.ranks, len(outputs) * args.ranks,
           "below 1e-5" if worst < 1e-5 else worst, collectives))


if __name__ == "__main__":
    main()
