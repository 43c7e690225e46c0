#!/usr/bin/env python3
"""Check a .npy file written by deconvnet: version 1.0, float32, C order, the given shape.

usage: check_npy.py PATH --shape 2,3 [--values JSON] [--exact]

  --shape   comma-separated dimensions; empty string for a 0-d array
  --values  flattened float32 values, as a JSON list
  --exact   require the file to be byte-identical to numpy.save of the loaded array
"""
import argparse
import io
import json
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--values", type=json.loads)
    parser.add_argument("--exact", action="store_true")
    args = parser.parse_args()
    shape = tuple(int(d) for d in args.shape.split(",") if d.strip())

    with open(args.path, "rb") as f:
        version = np.lib.format.read_magic(f)
        assert version == (1, 0), f"version {version}, expected (1, 0)"
        header_shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        assert f.tell() % 64 == 0, f"data starts at {f.tell()}, not a multiple of 64"
    assert dtype == np.dtype("<f4"), f"dtype {dtype}, expected <f4"
    assert not fortran_order, "fortran_order is True"
    assert header_shape == shape, f"shape {header_shape} != {shape}"

    array = np.load(args.path)
    assert array.dtype == np.float32 and array.flags.c_contiguous
    assert array.shape == shape
    if args.values is not None:
        want = np.array(args.values, dtype=np.float32)
        assert np.array_equal(array.reshape(-1), want), f"values {array.reshape(-1).tolist()} != {want.tolist()}"
    if args.exact:
        buffer = io.BytesIO()
        np.save(buffer, array)
        with open(args.path, "rb") as f:
            ours = f.read()
        assert ours == buffer.getvalue(), f"bytes differ from numpy.save:\n{ours[:128]!r}\n{buffer.getvalue()[:128]!r}"
    print(f"{args.path}: float32 {list(shape)} ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
