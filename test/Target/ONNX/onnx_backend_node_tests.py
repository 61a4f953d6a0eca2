"""Imports the ONNX backend node tests that galvatron should handle.

    onnx_backend_node_tests.py --translate galvatron-translate
        --expected FILE [--data DIR] [--update]

A test is relevant when its model uses opset 13 to 17 of the default domain
only, every node's op type is one galvatron-translate --list-onnx-ops lists
without "constant" (ops folded at import only cannot take the tests' run-time
inputs), its graph inputs and outputs have element types the dialect has
(float32, float16, bfloat16, int64, int32, bool), and no input that fixes a
shape or a mode (Reshape's shape, Slice's bounds, axes, repeats, Trilu's k,
Dropout's training_mode, ...) is a graph input (a compiler with static shapes
needs those at import, and the tests feed them at run time), and the test
data gives no negative index to a Gather (a run-time Gather is an embedding
lookup with indices in [0, size)). Each relevant
test is imported with the default clean-up. Prints "imported X of Y relevant" and
fails when a test listed in FILE (one name a line) no longer imports;
--update rewrites FILE with the tests that import now.
"""

import argparse
import collections
import concurrent.futures
import os
import subprocess
import sys

import onnx
import onnx.numpy_helper

SUPPORTED_TYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.BOOL,
}


# Inputs the importer needs as constants, by op type and position.
IMPORT_TIME_INPUTS = {
    "ConstantOfShape": {0}, "Dropout": {2}, "Expand": {1}, "Range": {0, 1, 2},
    "ReduceSum": {1}, "Reshape": {1}, "Slice": {1, 2, 3, 4}, "Split": {1},
    "Squeeze": {1}, "Tile": {1}, "Trilu": {1}, "Unsqueeze": {1},
}


def runtime_ops(translate):
    listing = subprocess.run([translate, "--list-onnx-ops"], check=True,
                             capture_output=True, text=True).stdout
    return {line.split()[0] for line in listing.splitlines()
            if line.strip() and "constant" not in line.split()[1:]}


def negative_gather_indices(path, model, graph_inputs):
    """Whether the test data feeds negative indices to a Gather: a run-time
    gather is an embedding lookup, which takes indices in [0, size)."""
    names = [value.name for value in model.graph.input]
    positions = {names.index(node.input[1]) for node in model.graph.node
                 if node.op_type == "Gather" and node.input[1] in graph_inputs}
    folder = os.path.dirname(path)
    for data_set in sorted(os.listdir(folder)):
        for position in positions:
            tensor_path = os.path.join(folder, data_set, "input_%d.pb" % position)
            if os.path.isfile(tensor_path):
                tensor = onnx.TensorProto()
                with open(tensor_path, "rb") as handle:
                    tensor.ParseFromString(handle.read())
                if (onnx.numpy_helper.to_array(tensor) < 0).any():
                    return True
    return False


def exclusion(path, ops):
    """Why a test is not relevant, or None."""
    model = onnx.load(path, load_external_data=False)
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    if not 13 <= opsets.get("ai.onnx", 0) <= 17:
        return "use another opset"
    graph_inputs = {value.name for value in model.graph.input}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ops:
            return "use unsupported ops"
    for node in model.graph.node:
        for position in IMPORT_TIME_INPUTS.get(node.op_type, ()):
            if position < len(node.input) and node.input[position] in graph_inputs:
                return "give shapes or modes at run time"
    if negative_gather_indices(path, model, graph_inputs):
        return "feed negative Gather indices at run time"
    values = list(model.graph.input) + list(model.graph.output)
    if not all(value.type.HasField("tensor_type") and
               value.type.tensor_type.elem_type in SUPPORTED_TYPES
               for value in values):
        return "use unsupported element types"
    return None


def imports(translate, path):
    result = subprocess.run([translate, "--import-onnx", path, "-o", os.devnull],
                            capture_output=True, text=True)
    return result.returncode == 0, result.stderr.strip().splitlines()[-1:] or [""]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--translate", required=True)
    parser.add_argument("--expected", required=True)
    parser.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    ops = runtime_ops(args.translate)
    tests = sorted(name for name in os.listdir(args.data)
                   if os.path.isfile(os.path.join(args.data, name, "model.onnx")))
    reasons = {name: exclusion(os.path.join(args.data, name, "model.onnx"), ops)
               for name in tests}
    relevant = [name for name in tests if reasons[name] is None]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(relevant, pool.map(
            lambda name: imports(args.translate, os.path.join(args.data, name, "model.onnx")),
            relevant)))
    imported = sorted(name for name, (ok, _) in results.items() if ok)
    print("imported %d of %d relevant ONNX backend node tests (%d tests in total)"
          % (len(imported), len(relevant), len(tests)))
    excluded = collections.Counter(reason for reason in reasons.values() if reason)
    print("not relevant: " + ", ".join("%d %s" % (count, reason)
                                        for reason, count in sorted(excluded.items())))
    for name in relevant:
        ok, message = results[name]
        if not ok and args.verbose:
            print("  not imported: %s: %s" % (name, message[0]))

    if args.update:
        with open(args.expected, "w") as handle:
            handle.write("".join(name + "\n" for name in imported))
        return 0
    with open(args.expected) as handle:
        expected = [line.strip() for line in handle if line.strip()]
    regressions = [name for name in expected if name not in imported]
    for name in regressions:
        reason = results[name][1][0] if name in results else "no longer relevant"
        print("REGRESSION: %s: %s" % (name, reason))
    newly = [name for name in imported if name not in expected]
    if newly:
        print("newly importing (add with --update): " + " ".join(newly))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
