"""Runs the relevant ONNX backend node tests end to end and checks their
shipped outputs.

    onnx_node_runner.py --translate T --compile C --run R --expected FILE
        [--data DIR] [--update] [--verbose]

A test is relevant as the importer's test defines it
(test/Target/ONNX/onnx_backend_node_tests.py). Each relevant test is
imported (T --import-onnx), compiled (C) and run (R) on every data set it
ships; every output must match the shipped one within ONNX's backend-test
tolerances (rtol 1e-3, atol 1e-7; exact for integers and booleans). bfloat16
values (raw bits in .npy files) compare as floats within one bfloat16 step
(2^-7 relative): ONNX 1.12's reference truncates float to bfloat16 where the
runtime rounds to nearest even. Prints
"P of N relevant ONNX backend node tests pass" and fails when a test listed
in FILE (one name a line) no longer passes; --update rewrites FILE.
"""

import argparse
import concurrent.futures
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Target", "ONNX"))
import onnx_backend_node_tests as node_tests  # noqa: E402

RTOL, ATOL = 1e-3, 1e-7


def read_tensor(path):
    tensor = onnx.TensorProto()
    with open(path, "rb") as handle:
        tensor.ParseFromString(handle.read())
    return onnx.numpy_helper.to_array(tensor)


def step(command):
    """Runs a tool; returns its last error line, or None on success."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def bfloat16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def compare(name, ours, expected, bfloat16):
    if ours.shape != expected.shape:
        return f"{name}: shape {list(ours.shape)}, expected {list(expected.shape)}"
    rtol = RTOL
    if bfloat16:
        ours, expected, rtol = bfloat16_values(ours), bfloat16_values(expected), 2**-7
    if expected.dtype.kind in "fc":
        close = np.isclose(ours.astype(np.float64), expected.astype(np.float64),
                           rtol=rtol, atol=ATOL, equal_nan=True)
        if not close.all():
            worst = np.abs(ours.astype(np.float64) - expected).max()
            return f"{name}: differs by up to {worst:.3g}"
        return None
    if not np.array_equal(ours, expected.astype(ours.dtype)):
        return f"{name}: values differ"
    return None


def run_test(args, name):
    folder = os.path.join(args.data, name)
    model = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value.name for value in model.graph.input
              if value.name not in initializers]
    outputs = [(value.name, value.type.tensor_type.elem_type ==
                onnx.TensorProto.BFLOAT16) for value in model.graph.output]
    with tempfile.TemporaryDirectory() as work:
        ir, program = os.path.join(work, "m.mlir"), os.path.join(work, "m.gxp")
        failure = (step([args.translate, "--import-onnx",
                         os.path.join(folder, "model.onnx"), "-o", ir]) or
                   step([args.compile, ir, "-o", program, "--quiet"]))
        if failure:
            return failure
        for data_set in sorted(glob.glob(os.path.join(folder, "test_data_set_*"))):
            command = [args.run, program, "--quiet", "--threads=1",
                       "--output-dir", os.path.join(work, "out")]
            for index, input_name in enumerate(inputs):
                path = os.path.join(work, f"input_{index}.npy")
                np.save(path, read_tensor(os.path.join(data_set, f"input_{index}.pb")))
                command.append(f"--input={input_name}={path}")
            failure = step(command)
            if failure:
                return failure
            for index, (output_name, bfloat16) in enumerate(outputs):
                expected = read_tensor(os.path.join(data_set, f"output_{index}.pb"))
                ours = np.load(os.path.join(work, "out", output_name + ".npy"))
                failure = compare(output_name, ours, expected, bfloat16)
                if failure:
                    return f"{os.path.basename(data_set)}: {failure}"
    return None


def main():
    parser = argparse.ArgumentParser()
    for tool in ("translate", "compile", "run"):
        parser.add_argument("--" + tool, required=True)
    parser.add_argument("--expected", required=True)
    parser.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    ops = node_tests.runtime_ops(args.translate)
    tests = sorted(name for name in os.listdir(args.data)
                   if os.path.isfile(os.path.join(args.data, name, "model.onnx")))
    relevant = [name for name in tests if node_tests.exclusion(
        os.path.join(args.data, name, "model.onnx"), ops) is None]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failures = dict(zip(relevant, pool.map(lambda name: run_test(args, name),
                                               relevant)))
    passed = sorted(name for name, failure in failures.items() if failure is None)
    print(f"{len(passed)} of {len(relevant)} relevant ONNX backend node tests "
          f"pass ({len(tests)} tests in total)")
    for name in relevant:
        if failures[name] and args.verbose:
            print(f"  failing: {name}: {failures[name]}")

    if args.update:
        with open(args.expected, "w") as handle:
            handle.write("".join(name + "\n" for name in passed))
        return 0
    with open(args.expected) as handle:
        expected = [line.strip() for line in handle if line.strip()]
    regressions = [name for name in expected if name not in passed]
    for name in regressions:
        print(f"REGRESSION: {name}: {failures.get(name) or 'no longer relevant'}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
