"""Finite-difference checks of the vector-Jacobian rules, through the tools.

For each op (or variant), a one-layer model feeds parameters through the op
into logits [2, 4, 8] and a cross-entropy loss. galvatron-compile --train
(optimizer=none) builds the step; one galvatron-run step gives the loss and,
in its checkpoint, the gradient g of every parameter. Two more runs at the
parameters ± h·v (v random normal) give the central difference
(L(θ + h·v) − L(θ − h·v)) / 2h (extrapolated from h and h/2), which must
match the directional derivative g·v within 1e-2 relative. Everything runs
in f32.

  vjp_fd.py GALVATRON_COMPILE GALVATRON_RUN WORK_DIR [NAME...]
"""

import json
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "Runtime", "Inputs"))
from preset_reference import read_checkpoint, read_safetensors  # noqa: E402

TOOLS = {}
STEP = 1e-2
TOLERANCE = 1e-2
# Directional derivatives below this are compared absolutely: the f32 loss
# carries about 1e-7 of rounding, which a difference quotient magnifies.
FLOOR = 1e-2
POSITIVE = "uniform(5.000000e-01, 1.500000e+00)"
SIGNED = "uniform(-1.000000e+00, 1.000000e+00)"
OUT = "tensor<2x4x8xf32>"


def t(shape):
    return f"tensor<{shape}xf32>"


# name: (parameters {name: (shape, init)}, body producing %y of 64 elements
# with type y_type). Parameters are read as %<name>; %ids is the layer input.
def unary(op, init=SIGNED, attrs=""):
    return ({"a": ("2x4x8", init)},
            f"%y = galvatron.{op} %a{attrs} : {OUT}", OUT)


def binary(op, init_b=SIGNED, init_a=SIGNED):
    return ({"a": ("2x4x8", init_a), "b": ("8", init_b)},
            f"%y = galvatron.{op} %a, %b : ({OUT}, {t('8')}) -> {OUT}", OUT)


