"""Trains a preset for a few steps partitioned for N ranks under mpirun and
checks the loss and gradient norm of every step and every parameter and
optimizer state of the final checkpoint (whole tensors, written by the
ranks holding them) against the one-rank run.

usage: parallel_train.py --tools OPT TRANSLATE RUN --model NAME --batch B
           --seq S --strategy "KNOBS" --ranks N --train "STEP OPTIONS"
           --workdir DIR
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "Runtime", "Inputs"))
from parallel_forward import parse_common, run  # noqa: E402
from preset_reference import read_checkpoint as read_torch  # noqa: E402


def read_checkpoint(directory):
    """name -> array of every tensor of the checkpoint in `directory`."""
    return {name: value.numpy() for name, value in read_torch(directory).items()}


def l2_relative_error(actual, expected):
    """||actual - expected|| / ||expected|| (L2 over the tensor; 0 for an
    empty one)."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if expected.size == 0:
        return 0.0
    return float(np.linalg.norm(actual - expected) /
                 max(float(np.linalg.norm(expected)), 1e-30))


def without_key_bias(name, actual, expected):
    """Attention ignores a bias added to every key: its exact gradient is
    zero, both runs hold rounding noise there, and AdamW's normalization
    turns the noise into updates no two summation orders share. Those
    elements (BERT's key bias, the key third of GPT-2's fused c_attn bias)
    and their optimizer state are left out."""
    if ".key.bias" in name:
        return actual[:0], expected[:0]
    if "c_attn.bias" in name:
        keep = [0, 2]
        return actual.reshape(3, -1)[keep], expected.reshape(3, -1)[keep]
    return actual, expected


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args, model = parse_common(parser)
    opt, translate, galvatron_run = args.tools
    work = args.workdir
    rng = np.random.default_rng(5)
    tokens = os.path.join(work, "tokens.bin")
    rng.integers(0, 200, size=4096).astype("<u2").tofile(tokens)
    step = ["--galvatron-build-train-step=" + args.train]

    def train(name, passes, ranks):
        # One program for all ranks (the plan has one pipeline stage).
        text = run([opt] + passes + step +
                   ["--galvatron-lower-to-runtime=world-size=%d" % ranks],
                   input=model)
        path = os.path.join(work, name + ".mlir")
        with open(path, "w") as f:
            f.write(text)
        run([translate, "--emit-program", path, "-o",
             os.path.join(work, name + ".gxp")])
        launch = args.mpirun.split() + [str(ranks)] if ranks > 1 else []
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
                   OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        run(launch + [galvatron_run, os.path.join(work, name + ".gxp"),
                      "--steps", str(args.steps), "--data", tokens, "--seed",
                      "3", "--threads", "1", "--peak-tflops", "1", "--quiet",
                      "--log", os.path.join(work, name + ".jsonl"),
                      "--checkpoint", os.path.join(work, name)], env=env)
        with open(os.path.join(work, name + ".jsonl")) as f:
            return [json.loads(line) for line in f]

    serial_log = train("serial", [], 1)
    strategy = ("--galvatron-apply-strategy=" + args.strategy +
                " check-memory=false precision=fp32")
    parallel_log = train("parallel", [strategy, "--galvatron-partition"],
                         args.ranks)

    worst = 0.0
    for s, (want, got) in enumerate(zip(serial_log, parallel_log)):
        for key in ("loss", "grad_norm"):
            error = l2_relative_error(got[key], want[key])
            worst = max(worst, error)
            if error > 1e-5:
                sys.exit("step %d: %s %r differs from serial %r" %
                         (s + 1, key, got[key], want[key]))
    serial = read_checkpoint(os.path.join(work, "serial"))
    parallel = read_checkpoint(os.path.join(work, "parallel"))
    if set(serial) != set(parallel):
        sys.exit("the checkpoints differ: serial only %s, parallel only %s" %
                 (sorted(set(serial) - set(parallel)),
                  sorted(set(parallel) - set(serial))))
    compared = 0
    for name, whole in serial.items():
        value = parallel[name]
        if whole.shape != value.shape:
            sys.exit("%s has shape %s, serial %s" % (name, value.shape,
                                                      whole.shape))
        # Key biases are not compared (see without_key_bias).
        if ".key.bias" in name or whole.dtype != np.float32:
            continue
        error = l2_relative_error(*without_key_bias(name, value, whole))
        worst = max(worst, error)
        if error > args.tolerance:
            sys.exit("%s differs from serial by %.3g" % (name, error))
        compared += 1
    print("%s [%s] on %d ranks: losses and gradient norms of %d steps and "
          "%d parameter and state tensors match the serial run (max "
          "relative error, L2 per tensor, below %g; measured %.1e)" %
          (args.model, args.strategy, args.ranks, len(serial_log), compared,
           args.tolerance, worst))


if __name__ == "__main__":
    main()
