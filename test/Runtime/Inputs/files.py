"""Makes and damages files for the galvatron-run tests.

  files.py npy PATH DTYPE SHAPE VALUE   NumPy array of DTYPE (e.g. int64), SHAPE
                                        (e.g. 1x8) filled with VALUE
  files.py truncate PATH BYTES          keeps the first BYTES bytes
  files.py poke PATH OFFSET BYTE        overwrites one byte (negative OFFSET
                                        counts from the end)
  files.py drop IN OUT NAME             copies a safetensors file without NAME
  files.py reshape IN OUT NAME          copies a safetensors file, NAME flattened
"""

import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]), data[8 + length:]


def write_safetensors(path, header, payload):
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + payload)


def main(argv):
    command = argv[1]
    if command == "npy":
        path, dtype, shape, value = argv[2:]
        dims = [int(d) for d in shape.split("x")] if shape else []
        np.save(path, np.full(dims, float(value)).astype(dtype))
    elif command == "truncate":
        with open(argv[2], "rb") as f:
            data = f.read()
        with open(argv[2], "wb") as f:
            f.write(data[:int(argv[3])])
    elif command == "poke":
        with open(argv[2], "rb") as f:
            data = bytearray(f.read())
        data[int(argv[3])] = int(argv[4])
        with open(argv[2], "wb") as f:
            f.write(data)
    elif command in ("drop", "reshape"):
        header, payload = read_safetensors(argv[2])
        name = argv[4]
        if command == "drop":
            del header[name]
        else:
            shape = header[name]["shape"]
            header[name]["shape"] = [int(np.prod(shape))]
        write_safetensors(argv[3], header, payload)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
