#!/usr/bin/python3
"""Compares training runs with a reference run: the loss of every step
their logs share, and every float tensor of their final checkpoints
(weights and training state, whole by name whatever plan wrote them).

  compare_runs.py REFERENCE.jsonl REFERENCE_DIR [NAME=RUN.jsonl,RUN_DIR]...
      [--tolerance T]

Losses compare relative to the reference's; tensors in L2 norm per tensor,
relative to the reference tensor's (attention key biases left out, see
without_key_bias). Prints one line per run; exits 1 when any value differs
by more than the tolerance (default 1e-5).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "Parallel", "Inputs"))
from parallel_train import (l2_relative_error, read_checkpoint,  # noqa: E402
                            without_key_bias)


def losses(path):
    with open(path) as f:
        return {entry["step"]: entry["loss"]
                for entry in map(json.loads, f) if entry}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reference_log")
    parser.add_argument("reference")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()
    want_losses = losses(args.reference_log)
    want = {name: value for name, value in
            read_checkpoint(args.reference).items()
            if value.dtype == np.float32 and ".key.bias" not in name}
    ok = True
    for run in args.runs:
        name, _, paths = run.partition("=")
        log, directory = paths.split(",")
        got_losses = losses(log)
        loss_error = max(abs(got_losses[s] - want_losses[s]) / abs(want_losses[s])
                         for s in got_losses)
        got = read_checkpoint(directory)
        missing = sorted(set(want) - set(got))
        if missing:
            sys.exit("%s: the checkpoint lacks %s" % (name, missing))
        worst, where = 0.0, ""
        for tensor, expected in want.items():
            error = l2_relative_error(*without_key_bias(
                tensor, got[tensor], expected))
            if error >= worst:
                worst, where = error, tensor
        good = loss_error <= args.tolerance and worst <= args.tolerance
        ok &= good
        print("%s: losses of steps %s and %d tensors %s the reference "
              "(max relative error: losses %.1e, tensors %.1e at %s)" %
              (name, ",".join(map(str, sorted(got_losses))), len(want),
               "match" if good else "DIFFER FROM", loss_error, worst, where))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
