"""Byte-level tokenization of a text: one token per byte, vocabulary 256.

  /usr/bin/python3 utils/tokenize_bytes.py [INPUT] OUTPUT.bin [--val VAL.bin --val-fraction 0.05]

Reads INPUT (or standard input) and writes its bytes as little-endian uint16
tokens, the layout nanoGPT's prepare.py and llm.c write and galvatron-run
reads with --data-dtype uint16. With --val, the last --val-fraction of the
tokens goes to a separate validation file.
"""

import argparse
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="[INPUT] OUTPUT.bin")
    parser.add_argument("--val", help="validation tokens file")
    parser.add_argument("--val-fraction", type=float, default=0.05)
    args = parser.parse_args()
    if len(args.paths) > 2:
        parser.error("expected [INPUT] OUTPUT.bin")
    output = args.paths[-1]
    if len(args.paths) == 2:
        with open(args.paths[0], "rb") as f:
            data = f.read()
    else:
        data = sys.stdin.buffer.read()
    if not data:
        print("tokenize_bytes.py: the input is empty", file=sys.stderr)
        return 1
    tokens = np.frombuffer(data, dtype=np.uint8).astype("<u2")
    split = len(tokens)
    if args.val:
        if not 0.0 < args.val_fraction < 1.0:
            parser.error("--val-fraction must lie in (0, 1)")
        split = len(tokens) - int(len(tokens) * args.val_fraction)
        tokens[split:].tofile(args.val)
    tokens[:split].tofile(output)
    print(f"tokenize_bytes.py: {split} tokens to {output}"
          + (f", {len(tokens) - split} to {args.val}" if args.val else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
