"""Checks that the byte ranges galvatron-translate gives parameters hold the
initializers' values: for every `galvatron.parameter` of the imported model,
the bytes of its file at (offset, length) equal the tensor that
onnx.numpy_helper reads (embedded or external).

    check_weight_ranges.py MODEL.onnx GALVATRON-TRANSLATE
"""

import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    path = sys.argv[1]
    translate = sys.argv[2]
    ir = subprocess.run([translate, "--import-onnx", path, "--no-cleanup"],
                        check=True, capture_output=True, text=True).stdout
    model = onnx.load(path, load_external_data=False)
    tensors = {t.name: t for t in model.graph.initializer}
    folder = os.path.dirname(path)
    pattern = re.compile(r'galvatron.parameter @"?([^" ]+)"? : tensor<[^>]*> \{external = '
                         r'#galvatron.external<location = "([^"]*)"(?:, offset = (\d+))?, '
                         r'length = (\d+)(?:, key = "([^"]*)")?>\}')
    checked = 0
    for name, location, offset, length, key in pattern.findall(ir):
        tensor = tensors[key or name]
        expected = numpy_helper.to_array(tensor, base_dir=folder)
        with open(os.path.join(folder, location), "rb") as handle:
            handle.seek(int(offset or 0))
            data = handle.read(int(length))
        actual = np.frombuffer(data, dtype=expected.dtype).reshape(expected.shape)
        if not np.array_equal(actual, expected):
            sys.exit("parameter %s: bytes at %s:%s differ from the tensor" % (name, location, offset))
        checked += 1
    if not checked:
        sys.exit("no parameter with a byte range found")
    print("%d parameter byte ranges hold their tensors" % checked)


if __name__ == "__main__":
    main()
