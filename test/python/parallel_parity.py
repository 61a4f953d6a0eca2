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
the tensor's largest magnitude, parameters and optimizer state (whole in
the checkpoints, whatever the plan) in L2 norm per tensor.

--adamw-steps checks AdamW step by step instead of comparing two AdamW
trajectories (see check_adamw_steps).
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
from parallel_train import (l2_relative_error, read_checkpoint,  # noqa: E402
                            without_key_bias)


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


def read_float_tensors(directory):
    """name -> array of every float32 tensor of the checkpoint in
    `directory` (its integer counters are left out)."""
    return {name: value for name, value in read_checkpoint(directory).items()
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
    parser.add_argument("--dropout", default=None,
                        help="the model's dropout probability (--dropout)")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--train", default=None,
                        help="--galvatron-build-train-step options: compare a training run")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--adamw-steps", action="store_true",
                        help="check AdamW step by step (check_adamw_steps): "
                        "its sign-like updates turn the rounding noise of "
                        "near-zero gradients into differences of lr, so two "
                        "AdamW runs summing in different orders never agree "
                        "to 1e-5")
    parser.add_argument("workdir")
    args = parser.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    devices = plan_value(args.plan, "devices", 1)
    compile_ = os.path.join(args.bin, "galvatron-compile")
    runner = os.path.join(args.bin, "galvatron-run")
    common = [compile_, "--model=" + args.model, "--batch=%d" % args.micro_batch,
              "--seq-len=%d" % args.seq_len, "--layers=%d" % args.layers, "--quiet"]
    if args.dropout is not None:
        common.append("--dropout=" + args.dropout)
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
        if args.adamw_steps:
            # The serial step without an optimizer: its checkpoint keeps the
            # step's gradients.
            gradients = os.path.join(args.workdir, "serial-gradients.gxp")
            run(common + ["--plan=" + serial_plan + precision,
                          "--train=" + with_option(args.train, "optimizer", "none"),
                          "-o", gradients])
            return check_adamw_steps(args, devices, parallel, gradients)
        run(common + ["--plan=" + serial_plan + precision,
                      "--train=" + args.train, "-o", serial])
        fp32_serial = None
        if precision != "fp32":
            # What 16-bit rounding alone moves the serial run by.
            fp32_serial = os.path.join(args.workdir, "serial-fp32.gxp")
            run(common + ["--plan=" + serial_plan + "fp32",
                          "--train=" + args.train, "-o", fp32_serial])
        return compare_training(args, devices, serial, parallel, fp32_serial)
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


