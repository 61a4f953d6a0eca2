#!/usr/bin/python3
"""Checks that a checkpoint kept after a diverged run holds only finite
values and is of the step before the first one the log records as not
finite.

  check_checkpoint.py CHECKPOINT_DIR RUN.jsonl
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "Runtime", "Inputs"))
from preset_reference import read_checkpoint  # noqa: E402


def main(checkpoint, log):
    tensors = read_checkpoint(checkpoint)
    for name, value in tensors.items():
        if not np.all(np.isfinite(value.numpy())):
            sys.exit("'%s' holds non-finite values" % name)
    with open(log) as f:
        steps = [json.loads(line) for line in f]
    bad = [s["step"] for s in steps
           if s["loss"] is None or s["grad_norm"] is None]
    if len(bad) != 1 or bad[0] != steps[-1]["step"]:
        sys.exit("the log should end at its first non-finite step: %s" % bad)
    with open(os.path.join(checkpoint, "manifest.json")) as f:
        saved = json.load(f)["step"]
    if int(tensors["train.step"]) != saved:
        sys.exit("the manifest names step %d, the step counter is %d" %
                 (saved, int(tensors["train.step"])))
    if saved != bad[0] - 1:
        sys.exit("checkpoint of step %d, the run diverged at step %d" % (saved, bad[0]))
    print("finite checkpoint of the step before the first non-finite one")


if __name__ == "__main__":
    main(*sys.argv[1:])
