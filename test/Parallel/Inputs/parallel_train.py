"""Trains a preset for a few steps partitioned for N ranks under mpirun and
checks the loss and gradient norm of every step and every rank's part of
every parameter and optimizer state against the one-rank run.

usage: parallel_train.py --tools OPT TRANSLATE RUN --model NAME --batch B
           --seq S --strategy "KNOBS" --ranks N --train "STEP OPTIONS"
           --workdir DIR
"""
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "Runtime", "Inputs"))
from parallel_forward import parse_common, run  # noqa: E402
from preset_reference import read_safetensors as read_torch  # noqa: E402


def read_safetensors(path):
    return {name: value.numpy() for name, value in read_torch(path).items()}


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


def checkpoint_part(directory, rank):
    """The file of `rank`'s part of the complete checkpoint in `directory`
    of a job of several ranks: the one its manifest (written last) lists."""
    with open(os.path.join(directory, "manifest.json")) as f:
        return os.path.join(directory, json.load(f)["parts"][rank])


def owner_of(slices, name):
    """The sharded variable whose slice `name` is: itself (a weight, or
    ZeRO-1/2 state, which has its own slice), else the parameter whose
    state it is (other state is sharded like its parameter)."""
    return next((p for p in sorted(slices, key=len, reverse=True)
                 if name == p or name.startswith(p + ".")), None)


def group_position(rank, sizes, strides):
    """Where `rank` stands in its group of a family over mesh axes (the
    first axis varies slowest)."""
    position = 0
    for size, stride in zip(sizes, strides):
        position = position * size + rank // stride % size
    return position


def slices_of(program_text, rank):
    """name -> (full_shape, slice_start) of the rank's sharded parameters:
    its stage's program, the rank-dependent terms resolved for `rank`."""
    header = re.search(r"grt.executable world_size (\d+) alignment \d+ "
                       r"stages (\d+)", program_text)
    world, stages = int(header.group(1)), int(header.group(2))
    families = {}
    for m in re.finditer(r"grt.group @(\w+) sizes \[([0-9, ]*)\] strides "
                         r"\[([0-9, ]*)\]", program_text):
        families[m.group(1)] = ([int(x) for x in m.group(2).split(",") if x],
                                [int(x) for x in m.group(3).split(",") if x])
    stage = rank // (world // stages)
    start = program_text.index("grt.program stage %d " % stage)
    end = program_text.find("grt.program stage", start + 1)
    text = program_text[start:end if end >= 0 else len(program_text)]
    slices = {}
    for line in text.splitlines():
        m = re.search(r'grt.parameter "([^"]+)".*full_shape = array<i64: '
                      r'([0-9, ]+)>.*slice_start = array<i64: ([0-9, ]+)>',
                      line)
        if not m:
            continue
        begin = [int(x) for x in m.group(3).split(",")]
        for t in re.finditer(r'#grt.term<"slice_start"\[(\d+)\], (\d+) \* '
                             r'@(\w+)>', line):
            begin[int(t.group(1))] += int(t.group(2)) * group_position(
                rank, *families[t.group(3)])
        slices[m.group(1)] = ([int(x) for x in m.group(2).split(",")], begin)
    return slices


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
            return text, [json.loads(line) for line in f]

    _, serial_log = train("serial", [], 1)
    strategy = ("--galvatron-apply-strategy=" + args.strategy +
                " check-memory=false precision=fp32")
    text, parallel_log = train("parallel", [strategy, "--galvatron-partition"],
                               args.ranks)

    worst = 0.0
    for s, (want, got) in enumerate(zip(serial_log, parallel_log)):
        for key in ("loss", "grad_norm"):
            error = l2_relative_error(got[key], want[key])
            worst = max(worst, error)
            if error > 1e-5:
                sys.exit("step %d: %s %r differs from serial %r" %
                         (s + 1, key, got[key], want[key]))
    serial = read_safetensors(os.path.join(work, "serial",
                                           "checkpoint.safetensors"))
    compared = 0
    for r in range(args.ranks):
        part = read_safetensors(
            checkpoint_part(os.path.join(work, "parallel"), r))
        slices = slices_of(text, r)
        for name, value in part.items():
            whole = serial[name]
            owner = owner_of(slices, name)
            if owner is not None and whole.shape != value.shape:
                full, begin = slices[owner]
                whole = whole.reshape(full)[tuple(
                    slice(b, b + n) for b, n in zip(begin, value.shape))]
            if whole.shape != value.shape:
                sys.exit("rank %d: %s has shape %s, serial %s" %
                         (r, name, value.shape, whole.shape))
            # Key biases are not compared (see without_key_bias).
            if ".key.bias" in name:
                continue
            error = l2_relative_error(*without_key_bias(name, value, whole))
            worst = max(worst, error)
            if error > args.tolerance:
                sys.exit("rank %d: %s differs from serial by %.3g" %
                         (r, name, error))
            compared += 1
    print("%s [%s] on %d ranks: losses and gradient norms of %d steps and "
          "%d parameter and state tensors match the serial run (max "
          "relative error, L2 per tensor, below %g; measured %.1e)" %
          (args.model, args.strategy, args.ranks, len(serial_log), compared,
           args.tolerance, worst))


if __name__ == "__main__":
    main()
