#!/usr/bin/env python3
"""Compare deconvnet's normalisation and pooling layers with PyTorch's on the same inputs and weights.

Usage: check_normalization_torch.py CASE.safetensors ...
Each file, written by Tests/NetTests/LayerTorchParityTests.swift, holds one layer's case: tensors
`input` (N, C, ...), `output_gradient`, deconvnet's `output` and `input_gradient`, and for batch norm
`weight`, `bias`, `running_mean`, `running_var` (before the pass) and deconvnet's `weight_gradient`,
`bias_gradient`, `running_mean_after`, `running_var_after`; metadata `layer` (lrn, bn, adaptiveavgpool,
flatten) with its settings and, for bn, `training` ("true"/"false"). Runs torch's module on `input`,
back-propagates `output_gradient`, and prints per file the largest difference of each compared tensor
relative to torch's largest magnitude. Exits 0 when every one is at most 1e-5.
"""
import json
import sys

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

TOLERANCE = 1e-5


def module(meta, t):
    kind = meta["layer"]
    if kind == "lrn":
        return nn.LocalResponseNorm(int(meta["size"]), alpha=float(meta["alpha"]), beta=float(meta["beta"]), k=float(meta["k"]))
    if kind == "adaptiveavgpool":
        return nn.AdaptiveAvgPool2d((int(meta["height"]), int(meta["width"])))
    if kind == "flatten":
        return nn.Flatten()
    if kind == "bn":
        channels = t["weight"].numel()
        cls = nn.BatchNorm2d if t["input"].dim() == 4 else nn.BatchNorm1d
        bn = cls(channels, eps=float(meta["eps"]), momentum=float(meta["momentum"]))
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(t[name])
        return bn.train(meta["training"] == "true")
    raise ValueError(f"unknown layer {kind}")


def compare(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    t = load_file(path)
    m = module(meta, t)
    x = t["input"].clone().requires_grad_(True)
    y = m(x)
    y.backward(t["output_gradient"])
    pairs = {"output": (t["output"], y.detach()), "input_gradient": (t["input_gradient"], x.grad)}
    if meta["layer"] == "bn":
        pairs["weight_gradient"] = (t["weight_gradient"], m.weight.grad)
        pairs["bias_gradient"] = (t["bias_gradient"], m.bias.grad)
        pairs["running_mean_after"] = (t["running_mean_after"], m.running_mean)
        pairs["running_var_after"] = (t["running_var_after"], m.running_var)
        pairs["num_batches_tracked_after"] = (t["num_batches_tracked_after"].float(), m.num_batches_tracked.float().reshape(t["num_batches_tracked_after"].shape))
    errors = {}
    for name, (ours, theirs) in pairs.items():
        if ours.shape != theirs.shape:
            errors[name] = f"shape {list(ours.shape)} vs torch's {list(theirs.shape)}"
            continue
        scale = max(float(theirs.abs().max()), 1e-30)
        errors[name] = float((ours - theirs).abs().max()) / scale
    return errors


def main(paths):
    ok = True
    results = {}
    for path in paths:
        errors = compare(path)
        results[path] = errors
        ok &= all(isinstance(e, float) and e <= TOLERANCE for e in errors.values())
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
