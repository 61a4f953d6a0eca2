#!/usr/bin/env python3
"""Import time against node count for deep generated models.

    /usr/bin/python3 benchmarks/onnx_import.py [--layers 12 24 48 96]
        [--hidden 64] [--translate build/bin/galvatron-translate]
        [--repeat 3] [--timing]

Writes GPT-2 graphs of growing depth with onnx.helper, node for node what
torch.onnx exports for test/python/galvatron_models.py's GPT-2 at opset 14
(scope names, decomposed LayerNorm, Conv1D as Gemm between reshapes, tanh
GELU, a Where causal mask, a padding mask; torch itself takes minutes to
export 96 layers because it compares every pair of initializers). Then times
`galvatron-translate --import-onnx` without and with the clean-up passes
(best of --repeat runs, wall clock of the whole process, so startup and
printing are included). Import should grow linearly with the node count:
the "us/node" columns should stay flat. --timing prints MLIR's pass timing
for the deepest model.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GraphWriter:
    def __init__(self, seed):
        self.nodes, self.initializers = [], []
        self.random = np.random.RandomState(seed)
        self.count = 0

    def weight(self, name, shape):
        self.initializers.append(numpy_helper.from_array(
            (0.02 * self.random.randn(*shape)).astype(np.float32), name))
        return name

    def constant(self, value, dtype=np.int64):
        self.count += 1
        name = "onnx::Constant_%d" % self.count
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, scope, op, inputs, outputs=1, **attributes):
        self.count += 1
        name = "%s/%s_%d" % (scope, op, self.count)
        names = [name + "_output_%d" % i for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=name, **attributes))
        return names[0] if outputs == 1 else names

    def layer_norm(self, scope, x, prefix, hidden):
        mean = self.node(scope, "ReduceMean", [x], axes=[-1])
        centered = self.node(scope, "Sub", [x, mean])
        square = self.node(scope, "Pow", [centered, self.constant(2.0, np.float32)])
        variance = self.node(scope, "ReduceMean", [square], axes=[-1])
        shifted = self.node(scope, "Add", [variance, self.constant(1e-5, np.float32)])
        normalized = self.node(scope, "Div", [centered, self.node(scope, "Sqrt", [shifted])])
        scaled = self.node(scope, "Mul", [normalized, self.weight(prefix + ".weight", [hidden])])
        return self.node(scope, "Add", [scaled, self.weight(prefix + ".bias", [hidden])])

    def conv1d(self, scope, x, prefix, rows, inner, outer, shape):
        flat = self.node(scope, "Reshape", [x, self.constant([rows, inner])])
        product = self.node(scope, "Gemm", [flat, self.weight(prefix + ".weight", [inner, outer]),
                                            self.weight(prefix + ".bias", [outer])])
        return self.node(scope, "Reshape", [product, self.constant(shape + [outer])])


def gpt2_graph(layers, hidden=64, heads=4, vocab=256, batch=2, seq=16, seed=0):
    g = GraphWriter(seed)
    rows, head_dim = batch * seq, hidden // heads
    causal = g.constant(np.tril(np.ones((seq, seq), bool))[None, None], bool)
    top = "/transformer"
    mask = g.node(top, "Unsqueeze", ["attention_mask", g.constant([1, 2])])
    mask = g.node(top, "Cast", [mask], to=TensorProto.FLOAT)
    mask = g.node(top, "Sub", [g.constant(1.0, np.float32), mask])
    mask = g.node(top, "Mul", [mask, g.constant(np.finfo(np.float32).min, np.float32)])
    tokens = g.node(top + "/wte", "Gather", [g.weight("transformer.wte.weight", [vocab, hidden]), "input_ids"])
    positions = g.node(top + "/wpe", "Gather", [g.weight("transformer.wpe.weight", [seq, hidden]),
                                                g.constant([list(range(seq))])])
    x = g.node(top, "Add", [tokens, positions])
    for layer in range(layers):
        scope, prefix = "%s/h.%d" % (top, layer), "transformer.h.%d" % layer
        attn = scope + "/attn"
        normed = g.layer_norm(scope + "/ln_1", x, prefix + ".ln_1", hidden)
        qkv = g.conv1d(attn + "/c_attn", normed, prefix + ".attn.c_attn", rows, hidden, 3 * hidden, [batch, seq])
        q, k, v = g.node(attn, "Split", [qkv, g.constant([hidden] * 3)], outputs=3, axis=2)
        split_shape = g.constant([batch, seq, heads, head_dim])
        q = g.node(attn, "Transpose", [g.node(attn, "Reshape", [q, split_shape])], perm=[0, 2, 1, 3])
        k = g.node(attn, "Transpose", [g.node(attn, "Reshape", [k, split_shape])], perm=[0, 2, 3, 1])
        v = g.node(attn, "Transpose", [g.node(attn, "Reshape", [v, split_shape])], perm=[0, 2, 1, 3])
        scores = g.node(attn, "Div", [g.node(attn, "MatMul", [q, k]),
                                      g.constant(np.sqrt(head_dim), np.float32)])
        scores = g.node(attn, "Where", [causal, scores, g.constant(np.finfo(np.float32).min, np.float32)])
        scores = g.node(attn, "Add", [scores, mask])
        probs = g.node(attn, "Softmax", [scores], axis=-1)
        context = g.node(attn, "Transpose", [g.node(attn, "MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.node(attn, "Reshape", [context, g.constant([batch, seq, hidden])])
        x = g.node(scope, "Add", [x, g.conv1d(attn + "/c_proj", context, prefix + ".attn.c_proj",
                                              rows, hidden, hidden, [batch, seq])])
        normed = g.layer_norm(scope + "/ln_2", x, prefix + ".ln_2", hidden)
        mlp = scope + "/mlp"
        fc = g.conv1d(mlp + "/c_fc", normed, prefix + ".mlp.c_fc", rows, hidden, 4 * hidden, [batch, seq])
        act = mlp + "/act"
        half = g.node(act, "Mul", [fc, g.constant(0.5, np.float32)])
        cube = g.node(act, "Mul", [g.node(act, "Pow", [fc, g.constant(3.0, np.float32)]),
                                   g.constant(0.044715, np.float32)])
        inner = g.node(act, "Mul", [g.node(act, "Add", [fc, cube]),
                                    g.constant(np.sqrt(2 / np.pi), np.float32)])
        gelu = g.node(act, "Mul", [half, g.node(act, "Add", [g.node(act, "Tanh", [inner]),
                                                              g.constant(1.0, np.float32)])])
        x = g.node(scope, "Add", [x, g.conv1d(mlp + "/c_proj", gelu, prefix + ".mlp.c_proj",
                                              rows, 4 * hidden, hidden, [batch, seq])])
    normed = g.layer_norm(top + "/ln_f", x, "transformer.ln_f", hidden)
    head = g.node("/lm_head", "MatMul", [normed, g.weight("lm_head.weight", [hidden, vocab])])
    graph = helper.make_graph(
        g.nodes, "gpt2-%d" % layers,
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, seq])],
        [helper.make_tensor_value_info(head, TensorProto.FLOAT, [batch, seq, vocab])],
        g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def best_time(command, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[12, 24, 48, 96])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--translate", default=os.path.join(ROOT, "build", "bin", "galvatron-translate"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timing", action="store_true")
    args = parser.parse_args()

    print("%-7s %7s %7s %9s %11s %9s %13s %9s" % (
        "layers", "nodes", "MB", "IR layers", "import s", "us/node", "+clean-up s", "us/node"))
    with tempfile.TemporaryDirectory() as folder:
        path = None
        for layers in args.layers:
            path = os.path.join(folder, "gpt2-%d.onnx" % layers)
            proto = gpt2_graph(layers, hidden=args.hidden)
            onnx.save(proto, path)
            nodes = len(proto.graph.node)
            ir = subprocess.run([args.translate, "--import-onnx", path], check=True,
                                capture_output=True, text=True).stdout
            ir_layers = ir.count("galvatron.layer ")
            raw = best_time([args.translate, "--import-onnx", path, "--no-cleanup",
                             "-o", os.devnull], args.repeat)
            full = best_time([args.translate, "--import-onnx", path, "-o", os.devnull],
                             args.repeat)
            print("%-7d %7d %7.1f %9d %11.3f %9.1f %13.3f %9.1f" % (
                layers, nodes, os.path.getsize(path) / 1e6, ir_layers, raw,
                1e6 * raw / nodes, full, 1e6 * full / nodes))
            sys.stdout.flush()
        if args.timing and path:
            subprocess.run([args.translate, "--import-onnx", path, "-o", os.devnull,
                            "--mlir-timing"], check=True)


if __name__ == "__main__":
    main()