CASES = {
    "neg": unary("neg"),
    "abs": unary("abs"),
    "exp": unary("exp"),
    "log": unary("log", POSITIVE),
    "sqrt": unary("sqrt", POSITIVE),
    "rsqrt": unary("rsqrt", POSITIVE),
    "reciprocal": unary("reciprocal", POSITIVE),
    "tanh": unary("tanh"),
    "erf": unary("erf"),
    "sigmoid": unary("sigmoid"),
    "relu": unary("relu"),
    "silu": unary("silu"),
    "gelu": unary("gelu"),
    "gelu_tanh": ({"a": ("2x4x8", SIGNED)},
                  f"%y = galvatron.gelu %a approximate = tanh : {OUT}", OUT),
    "add": binary("add"),
    "sub": binary("sub"),
    "mul": binary("mul"),
    "div": binary("div", POSITIVE),
    "pow": binary("pow", SIGNED, POSITIVE),
    "max": binary("max"),
    "min": binary("min"),
    "select": ({"a": ("2x4x8", SIGNED), "b": ("8", SIGNED)},
               "%zero = galvatron.constant dense<0.0> : tensor<f32>\n"
               f"%c = galvatron.compare gt, %a, %zero : ({OUT}, tensor<f32>) "
               "-> tensor<2x4x8xi1>\n"
               f"%y = galvatron.select %c, %a, %b : (tensor<2x4x8xi1>, {OUT}, "
               f"{t('8')}) -> {OUT}", OUT),
    "matmul": ({"a": ("2x4x3", SIGNED), "b": ("3x8", SIGNED)},
               f"%y = galvatron.matmul %a, %b : ({t('2x4x3')}, {t('3x8')}) "
               f"-> {OUT}", OUT),
    "matmul_transposed": ({"a": ("2x3x4", SIGNED), "b": ("2x8x3", SIGNED)},
                          "%y = galvatron.matmul %a, %b {transpose_lhs = true, "
                          f"transpose_rhs = true}} : ({t('2x3x4')}, "
                          f"{t('2x8x3')}) -> {OUT}", OUT),
    "linear": ({"a": ("2x4x3", SIGNED), "w": ("3x8", SIGNED), "b": ("8", SIGNED)},
               f"%y = galvatron.linear %a, %w, %b : ({t('2x4x3')}, {t('3x8')}, "
               f"{t('8')}) -> {OUT}", OUT),
    "linear_transposed": ({"a": ("2x4x3", SIGNED), "w": ("8x3", SIGNED)},
                          "%y = galvatron.linear %a, %w {transpose_weight = "
                          f"true}} : ({t('2x4x3')}, {t('8x3')}) -> {OUT}", OUT),
    "embedding": ({"table": ("8x8", SIGNED)},
                  "%y = galvatron.embedding %table, %ids : "
                  f"({t('8x8')}, tensor<2x4xi64>) -> {OUT}", OUT),
    "layer_norm": ({"a": ("2x4x8", SIGNED), "w": ("8", SIGNED),
                    "b": ("8", SIGNED)},
                   f"%y = galvatron.layer_norm %a, %w, %b : ({OUT}, {t('8')}, "
                   f"{t('8')}) -> {OUT}", OUT),
    "rms_norm": ({"a": ("2x4x8", SIGNED), "w": ("8", SIGNED)},
                 f"%y = galvatron.rms_norm %a, %w : ({OUT}, {t('8')}) -> {OUT}",
                 OUT),
    "softmax": ({"a": ("2x4x8", SIGNED)},
                f"%s = galvatron.softmax %a {{axis = 1 : i64}} : {OUT}\n"
                "%k = galvatron.constant dense<4.0> : tensor<f32>\n"
                f"%y = galvatron.mul %s, %k : ({OUT}, tensor<f32>) -> {OUT}",
                OUT),
    "transpose": ({"a": ("2x8x4", SIGNED)},
                  f"%y = galvatron.transpose %a, [0, 2, 1] : {t('2x8x4')} -> "
                  f"{OUT}", OUT),
    "slice": ({"a": ("2x8x16", SIGNED)},
              "%y = galvatron.slice %a [0, 0, 1] to [2, 8, 16] step [1, 2, 2] "
              f": {t('2x8x16')} -> {OUT}", OUT),
    "concat": ({"a": ("2x4x3", SIGNED), "b": ("2x4x5", SIGNED)},
               "%y = galvatron.concat %a, %b {axis = 2 : i64} : "
               f"({t('2x4x3')}, {t('2x4x5')}) -> {OUT}", OUT),
    "split": ({"a": ("2x4x16", SIGNED)},
              "%p:2 = galvatron.split %a {axis = 2 : i64, sizes = array<i64: "
              f"8, 8>}} : {t('2x4x16')} -> {OUT}, {OUT}\n"
              f"%y = galvatron.mul %p#0, %p#1 : ({OUT}, {OUT}) -> {OUT}", OUT),
    "broadcast": ({"a": ("1x8", SIGNED)},
                  f"%y = galvatron.broadcast %a : {t('1x8')} -> {OUT}", OUT),
    "reduce_sum": ({"a": ("2x4x8x3", SIGNED)},
                   f"%y = galvatron.reduce_sum %a, [3] : {t('2x4x8x3')} -> "
                   f"{OUT}", OUT),
    "reduce_mean": ({"a": ("2x4x8x3", SIGNED)},
                    f"%y = galvatron.reduce_mean %a, [3] : {t('2x4x8x3')} -> "
                    f"{OUT}", OUT),
    "reduce_max": ({"a": ("2x4x8x3", SIGNED)},
                   f"%y = galvatron.reduce_max %a, [3] : {t('2x4x8x3')} -> "
                   f"{OUT}", OUT),
    "rotary": ({"a": ("2x4x8", SIGNED)},
               f"%y = galvatron.rotary %a {{seq_axis = 1 : i64}} : {OUT}", OUT),
    "rotary_interleaved": ({"a": ("2x4x8", SIGNED)},
                           "%y = galvatron.rotary %a {seq_axis = 1 : i64, "
                           f"interleaved = true, rotary_dim = 4 : i64}} : {OUT}",
                           OUT),
    "attention": ({"q": ("2x2x4x4", SIGNED), "k": ("2x2x4x4", SIGNED),
                   "v": ("2x2x4x4", SIGNED)},
                  "%y = galvatron.attention %q, %k, %v : ("
                  f"{t('2x2x4x4')}, {t('2x2x4x4')}, {t('2x2x4x4')}) -> "
                  f"{t('2x2x4x4')}", t("2x2x4x4")),
    "attention_causal_gqa": ({"q": ("2x2x4x4", SIGNED), "k": ("2x1x4x4", SIGNED),
                              "v": ("2x1x4x4", SIGNED)},
                             "%y = galvatron.attention %q, %k, %v {causal = "
                             f"true}} : ({t('2x2x4x4')}, {t('2x1x4x4')}, "
                             f"{t('2x1x4x4')}) -> {t('2x2x4x4')}",
                             t("2x2x4x4")),
    "attention_bias": ({"q": ("2x2x4x4", SIGNED), "k": ("2x2x4x4", SIGNED),
                        "v": ("2x2x4x4", SIGNED), "m": ("1x2x4x4", SIGNED)},
                       "%y = galvatron.attention %q, %k, %v, %m {scale = 1.0 : "
                       f"f64}} : ({t('2x2x4x4')}, {t('2x2x4x4')}, "
                       f"{t('2x2x4x4')}, {t('1x2x4x4')}) -> {t('2x2x4x4')}",
                       t("2x2x4x4")),
}


