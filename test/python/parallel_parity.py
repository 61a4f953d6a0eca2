#!/usr/bin/python3
"""Parallel equals serial: compiles a preset for a plan over N ranks and for
one rank, runs both (mpirun for N), and compares the results.

  parallel_parity.py --bin build/bin --model gpt-tiny --plan "devices=2 pp=2" \
      [--train "lr=1e-3" --steps 3] [--seq-len 16] [--micro-batch 2] WORKDIR

--plan "search OPTIONS" trains the plan galvatron-compile --search finds.
A plan with precision=bf16 (or fp16) is compared with the serial step in
that precision, within twice the distance 16-bit rounding alone puts
between the serial step and its fp32 version.

Forward programs compare every output; training programs compare the loss
of every step and the final parameters. Prints one line per plan and exits
non-zero when any value differs by more than --rtol: outputs relative to
the tensor's largest magnitude, parameters and optimizer state (sharded ones
assembled from the ranks' parts) in L2 norm per tensor.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "Parallel", "Inputs"))
from parallel_train import (l2_relative_error, owner_of,  # noqa: E402
                            read_safetensors, slices_of, without_key_bias)


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


def read_outputs(directory, rtol):
    """name -> array for every .npy under `directory` (any rank); ranks of a
    tensor-parallel stage write the same output and must agree."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            if name.endswith(".npy"):
                key = name[:-4]
                value = np.load(os.path.join(root, name))
                if key in found and relative_error(value, found[key]) > rtol:
                    sys.exit("ranks disagree on output '%s'" % key)
                found[key] = value
    return found


def read_float_tensors(path):
    """name -> array of every float32 tensor of a safetensors file (a
    checkpoint's integer counters are left out)."""
    return {name: value for name, value in read_safetensors(path).items()
            if value.dtype == np.float32}


def read_losses(path):
    with open(path) as f:
        return [json.loads(line)["loss"] for line in f if line.strip()]


def relative_error(actual, expected):
    if expected.size == 0:
        return 0.0
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
    parser.add_argument("--train", default=None,
                        help="--galvatron-build-train-step options: compare a training run")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--noise-floor", action="store_true",
                        help="also run the serial program on 2 threads (another "
                        "summation order) and allow tensors twice the largest "
                        "error that alone causes; for AdamW, whose sign-like "
                        "updates turn rounding noise in near-zero gradients "
                        "into differences of lr")
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
    if args.train is not None:
        # "search OPTIONS": the plan --galvatron-search finds.
        plan_flag = ("--search=" + args.plan[len("search "):]
                     if args.plan.startswith("search ") else "--plan=" + args.plan)
        run(common + [plan_flag, "--train=" + args.train, "-o", parallel])
        lowered = run(common + [plan_flag, "--train=" + args.train,
                                "--emit=mlir", "-o", "-"])
        # The same micro-batches on one device.
        plan = re.search(r"#galvatron.plan<devices = (\d+).*?micro_batches = "
                         r"(\d+), global_batch = (\d+)(.*?)>", lowered)
        devices = int(plan.group(1))
        precision = re.search(r"precision = (\w+)", plan.group(4))
        precision = precision.group(1) if precision else "fp32"
        serial_plan = "devices=1 global-batch=%s chunks=%s precision=" % (
            plan.group(3), plan.group(2))
        run(common + ["--plan=" + serial_plan + precision,
                      "--train=" + args.train, "-o", serial])
        fp32_serial = None
        if precision != "fp32":
            # What 16-bit rounding alone moves the serial run by.
            fp32_serial = os.path.join(args.workdir, "serial-fp32.gxp")
            run(common + ["--plan=" + serial_plan + "fp32",
                          "--train=" + args.train, "-o", fp32_serial])
        return compare_training(args, devices, serial, parallel, lowered,
                                fp32_serial)
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

    expected = read_outputs(serial_out, args.rtol)
    actual = read_outputs(parallel_out, args.rtol)
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


def largest_tensor_error(actual, expected):
    """(name, error) of the tensor differing most, in L2 relative to the
    expected tensor."""
    errors = {name: l2_relative_error(*without_key_bias(
        name, value.reshape(expected[name].shape), expected[name]))
        for name, value in actual.items()}
    worst = max(errors, key=errors.get)
    return worst, errors[worst]


