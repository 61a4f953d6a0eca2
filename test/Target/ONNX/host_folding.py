"""Checks the importer's folding of constant subgraphs against NumPy.

    host_folding.py GALVATRON-TRANSLATE WORKDIR

Each case is an ONNX model whose node takes only Constant nodes, so the
importer evaluates it on the host and returns the result as a
galvatron.constant; the values must equal NumPy's implementation of the
ONNX semantics. Prints one line per case and "N folding cases agree".
"""

import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

RANDOM = np.random.RandomState(0)
F = RANDOM.randn(3, 4, 5).astype(np.float32)
I = RANDOM.randint(-20, 20, (3, 4)).astype(np.int64)


def case(name, op, inputs, expected, **attributes):
    """A node `op` on constant `inputs` (arrays, or None for an absent
    optional input) that must fold to `expected`."""
    return name, op, inputs, np.asarray(expected), attributes


def cases():
    yield case("slice-negative-step", "Slice",
               [F, np.array([-1, 3]), np.array([-100, 0]), np.array([0, 2]), np.array([-2, -2])],
               F[-1:-100:-2, :, 3:0:-2])
    yield case("slice-clamped", "Slice", [F, np.array([1]), np.array([1000]), np.array([-1])],
               F[:, :, 1:])
    yield case("gather-negative", "Gather", [F, np.array([[-1, 0], [2, -3]])],
               np.take(F, [[3, 0], [2, 1]], axis=1), axis=1)
    yield case("concat", "Concat", [I, -I], np.concatenate([I, -I], axis=-1), axis=-1)
    yield case("expand", "Expand", [F[:, :1, :1], np.array([2, 3, 4, 5])],
               np.broadcast_to(F[:, :1, :1], (2, 3, 4, 5)))
    yield case("tile", "Tile", [I, np.array([2, 3])], np.tile(I, (2, 3)))
    yield case("range-float", "Range", [np.float32(1.5), np.float32(-2.0), np.float32(-0.75)],
               np.arange(1.5, -2.0, -0.75, dtype=np.float32))
    yield case("range-int", "Range", [np.int64(-3), np.int64(10), np.int64(4)],
               np.arange(-3, 10, 4))
    yield case("trilu-upper", "Trilu", [F, np.int64(1)], np.triu(F, 1), upper=1)
    yield case("trilu-lower", "Trilu", [F, np.int64(-1)], np.tril(F, -1), upper=0)
    yield case("where", "Where", [I > 0, I, np.array([7])], np.where(I > 0, I, 7))
    # Bool results are 1-D: a triangular bool matrix would become a tril_mask.
    yield case("less", "Less", [I.ravel(), np.array([0])], I.ravel() < 0)
    yield case("cast-truncates", "Cast", [F * 10], (F * 10).astype(np.int64),
               to=onnx.TensorProto.INT64)
    yield case("cast-to-bool", "Cast", [I.ravel()], I.ravel().astype(bool),
               to=onnx.TensorProto.BOOL)
    yield case("div-int-truncates", "Div", [I, np.array([3])], np.trunc(I / 3).astype(np.int64))
    yield case("mod-python", "Mod", [I, np.array([-3])], np.mod(I, -3))
    yield case("mod-c", "Mod", [I, np.array([-3])], np.fmod(I, -3), fmod=1)
    yield case("pow-int", "Pow", [I, np.array([3])], I ** 3)
    yield case("reduce-sum", "ReduceSum", [F, np.array([0, 2])], F.sum(axis=(0, 2), keepdims=True))
    yield case("reduce-mean", "ReduceMean", [F], F.mean(axis=1), axes=[-2], keepdims=0)
    yield case("reduce-max", "ReduceMax", [I], I.max(axis=1, keepdims=True), axes=[1])
    yield case("reduce-min", "ReduceMin", [F], F.min(keepdims=True))
    yield case("reduce-prod", "ReduceProd", [I[:, :2]], I[:, :2].prod(axis=0), axes=[0], keepdims=0)
    yield case("squeeze", "Squeeze", [F[:, :1], np.array([1])], F[:, 0])
    yield case("unsqueeze", "Unsqueeze", [I, np.array([0, -1])], I[None, :, :, None])
    yield case("transpose", "Transpose", [F], F.transpose(2, 0, 1), perm=[2, 0, 1])
    yield case("reshape", "Reshape", [F, np.array([0, -1])], F.reshape(3, 20))
    yield case("flatten", "Flatten", [F], F.reshape(12, 5), axis=2)
    yield case("constant-of-shape", "ConstantOfShape", [np.array([2, 3])],
               np.full((2, 3), 4, np.int64), value=numpy_helper.from_array(np.array([4])))
    yield case("shape-slice", "Shape", [F], np.array([4, 5]), start=-2)
    yield case("size", "Size", [F], np.array(60))
    yield case("split", "Split", [I, np.array([1, 3])], I[:, 1:], axis=1)
    yield case("clip", "Clip", [F, np.float32(-0.5), np.float32(0.5)], np.clip(F, -0.5, 0.5))
    yield case("round-half-even", "Round", [np.array([0.5, 1.5, 2.5, -0.5, -1.7], np.float32)],
               np.round(np.array([0.5, 1.5, 2.5, -0.5, -1.7], np.float32)))
    yield case("sign", "Sign", [I], np.sign(I))
    yield case("xor", "Xor", [I.ravel() > 0, I.ravel() < 5],
               np.logical_xor(I.ravel() > 0, I.ravel() < 5))
    yield case("erf", "Erf", [F], np.vectorize(__import__("math").erf)(F).astype(np.float32))
    yield case("max-variadic", "Max", [F, F[:1], -F], np.maximum(np.maximum(F, F[:1]), -F))
    yield case("mean-variadic", "Mean", [F, 2 * F, F[0]], (F + 2 * F + F[0]) / 3)