def module(name):
    parameters, body, y_type = CASES[name]
    lines = ['module attributes {galvatron.model = "fd"} {']
    for p, (shape, init) in parameters.items():
        lines.append(f"  galvatron.parameter @{p} : {t(shape)} "
                     f"{{init = #galvatron.init<{init}>}}")
    lines.append('  func.func @main(%arg: tensor<2x4xi64> {galvatron.name = '
                 f'"input_ids"}}) -> {OUT} {{')
    lines.append('    %0 = galvatron.layer head "f" (%ids = %arg : '
                 f'tensor<2x4xi64>) -> {OUT} {{')
    for p, (shape, _) in parameters.items():
        lines.append(f"      %{p} = galvatron.param @{p} : {t(shape)}")
    lines += ["      " + line for line in body.split("\n")]
    if y_type != OUT:
        lines.append(f"      %logits = galvatron.reshape %y : {y_type} -> {OUT}")
    lines.append(f"      galvatron.yield {'%logits' if y_type != OUT else '%y'} "
                 f": {OUT}")
    lines.append("    }")
    lines.append(f"    return %0 : {OUT}")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def run(command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def loss_of(program, directory, tag, extra):
    log = os.path.join(directory, tag + ".jsonl")
    tokens = os.path.join(directory, "..", "tokens.bin")
    run([TOOLS["run"], program, "--steps", "1",
         "--data", tokens, "--peak-tflops", "1", "--threads", "1",
         "--log", log, "--quiet"] + extra)
    with open(log) as f:
        return json.loads(f.readline())["loss"]


def check(work, name):
    directory = os.path.join(work, name)
    os.makedirs(directory, exist_ok=True)
    source = os.path.join(directory, "model.mlir")
    with open(source, "w") as f:
        f.write(module(name))
    program = os.path.join(directory, "step.gxp")
    run([TOOLS["compile"], source,
         "--train=optimizer=none max-grad-norm=0 checkpoint=none", "-o",
         program, "--quiet"])
    weights = os.path.join(directory, "weights.safetensors")
    loss_of(program, directory, "base",
            ["--save-params", weights, "--checkpoint", directory])
    theta = read_safetensors(weights)
    grads = read_checkpoint(directory)
    rng = np.random.RandomState(sum(map(ord, name)))
    direction = {p: rng.standard_normal(v.shape) for p, v in theta.items()}
    analytic = sum(float((grads[p + ".grad"].numpy().astype(np.float64) *
                          direction[p]).sum()) for p in theta)
    def central(step):
        losses = []
        for sign in (1, -1):
            moved = {p: v.numpy().astype(np.float64) + sign * step * direction[p]
                     for p, v in theta.items()}
            tag = f"moved{sign * step:+g}"
            path = os.path.join(directory, tag + ".safetensors")
            write_safetensors(path, moved)
            losses.append(loss_of(program, directory, tag,
                                  ["--params", path]))
        return (losses[0] - losses[1]) / (2 * step)

    # Richardson extrapolation cancels the h² term of the central difference.
    numeric = (4 * central(STEP / 2) - central(STEP)) / 3
    error = abs(numeric - analytic) / max(abs(numeric), abs(analytic), FLOOR)
    verdict = "matches" if error <= TOLERANCE else "DIFFERS FROM"
    print(f"{name}: gradient {verdict} finite differences (g.v {analytic:.5f}, "
          f"central difference {numeric:.5f}, relative error {error:.1e})")
    return error <= TOLERANCE


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    TOOLS["compile"], TOOLS["run"], work = argv[1:4]
    os.makedirs(work, exist_ok=True)
    rng = np.random.RandomState(7)
    rng.randint(0, 8, 64).astype("<u2").tofile(os.path.join(work, "tokens.bin"))
    names = argv[4:] or list(CASES)
    results = [check(work, name) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
