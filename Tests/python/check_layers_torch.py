#!/usr/bin/env python3
"""Compare deconvnet's convolution and pooling layers with PyTorch's on the same values.

Usage: check_layers_torch.py CASES.json
CASES.json is a list of cases, each {"name", "kind": "conv" | "maxpool" | "avgpool", "input": [N, C, H, W]
values flat, "shape": [N, C, H, W], "kernel": [kh, kw], "stride", "pad": [top, left, bottom, right],
"groups", "ceil", "include_pad", "weight", "bias" (conv), "output_gradient", and deconvnet's "output"
and "input_gradient"}. Convolutions run as F.conv2d after F.pad (asymmetric padding), pools as
F.max_pool2d / F.avg_pool2d with symmetric padding (PyTorch has no other). Prints one JSON line per
case with the largest error relative to the largest value, and exits 1 when one exceeds 1e-5.
"""
import json
import sys

import torch
import torch.nn.functional as F


def run(case):
    shape = case["shape"]
    x = torch.tensor(case["input"], dtype=torch.float32).reshape(shape).requires_grad_(True)
    top, left, bottom, right = case["pad"]
    kh, kw = case["kernel"]
    if case["kind"] == "conv":
        o = len(case["bias"])
        w = torch.tensor(case["weight"], dtype=torch.float32).reshape(o, shape[1] // case["groups"], kh, kw)
        b = torch.tensor(case["bias"], dtype=torch.float32)
        y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=case["stride"], groups=case["groups"])
    else:
        assert top == left == bottom == right, "PyTorch pools pad every side alike"
        if case["kind"] == "maxpool":
            y = F.max_pool2d(x, (kh, kw), case["stride"], top, ceil_mode=case["ceil"])
        else:
            y = F.avg_pool2d(x, (kh, kw), case["stride"], top, ceil_mode=case["ceil"], count_include_pad=case["include_pad"])
    dy = torch.tensor(case["output_gradient"], dtype=torch.float32).reshape(y.shape)
    y.backward(dy)
    errors = {}
    for name, theirs in (("output", y.detach()), ("input_gradient", x.grad)):
        ours = torch.tensor(case[name], dtype=torch.float32)
        if ours.numel() != theirs.numel():
            errors[name] = f"size {ours.numel()} vs torch's {theirs.numel()} {list(theirs.shape)}"
            continue
        scale = max(theirs.abs().max().item(), 1e-30)
        errors[name] = (ours - theirs.flatten()).abs().max().item() / scale
    return errors


def main():
    cases = json.load(open(sys.argv[1]))
    failed = False
    for case in cases:
        errors = run(case)
        bad = any(isinstance(e, str) or e > 1e-5 for e in errors.values())
        failed |= bad
        print(json.dumps({"name": case["name"], "errors": errors, "ok": not bad}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
