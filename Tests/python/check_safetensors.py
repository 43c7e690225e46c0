#!/usr/bin/env python3
"""Cross-check a safetensors file written by deconvnet against the reference `safetensors` package.

usage: check_safetensors.py PATH [--expect JSON] [--values JSON] [--metadata JSON] [--exact]

  --expect    {"name": [shape, ...], ...}: the exact set of tensor names and their shapes
  --values    {"name": [v0, v1, ...], ...}: flattened float32 values of some tensors
  --metadata  {"key": "value", ...}: the exact metadata
  --exact     re-serialize with safetensors.numpy.save and require identical bytes
              (holds when all tensors are F32 and written in name order)

Exits 0 when every check passes and prints one line per tensor.
"""
import argparse
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--expect", type=json.loads)
    parser.add_argument("--values", type=json.loads)
    parser.add_argument("--metadata", type=json.loads)
    parser.add_argument("--exact", action="store_true")
    args = parser.parse_args()

    tensors = load_file(args.path)
    with safe_open(args.path, "np") as f:
        metadata = f.metadata() or {}
        names = list(f.keys())
    for name in names:
        t = tensors[name]
        print(f"{name}: {t.dtype} {list(t.shape)}")
        assert t.dtype == np.float32, f"{name}: dtype {t.dtype}, expected float32"

    if args.expect is not None:
        assert sorted(names) == sorted(args.expect), f"names {sorted(names)} != expected {sorted(args.expect)}"
        for name, shape in args.expect.items():
            assert list(tensors[name].shape) == shape, f"{name}: shape {list(tensors[name].shape)} != {shape}"
    if args.values is not None:
        for name, values in args.values.items():
            got = tensors[name].reshape(-1)
            want = np.array(values, dtype=np.float32)
            assert np.array_equal(got, want), f"{name}: values {got.tolist()} != {want.tolist()}"
    if args.metadata is not None:
        assert metadata == args.metadata, f"metadata {metadata} != {args.metadata}"
    if args.exact:
        with open(args.path, "rb") as f:
            ours = f.read()
        reference = save(tensors, metadata=metadata or None)
        assert ours == reference, f"bytes differ from safetensors.numpy.save:\n{ours[:200]!r}\n{reference[:200]!r}"
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
