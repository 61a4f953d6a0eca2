"""Writes small ONNX models for the importer's edge cases with onnx.helper.

    make_onnx_cases.py OUTDIR

Each case is OUTDIR/<case>.onnx (external data cases put their weights next
to it, and 'symlink-external' also writes OUTDIR.outside.bin, outside the
folder). test/Target/ONNX/errors.test and edge-cases.test import them.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def model(nodes, inputs, outputs, initializers=(), opset=17, extra_opsets=()):
    graph = helper.make_graph(nodes, "case", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = 8
    return proto


def tensor(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def external_weight(name, location, shape=(4, 3)):
    weight = TensorProto()
    weight.name = name
    weight.data_type = FLOAT
    weight.dims.extend(shape)
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    return weight


def matmul_with(weight):
    return model([helper.make_node("MatMul", ["x", weight.name], ["y"], name="/proj/MatMul")],
                 [tensor("x", FLOAT, [2, 4])], [tensor("y", FLOAT, [2, 3])], [weight])


def rotary_model(seq, dim, theta, buffers=False):
    """x·cos + rotate_half(x)·sin as torch exports Hugging Face's LLaMA: the
    cos/sin tables folded into Constant nodes, or with `buffers` as
    initializers (persistent buffers "rotary_emb.cos_cached", ...)."""
    inv_freq = (1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim))).astype(np.float32)
    freqs = np.outer(np.arange(seq, dtype=np.float32), inv_freq).astype(np.float32)
    emb = np.concatenate([freqs, freqs], axis=-1)[None, None]
    half = dim // 2
    tables = [const("rotary_emb.cos_cached", np.cos(emb).astype(np.float32)),
              const("rotary_emb.sin_cached", np.sin(emb).astype(np.float32))]
    cos, sin = ("rotary_emb.cos_cached", "rotary_emb.sin_cached") if buffers else ("cos", "sin")
    nodes = [] if buffers else [
        helper.make_node("Constant", [], ["cos"], name="/rotary/Cos", value=tables[0]),
        helper.make_node("Constant", [], ["sin"], name="/rotary/Sin", value=tables[1])]
    nodes += [
        helper.make_node("Mul", ["x", cos], ["x_cos"], name="/rotary/Mul"),
        helper.make_node("Slice", ["x", "zero", "half", "last"], ["x1"], name="/rotary/Slice"),
        helper.make_node("Slice", ["x", "half", "end", "last"], ["x2"], name="/rotary/Slice_1"),
        helper.make_node("Neg", ["x2"], ["minus_x2"], name="/rotary/Neg"),
        helper.make_node("Concat", ["minus_x2", "x1"], ["rotated"], name="/rotary/Concat", axis=-1),
        helper.make_node("Mul", ["rotated", sin], ["rotated_sin"], name="/rotary/Mul_1"),
        helper.make_node("Add", ["x_cos", "rotated_sin"], ["y"], name="/rotary/Add"),
    ]
    shape = [1, 2, seq, dim]
    return model(nodes, [tensor("x", FLOAT, shape)], [tensor("y", FLOAT, shape)],
                 [const("zero", np.array([0], np.int64)), const("half", np.array([half], np.int64)),
                  const("end", np.array([dim], np.int64)), const("last", np.array([-1], np.int64))] +
                 (tables if buffers else []))


def write(outdir, name, proto):
    onnx.save(proto, os.path.join(outdir, name + ".onnx"))


def error_cases(outdir):
    x23 = tensor("x", FLOAT, [2, 3])
    y23 = tensor("y", FLOAT, [2, 3])
    write(outdir, "unsupported-op", model(
        [helper.make_node("Hardmax", ["x"], ["y"], name="/model/head/Hardmax")], [x23], [y23]))
    write(outdir, "custom-domain", model(
        [helper.make_node("FusedMatMul", ["x", "x"], ["y"], name="fused", domain="com.microsoft")],
        [x23], [y23], extra_opsets=[("com.microsoft", 1)]))
    write(outdir, "dangling", model(
        [helper.make_node("Add", ["x", "missing"], ["y"], name="/add")], [x23], [y23]))
    write(outdir, "unsorted", model(
        [helper.make_node("Relu", ["t"], ["y"], name="second"),
         helper.make_node("Relu", ["x"], ["t"], name="first")], [x23], [y23]))
    write(outdir, "duplicate-output", model(
        [helper.make_node("Relu", ["x"], ["y"], name="a"),
         helper.make_node("Neg", ["x"], ["y"], name="b")], [x23], [y23]))
    write(outdir, "opset11", model(
        [helper.make_node("Relu", ["x"], ["y"])], [x23], [y23], opset=11))
    write(outdir, "missing-output", model(
        [helper.make_node("Relu", ["x"], ["y"])], [x23], [y23, tensor("nowhere", FLOAT, [2])]))
    write(outdir, "runtime-compare", model(
        [helper.make_node("Equal", ["x", "x"], ["y"], name="/cmp")], [x23],
        [tensor("y", TensorProto.BOOL, [2, 3])]))
    write(outdir, "bad-conv", model(
        [helper.make_node("Conv", ["img", "k"], ["y"], name="/conv", kernel_shape=[3, 3],
                          strides=[1, 1], pads=[1, 1, 1, 1])],
        [tensor("img", FLOAT, [1, 3, 8, 8])], [tensor("y", FLOAT, [1, 4, 8, 8])],
        [const("k", np.ones((4, 3, 3, 3), np.float32))]))
    write(outdir, "shape-mismatch", model(
        [helper.make_node("MatMul", ["a", "b"], ["y"], name="/mm")],
        [tensor("a", FLOAT, [2, 3]), tensor("b", FLOAT, [4, 5])], [tensor("y", FLOAT, [2, 5])]))
    write(outdir, "bad-attribute", model(
        [helper.make_node("Softmax", ["x"], ["y"], name="/softmax", axis=1.5)], [x23], [y23]))
    write(outdir, "wrong-arity", model(
        [helper.make_node("Add", ["x"], ["y"], name="/add")], [x23], [y23]))
    write(outdir, "huge-constant", model(
        [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="/fill"),
         helper.make_node("Add", ["x", "big"], ["y"])],
        [x23], [y23], [const("shape", np.array([100000, 100000], np.int64))]))
    # An empty initializer whose other dimensions multiply past int64: its
    # strides once overflowed (found by the fuzz test), wherever the zero is.
    for name, dims in [("empty-overflowing-shape", [0, 2**31, 2**31, 2**31]),
                       ("empty-last-overflowing-shape", [2**31, 2**31, 2**31, 0])]:
        write(outdir, name, model(
            [helper.make_node("Add", ["x", "empty"], ["y"], name="/add")],
            [x23], [y23], [helper.make_tensor("empty", FLOAT, dims, [])]))
    write(outdir, "unstructured-constant", model(
        [helper.make_node("Constant", [], ["c"], name="/table",
                          value=const("v", np.random.RandomState(0).rand(70000).astype(np.float32))),
         helper.make_node("Add", ["x", "c"], ["y"], name="/add")],
        [tensor("x", FLOAT, [70000])], [tensor("y", FLOAT, [70000])]))
    write(outdir, "double-input", model(
        [helper.make_node("Relu", ["x"], ["y"])], [tensor("x", TensorProto.DOUBLE, [2])],
        [tensor("y", TensorProto.DOUBLE, [2])]))
    write(outdir, "declared-output-mismatch", model(
        [helper.make_node("Relu", ["x"], ["y"])], [x23], [tensor("y", FLOAT, [2, 4])]))
    write(outdir, "training-dropout", model(
        [helper.make_node("Dropout", ["x", "", "train"], ["y"], name="/drop")], [x23], [y23],
        [const("train", np.array(True))]))

    # Malformed files.
    valid = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [tensor("x", FLOAT, [2, 64])],
                  [tensor("y", FLOAT, [2, 64])],
                  [const("w", np.ones((64, 64), np.float32))]).SerializeToString()
    with open(os.path.join(outdir, "truncated.onnx"), "wb") as handle:
        handle.write(valid[: len(valid) // 2])
    with open(os.path.join(outdir, "garbage.onnx"), "wb") as handle:
        handle.write(bytes(range(7, 250, 3)) * 3)
    with open(os.path.join(outdir, "empty.onnx"), "wb"):
        pass

    # External data that must be refused.
    write(outdir, "missing-external", matmul_with(external_weight("w", "absent.bin")))
    write(outdir, "absolute-external", matmul_with(external_weight("w", "/etc/hostname")))
    write(outdir, "dotdot-external", matmul_with(external_weight("w", "../weights.bin")))
    outside = os.path.abspath(outdir) + ".outside.bin"
    with open(outside, "wb") as handle:
        handle.write(np.ones((4, 3), np.float32).tobytes())
    link = os.path.join(outdir, "link.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(outside, link)
    write(outdir, "symlink-external", matmul_with(external_weight("w", "link.bin")))
    with open(os.path.join(outdir, "short.bin"), "wb") as handle:
        handle.write(b"\0" * 16)
    write(outdir, "short-external", matmul_with(external_weight("w", "short.bin")))

    # And one it reads: offset 16 into a subfolder's file.
    os.makedirs(os.path.join(outdir, "data"), exist_ok=True)
    with open(os.path.join(outdir, "data", "weights.bin"), "wb") as handle:
        handle.write(b"\0" * 16 + np.arange(12, dtype=np.float32).tobytes())
    weight = external_weight("w", "data/weights.bin")
    for key, value in (("offset", "16"), ("length", "48")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    write(outdir, "external", matmul_with(weight))


def edge_cases(outdir):
    # Shape arithmetic on static shapes folds away (Shape, Gather,
    # Unsqueeze, Concat, ConstantOfShape, Equal, Where, Expand, Identity).
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="/shape"),
        helper.make_node("Gather", ["shape", "one"], ["cols"], name="/cols", axis=0),
        helper.make_node("Unsqueeze", ["cols", "zero_axis"], ["cols1"], name="/unsq"),
        helper.make_node("Concat", ["minus_one", "cols1"], ["new_shape"], name="/concat", axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["flat"], name="/reshape"),
        helper.make_node("ConstantOfShape", ["shape_len"], ["ones"], name="/cos",
                         value=const("v", np.array([1], np.int64))),
        helper.make_node("Mul", ["ones", "minus_one"], ["minus_ones"], name="/neg"),
        helper.make_node("Equal", ["shape", "minus_ones"], ["is_dynamic"], name="/eq"),
        helper.make_node("Where", ["is_dynamic", "ones", "shape"], ["target"], name="/where"),
        helper.make_node("Expand", ["bias", "target"], ["bias_full"], name="/expand"),
        helper.make_node("Identity", ["bias_full"], ["bias_id"], name="/id"),
        helper.make_node("Add", ["x", "bias_id"], ["y"], name="/add"),
    ]
    write(outdir, "shape-arithmetic", model(
        nodes, [tensor("x", FLOAT, [2, 6])],
        [tensor("y", FLOAT, [2, 6]), tensor("flat", FLOAT, [2, 6])],
        [const("one", np.array(1, np.int64)), const("zero_axis", np.array([0], np.int64)),
         const("minus_one", np.array([-1], np.int64)), const("shape_len", np.array([2], np.int64)),
         const("bias", np.array([[0.5]], np.float32))]))

    # Trilu on a run-time tensor becomes a select with a triangular mask.
    write(outdir, "runtime-trilu", model(
        [helper.make_node("Trilu", ["x", "k"], ["upper"], name="/triu", upper=1),
         helper.make_node("Trilu", ["x"], ["lower"], name="/tril", upper=0)],
        [tensor("x", FLOAT, [3, 4])], [tensor("upper", FLOAT, [3, 4]), tensor("lower", FLOAT, [3, 4])],
        [const("k", np.array(1, np.int64))]))

    # Gathers: a scalar index is a slice, scattered indices an embedding.
    write(outdir, "gathers", model(
        [helper.make_node("Gather", ["x", "first"], ["row"], name="/row", axis=1),
         helper.make_node("Gather", ["x", "picks"], ["picked"], name="/picked", axis=1)],
        [tensor("x", FLOAT, [4, 5, 6])],
        [tensor("row", FLOAT, [4, 6]), tensor("picked", FLOAT, [4, 2, 2, 6])],
        [const("first", np.array(0, np.int64)), const("picks", np.array([[4, 0], [-1, 2]], np.int64))]))

    # Rotary embedding of a long sequence: torch folds the cos/sin tables
    # into Constant nodes with more elements than a galvatron.constant holds.
    write(outdir, "rotary-long", rotary_model(seq=2048, dim=64, theta=500000.0))

    # Float buffers stored as initializers are constants, not weights: the
    # rotary tables of persistent buffers, an additive causal mask.
    write(outdir, "rotary-buffers", rotary_model(seq=16, dim=8, theta=10000.0, buffers=True))
    # A buffer that starts like a sine table (row 0 all zero) with a tiny
    # second row is no rotary table: it stays a parameter (its implied
    # frequency, 1e-30, once overflowed the importer's row estimate).
    lookalike = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    lookalike[0] = 0
    lookalike[1, 1] = 1e-30
    write(outdir, "rotary-lookalike", model(
        [helper.make_node("Add", ["x", "lookalike"], ["y"], name="/add")],
        [tensor("x", FLOAT, [16, 8])], [tensor("y", FLOAT, [16, 8])],
        [const("lookalike", lookalike)]))
    causal = np.triu(np.full((4, 4), np.finfo(np.float32).min, np.float32), 1)
    write(outdir, "mask-buffer", model(
        [helper.make_node("Add", ["scores", "attn.bias"], ["y"], name="/attn/Add")],
        [tensor("scores", FLOAT, [1, 2, 4, 4])], [tensor("y", FLOAT, [1, 2, 4, 4])],
        [const("attn.bias", causal[None, None])]))

    # torch.onnx merges initializers with equal values: the scales of two
    # norms are one initializer, the second read through an Identity named
    # after it; each is a parameter. A matrix that two nodes read directly
    # is tied in the source model and stays one parameter.
    ones = np.ones(4, np.float32)
    write(outdir, "merged-initializers", model(
        [helper.make_node("Identity", ["ln_1.weight"], ["ln_2.weight"], name="Identity_0"),
         helper.make_node("Mul", ["x", "ln_1.weight"], ["a"], name="/ln_1/Mul"),
         helper.make_node("MatMul", ["a", "proj.weight"], ["b"], name="/proj/MatMul"),
         helper.make_node("Mul", ["b", "ln_2.weight"], ["c"], name="/ln_2/Mul"),
         helper.make_node("MatMul", ["c", "proj.weight"], ["y"], name="/proj/MatMul_1")],
        [tensor("x", FLOAT, [2, 4])], [tensor("y", FLOAT, [2, 4])],
        [const("ln_1.weight", ones),
         const("proj.weight", np.arange(16, dtype=np.float32).reshape(4, 4) / 16)]))

    # Weights stored as raw bytes and as (packed) float_data both get byte
    # ranges in the file; a scalar float initializer is a constant.
    packed = helper.make_tensor("packed", FLOAT, [2, 3], [1, 2, 3, 4, 5, 6])
    write(outdir, "initializers", model(
        [helper.make_node("Mul", ["x", "raw"], ["t"], name="/mul"),
         helper.make_node("Add", ["t", "packed"], ["u"], name="/add"),
         helper.make_node("Mul", ["u", "scale"], ["y"], name="/scale")],
        [tensor("x", FLOAT, [2, 3])], [tensor("y", FLOAT, [2, 3])],
        [const("raw", np.arange(6, dtype=np.float32).reshape(2, 3)), packed,
         const("scale", np.array(0.25, np.float32))]))


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    error_cases(outdir)
    edge_cases(outdir)


if __name__ == "__main__":
    main()