def compare_training(args, devices, serial, parallel, fp32_serial):
    """Trains both programs on the same synthetic tokens; compares the loss
    of every step and every final parameter and state tensor (whole in both
    checkpoints). With `fp32_serial` (the serial step in fp32, for 16-bit
    programs), the bound is twice what 16-bit rounding alone moves the
    serial run by: the parallel run rounds as often, at other points and
    in other orders (partial sums of a tensor-parallel GEMM rounded before
    their reduction), so it lies about as far from the exact result as the
    serial one, and the two lie within twice that of each other."""
    runner = os.path.join(args.bin, "galvatron-run")
    flags = ["--steps", str(args.steps), "--synthetic", "--seed", str(args.seed),
             "--quiet", "--threads", "1"]
    work = args.workdir
    # Checkpoints hold parameters and optimizer state, whole.
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

    expected = read_float_tensors(os.path.join(work, "serial"))
    actual = read_float_tensors(os.path.join(work, "parallel"))
    if set(actual) != set(expected):
        sys.exit("parameters differ: serial only %s, parallel only %s" %
                 (sorted(set(expected) - set(actual)),
                  sorted(set(actual) - set(expected))))
    worst, param_error = largest_tensor_error(actual, expected)
    tolerance, loss_tolerance, floor_note = args.rtol, args.rtol, ""
    if fp32_serial:
        reference = os.path.join(work, "serial-fp32")
        run([runner, fp32_serial] + flags +
            ["--log", os.path.join(work, "serial-fp32.log")] + save + [reference])
        rounding_at, rounding = largest_tensor_error(
            read_float_tensors(reference),
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
    ok = loss_error <= loss_tolerance and param_error <= tolerance
    print("%s [%s] on %d ranks, %d steps: losses and %d parameter and state tensors %s the "
          "serial run (max relative error: loss %.2e, tensors %.2e in L2, at %s%s)" %
          (args.model, args.plan, devices, args.steps, len(expected),
           "match" if ok else "DIFFER", loss_error, param_error, worst, floor_note))
    print("losses: " + " ".join("%.6f" % loss for loss in actual_losses))
    return 0 if ok else 1


def with_option(options, key, value):
    """A --galvatron-build-train-step option string with `key` set."""
    kept = [item for item in options.split() if item.partition("=")[0] != key]
    return " ".join(kept + ["%s=%s" % (key, value)])


# --galvatron-build-train-step's defaults of the options AdamW reads.
ADAMW_DEFAULTS = {"lr": 1e-3, "min-lr": 0.0, "warmup-steps": 0, "decay-steps": 0,
                  "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                  "weight-decay": 0.01, "max-grad-norm": 1.0}


def adamw_options(text):
    options = dict(ADAMW_DEFAULTS)
    for item in text.split():
        key, _, value = item.partition("=")
        if key in options:
            options[key] = float(value)
        elif key not in ("optimizer", "loss"):
            sys.exit("--adamw-steps does not model the option '%s'" % key)
    return options


def learning_rate(o, step):
    """The warm-up + cosine schedule (torch's LambdaLR formula)."""
    lr, warmup, decay = o["lr"], o["warmup-steps"], o["decay-steps"]
    if step <= warmup:
        return lr * step / warmup
    if decay > warmup and step <= decay:
        return o["min-lr"] + 0.5 * (lr - o["min-lr"]) * (
            1 + np.cos(np.pi * (step - warmup) / (decay - warmup)))
    return o["min-lr"] if decay > warmup else lr


def check_adamw_steps(args, devices, parallel, gradients):
    """AdamW on a parallel plan, one step at a time. Two AdamW runs cannot
    be compared to 1e-5: the first update is lr * m / sqrt(v) = lr *
    sign(g), so an element whose gradient is rounding noise moves by +-lr
    with any change of summation order. Instead, at each step t the
    parallel run (resumed from its own step t-1, which is exact) is checked
    against the serial program without an optimizer (`gradients`) resumed
    from the parallel run's weights of step t-1:
      - the loss of step t, and the gradient g_t the parallel run used, read
        back from its first moment m_t = beta1 m_{t-1} + (1 - beta1) c g_t
        (c: clipping by the global norm), equal the serial loss and
        gradients at those weights;
      - its second moment v_t = beta2 v_{t-1} + (1 - beta2) (c g_t)^2;
      - its weights follow AdamW from its own moments, in float64:
        theta_t = theta_{t-1} (1 - lr_t wd) - lr_t / (1 - beta1^t) * m_t /
        (sqrt(v_t) / sqrt(1 - beta2^t) + eps).
    Each within --rtol in L2 per tensor (the gradients and moments relative
    to their step's term). Key biases are left out of the moments (see
    without_key_bias)."""
    o = adamw_options(args.train)
    runner = os.path.join(args.bin, "galvatron-run")
    flags = ["--synthetic", "--seed", str(args.seed), "--quiet", "--threads", "1"]
    work = args.workdir
    launcher, env = mpirun(devices)
    previous = None  # the parallel checkpoint of step t - 1
    state = None     # the parallel run's tensors after step t - 1
    worst = {"loss": 0.0, "gradients": 0.0, "second moments": 0.0, "updates": 0.0}
    where = {}

    def note(kind, name, error):
        if error >= worst[kind]:
            worst[kind], where[kind] = error, name

    for t in range(1, args.steps + 1):
        directory = os.path.join(work, "parallel-%d" % t)
        resume = ["--resume", previous] if previous else []
        run(launcher + [runner, parallel, "--steps", str(t), "--checkpoint", directory,
                        "--log", directory + ".log"] + flags + resume, env=env)
        after = read_float_tensors(directory)
        # The serial program resumes the parallel run's checkpoint of step
        # t-1 (its weights, counters and data position; any plan resumes
        # it) and keeps step t's gradients.
        reference = os.path.join(work, "serial-gradients-%d" % t)
        run([runner, gradients, "--steps", str(t), "--checkpoint", reference,
             "--log", reference + ".log"] + flags + resume)
        serial = read_float_tensors(reference)
        if state is None:
            state = {name: value for name, value in serial.items()
                     if not name.endswith(".grad")}
        note("loss", "step %d" % t, abs(read_losses(directory + ".log")[-1] -
                                        read_losses(reference + ".log")[-1]) /
             abs(read_losses(reference + ".log")[-1]))
        grads = {name[:-len(".grad")]: value.astype(np.float64)
                 for name, value in serial.items() if name.endswith(".grad")}
        norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
        clip = min(1.0, o["max-grad-norm"] / (norm + 1e-6)) if o["max-grad-norm"] > 0 else 1.0
        lr = learning_rate(o, t)
        b1, b2 = o["beta1"], o["beta2"]
        for name, g in grads.items():
            g = clip * g
            m = after[name + ".exp_avg"].astype(np.float64)
            v = after[name + ".exp_avg_sq"].astype(np.float64)
            m0 = state.get(name + ".exp_avg", np.zeros_like(m))
            v0 = state.get(name + ".exp_avg_sq", np.zeros_like(v))
            note("gradients", name, l2_relative_error(
                *without_key_bias(name, (m - b1 * m0) / (1 - b1), g)))
            note("second moments", name, l2_relative_error(
                *without_key_bias(name, (v - b2 * v0) / (1 - b2), g * g)))
            theta0 = state[name].astype(np.float64)
            theta = theta0 * (1 - lr * o["weight-decay"]) - lr / (1 - b1 ** t) * m / (
                np.sqrt(v) / np.sqrt(1 - b2 ** t) + o["eps"])
            note("updates", name, l2_relative_error(after[name], theta))
        state, previous = after, directory
    ok = all(error <= args.rtol for error in worst.values())
    print("%s [%s] on %d ranks, %d AdamW steps one by one: the loss, gradients and "
          "second moments of each step %s the serial program at the parallel "
          "weights, and every update follows AdamW (max relative error: %s)" %
          (args.model, args.plan, devices, args.steps, "match" if ok else "DO NOT MATCH",
           ", ".join("%s %.2e at %s" % (kind, error, where[kind])
                     for kind, error in worst.items())))
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
