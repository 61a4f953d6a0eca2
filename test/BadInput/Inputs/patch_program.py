#!/usr/bin/python3
"""Replaces a byte string in a Galvatron program file by another of the same
length and repairs the header's CRC-32, so that the change reaches the
validator and the runtime instead of failing the checksum.

  patch_program.py IN.gxp OUT.gxp OLD NEW
"""
import struct
import sys
import zlib

HEADER = 32


def main(argv):
    source, target, old, new = argv[1], argv[2], argv[3].encode(), argv[4].encode()
    if len(old) != len(new):
        sys.exit("OLD and NEW must have the same length")
    with open(source, "rb") as f:
        data = bytearray(f.read())
    payload = bytes(data[HEADER:])
    if payload.count(old) != 1:
        sys.exit("'%s' occurs %d times in the payload" % (argv[3], payload.count(old)))
    payload = payload.replace(old, new)
    data[HEADER:] = payload
    data[24:28] = struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF)
    with open(target, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main(sys.argv)