def parse_constant(text):
    """Values of the single galvatron.constant the function returns."""
    match = re.search(r"galvatron\.constant dense<(.*)> : tensor<([0-9x]*)x?(f32|i64|i1)>", text)
    if not match:
        raise ValueError("no constant in:\n" + text)
    body, dims, element = match.groups()
    shape = [int(d) for d in dims.split("x") if d]
    body = body.replace("true", "1").replace("false", "0")
    values = np.array(eval(body), dtype=np.float64)  # nested lists or a splat
    return np.broadcast_to(values, shape) if values.ndim == 0 else values.reshape(shape)


def main():
    translate, workdir = sys.argv[1], sys.argv[2]
    os.makedirs(workdir, exist_ok=True)
    count = 0
    for name, op, inputs, expected, attributes in cases():
        # Constant nodes: float initializers would be weights, not constants.
        nodes, names = [], []
        for index, value in enumerate(inputs):
            array = np.asarray(value)
            if array.dtype == np.float64:
                array = array.astype(np.float32)
            names.append("in%d" % index)
            nodes.append(helper.make_node("Constant", [], [names[-1]],
                                          value=numpy_helper.from_array(array)))
        outputs = ["out"] if op != "Split" else ["unused", "out"]
        nodes.append(helper.make_node(op, names, outputs, name="/" + name, **attributes))
        dtype = np.dtype(np.float32) if expected.dtype == np.float64 else expected.dtype
        elem = onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[dtype]
        graph = helper.make_graph(nodes, name, [], [helper.make_tensor_value_info("out", elem, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        path = os.path.join(workdir, name + ".onnx")
        onnx.save(model, path)
        ir = subprocess.run([translate, "--import-onnx", path, "--no-cleanup",
                             "--mlir-print-elementsattrs-with-hex-if-larger=-1"],
                            capture_output=True, text=True)
        if ir.returncode:
            sys.exit("%s: import failed: %s" % (name, ir.stderr.strip()))
        actual = parse_constant(ir.stdout)
        if actual.shape != expected.shape or not np.allclose(actual, expected.astype(np.float64),
                                                              rtol=1e-6, atol=1e-6):
            sys.exit("%s: folded %s, expected %s" % (name, actual, expected))
        print("ok %s" % name)
        count += 1
    print("%d folding cases agree" % count)


if __name__ == "__main__":
    main()
