"""Checks fp16 dynamic loss scaling from galvatron-run's logs and checkpoints.

  loss_scaling.py skip BEFORE AFTER LOG STEP
      step STEP of LOG overflowed and was skipped: AFTER (the checkpoint
      directory after it) holds BEFORE's parameters and optimizer state bit for bit,
      the same update count, a zeroed gradient accumulator and half the
      loss scale; every other logged step trained
  loss_scaling.py prefix LOG CHECKPOINT
      a run starting from a loss scale too large: the steps that overflowed
      are the first ones, each halved the scale, the others kept it, and the
      update count in CHECKPOINT counts only the steps that trained
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "Runtime", "Inputs"))
from preset_reference import read_checkpoint  # noqa: E402


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fail(message):
    print("FAIL: " + message)
    return 1


def check_skip(before_path, after_path, log_path, step):
    before, after = read_checkpoint(before_path), read_checkpoint(after_path)
    entries = {entry["step"]: entry for entry in read_log(log_path)}
    if not entries[step]["skipped"] or entries[step]["grad_norm"] is not None:
        return fail(f"step {step} was not skipped: {entries[step]}")
    trained = [s for s, entry in entries.items() if s != step and entry["skipped"]]
    if trained:
        return fail(f"steps {trained} were skipped too")
    scale = float(before["train.loss_scale"].numpy())
    if float(after["train.loss_scale"].numpy()) != scale / 2:
        return fail(f"loss scale {scale} became "
                    f"{float(after['train.loss_scale'].numpy())}")
    if entries[step]["loss_scale"] != scale / 2:
        return fail(f"the log reports loss scale {entries[step]['loss_scale']}")
    state = [name for name in before
             if not name.endswith(".grad") and not name.startswith("runtime.")
             and name not in ("train.loss_scale", "train.good_steps")]
    for name in state:
        if not np.array_equal(before[name].numpy(), after[name].numpy()):
            return fail(f"'{name}' changed in the skipped step")
    for name in after:
        if name.endswith(".grad") and np.any(after[name].numpy() != 0):
            return fail(f"'{name}' was not zeroed after the skipped step")
    print(f"step {step} skipped: {len(state)} parameters, moments and the "
          f"update count unchanged, loss scale {scale:g} -> {scale / 2:g}")
    return 0


def check_prefix(log_path, checkpoint_path):
    entries = read_log(log_path)
    skipped = [entry["step"] for entry in entries if entry["skipped"]]
    if not skipped or skipped != list(range(1, len(skipped) + 1)):
        return fail(f"overflowed steps {skipped} are not the first ones")
    if len(skipped) == len(entries):
        return fail("no step trained")
    # The log's 9 significant digits identify each f32 scale exactly.
    scales = [np.float32(entry["loss_scale"]) for entry in entries]
    for previous, scale, entry in zip(scales, scales[1:], entries[1:]):
        expected = previous / 2 if entry["skipped"] else previous
        if scale != expected:
            return fail(f"step {entry['step']}: loss scale {scale}, "
                        f"expected {expected}")
    updates = int(read_checkpoint(checkpoint_path)["train.step"].numpy())
    if updates != len(entries) - len(skipped):
        return fail(f"{updates} updates counted for "
                    f"{len(entries) - len(skipped)} trained steps")
    print(f"{len(skipped)} first steps overflowed, each halving the scale to "
          f"{entries[len(skipped) - 1]['loss_scale']:g}; the other "
          f"{updates} trained")
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "skip":
        return check_skip(argv[2], argv[3], argv[4], int(argv[5]))
    if len(argv) == 4 and argv[1] == "prefix":
        return check_prefix(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