def compare_training(args, devices, serial, parallel, lowered, fp32_serial):
    """Trains both programs on the same synthetic tokens; compares the loss
    of every step and every final parameter (a rank's part of a sharded one
    against the same slice of the serial tensor; `lowered` is the ranks'
    programs as text). With `fp32_serial` (the serial step in fp32, for 16-bit
    programs), the bound is twice what 16-bit rounding alone moves the
    serial run by: the parallel run rounds as often, at other points and
    in other orders (partial sums of a tensor-parallel GEMM rounded before
    their reduction), so it lies about as far from the exact result as the
    serial one, and the two lie within twice that of each other."""
    runner = os.path.join(args.bin, "galvatron-run")
    data = ["--steps", str(args.steps), "--synthetic", "--seed", str(args.seed),
            "--quiet"]
    flags = data + ["--threads", "1"]
    work = args.workdir
    # Checkpoints hold parameters and optimizer state; a rank saves its parts.
    save = ["--save-every", str(args.steps), "--checkpoint"]
    run([runner, serial] + flags + ["--log", os.path.join(work, "serial.log")] +
        save + [os.path.join(work, "serial")])
    launcher, env = mpirun(devices)
    run(launcher + [runner, parallel] + flags +
        ["--log", os.path.join(work, "parallel.log")] +
        save + [os.path.join(work, "parallel")], env=env)
    expected_losses = read_losses(os.path.join(work, "serial.log"))
    actual_losses = read_losses(os.path.join(work, "parallel.log"))
    if len(expected_losses) != args.steps or len(actual_losses) != args.steps:
        sys.exit("expected %d steps, got %d serial and %d parallel" %
                 (args.steps, len(expected_losses), len(actual_losses)))
    loss_error = max(abs(a - e) / abs(e) for a, e in zip(actual_losses, expected_losses))

    expected = read_float_tensors(os.path.join(work, "serial", "checkpoint.safetensors"))
    actual = {}
    for rank in range(devices):
        slices = slices_of(lowered, rank)
        for name, value in read_float_tensors(os.path.join(
                work, "parallel", "checkpoint.rank%d.safetensors" % rank)).items():
            if name not in expected:
                sys.exit("rank %d saved '%s', which the serial run lacks" % (rank, name))
            # A sharded parameter's part (and its optimizer state's) goes
            # into place in the whole tensor.
            owner = owner_of(slices, name)
            if owner is not None:
                full, begin = slices[owner]
                whole = actual.setdefault(
                    name, np.full(full, np.nan, dtype=np.float32))
                whole[tuple(slice(b, b + n) for b, n in zip(begin, value.shape))] = value
                continue
            # A tensor several stages or ranks hold (a tied embedding, a
            # replicated norm) must agree.
            if name in actual and relative_error(value, actual[name]) > args.rtol:
                sys.exit("ranks disagree on '%s'" % name)
            actual[name] = value
    if set(actual) != set(expected):
        sys.exit("parameters differ: missing %s" % sorted(set(expected) - set(actual)))
    for name, value in actual.items():
        if np.isnan(value).any():
            sys.exit("no rank holds part of '%s'" % name)
    worst, param_error = largest_tensor_error(actual, expected)
    tolerance, loss_tolerance, floor_note = args.rtol, args.rtol, ""
    if fp32_serial:
        reference = os.path.join(work, "serial-fp32")
        run([runner, fp32_serial] + flags +
            ["--log", os.path.join(work, "serial-fp32.log")] + save + [reference])
        rounding_at, rounding = largest_tensor_error(
            read_float_tensors(os.path.join(reference, "checkpoint.safetensors")),
            expected)
        loss_rounding = max(abs(a - e) / abs(e) for a, e in zip(
            read_losses(os.path.join(work, "serial-fp32.log")), expected_losses))
        tolerance = max(args.rtol, 2.0 * rounding)
        # A mean over tokens, the loss can land close to fp32's by chance:
        # 2^-12 (a sixteenth of bf16's unit roundoff) at least.
        loss_tolerance = max(2.0 ** -12, 2.0 * loss_rounding)
        floor_note = ("; bound: twice the serial run's distance from fp32: "
                      "tensors %.2e (at %s), loss %.2e" %
                      (rounding, rounding_at, loss_rounding))
    if args.noise_floor:
        # The serial program against itself with another summation order.
        threaded = os.path.join(work, "serial-threads")
        run([runner, serial] + data + ["--threads", "2"] + save + [threaded])
        floor_at, floor = largest_tensor_error(
            read_float_tensors(os.path.join(threaded, "checkpoint.safetensors")),
            expected)
        tolerance = max(args.rtol, 2.0 * floor)
        floor_note = "; serial on 2 threads: %.2e, at %s" % (floor, floor_at)
    ok = loss_error <= loss_tolerance and param_error <= tolerance
    print("%s [%s] on %d ranks, %d steps: losses and %d parameter and state tensors %s the "
          "serial run (max relative error: loss %.2e, tensors %.2e in L2, at %s%s)" %
          (args.model, args.plan, devices, args.steps, len(expected),
           "match" if ok else "DIFFER", loss_error, param_error, worst, floor_note))
    print("losses: " + " ".join("%.6f" % loss for loss in actual_losses))
    return 0 if ok else 1


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
