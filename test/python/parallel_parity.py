#!/usr/bin/python3
"""Parallel equals serial: compiles a preset for a plan over N ranks and for
one rank, runs both (mpirun for N), and compares the results.

  parallel_parity.py --bin build/bin --model gpt-tiny --plan "devices=2 pp=2" \
      [--train "lr=1e-3" --steps 3] [--seq-len 16] [--micro-batch 2] WORKDIR

Forward programs compare every output; training programs compare the loss
of every step and the final parameters. Prints one line per plan and exits
non-zero when any value differs by more than --rtol (relative to the
tensor's largest magnitude).
"""

import argparse
import os
import shlex
import subprocess
import sys

import numpy as np


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit("command failed (%d): %s\n%s%s" %
                 (result.returncode, " ".join(map(shlex.quote, command)),
                  result.stdout, result.stderr))
    return result.stdout


def plan_value(plan, key, default):
    for item in plan.split():
        name, _, value = item.partition("=")
        if name == key:
            return int(value)
    return default


def mpirun(ranks):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    return ["mpirun", "--oversubscribe", "-np", str(ranks)], env


def read_outputs(directory):
    """name -> array for every .npy under `directory` (any rank)."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            if name.endswith(".npy"):
                key = name[:-4]
                if key in found:
                    sys.exit("output '%s' written by two ranks" % key)
                found[key] = np.load(os.path.join(root, name))
    return found


def relative_error(actual, expected):
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    return float(np.max(np.abs(actual.astype(np.float64) - expected))) / scale


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--plan", required=True,
                        help="--galvatron-apply-strategy options of the parallel run")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("workdir")
    args = parser.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    devices = plan_value(args.plan, "devices", 1)
    compile_ = os.path.join(args.bin, "galvatron-compile")
    runner = os.path.join(args.bin, "galvatron-run")
    common = [compile_, "--model=" + args.model, "--batch=%d" % args.micro_batch,
              "--seq-len=%d" % args.seq_len, "--layers=%d" % args.layers, "--quiet"]
    serial = os.path.join(args.workdir, "serial.gxp")
    parallel = os.path.join(args.workdir, "parallel.gxp")
    run(common + ["-o", serial])
    run(common + ["--plan=" + args.plan, "-o", parallel])

    # Token ids of one batch; the vocabulary of every tiny preset is >= 128.
    rng = np.random.default_rng(args.seed)
    ids = rng.integers(0, 128, size=(args.micro_batch, args.seq_len), dtype=np.int64)
    inputs = []
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        path = os.path.join(args.workdir, name + ".npy")
        value = {"input_ids": ids, "token_type_ids": np.zeros_like(ids),
                 "attention_mask": np.ones_like(ids)}[name]
        np.save(path, value)
        inputs.append((name, path))
    binds = []
    for name, path in inputs:
        binds += ["--input", "%s=%s" % (name, path)]

    serial_out = os.path.join(args.workdir, "serial-out")
    parallel_out = os.path.join(args.workdir, "parallel-out")
    run([runner, serial, "--seed", str(args.seed), "--threads", "1", "--quiet",
         "--output-dir", serial_out] + model_inputs(args.model, binds))
    launcher, env = mpirun(devices)
    run(launcher + [runner, parallel, "--seed", str(args.seed), "--threads", "1",
                    "--quiet", "--output-dir", parallel_out] +
        model_inputs(args.model, binds), env=env)

    expected = read_outputs(serial_out)
    actual = read_outputs(parallel_out)
    if set(expected) != set(actual):
        sys.exit("outputs differ: serial %s, parallel %s" %
                 (sorted(expected), sorted(actual)))
    worst = 0.0
    for name in sorted(expected):
        if expected[name].shape != actual[name].shape:
            sys.exit("output '%s': shape %s, serial %s" %
                     (name, actual[name].shape, expected[name].shape))
        worst = max(worst, relative_error(actual[name], expected[name]))
    status = "match" if worst <= args.rtol else "DIFFER"
    print("%s [%s] on %d ranks: %d outputs %s the serial run (max relative "
          "error %.2e)" % (args.model, args.plan, devices, len(expected),
                           status, worst))
    return 0 if worst <= args.rtol else 1


def model_inputs(model, binds):
    """The --input flags a preset takes: BERT also takes the token types and
    the attention mask."""
    wanted = {"input_ids"}
    if model.startswith("bert"):
        wanted |= {"token_type_ids", "attention_mask"}
    kept = []
    for flag, value in zip(binds[::2], binds[1::2]):
        if value.split("=")[0] in wanted:
            kept += [flag, value]
    return kept


if __name__ == "__main__":
    sys.exit(main())
