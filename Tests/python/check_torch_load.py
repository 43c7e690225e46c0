#!/usr/bin/env python3
"""Load a deconvnet checkpoint into the PyTorch module of the same architecture with strict=True.

Usage: check_torch_load.py CHECKPOINT.safetensors
Builds the module from the checkpoint's metadata (model_spec, activation, input_shape, class_names),
drops the optimizer.* tensors, calls load_state_dict(strict=True), runs one forward pass, and prints
the logits of an all-0.5 image so they can be compared with `deconvnet`. Exits 0 on success.
"""
import json
import sys

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file


class Spec(nn.Module):
    """The PyTorch twin of a deconvnet spec: conv/pool/fc/dropout/bn/lrn/adaptive-pool/flatten stages,
    or a recurrent stack + fc. A `bn` right after a conv or fc takes that stage's activation (conv → BN →
    ReLU). `layer(name)` is the module whose output is deconvnet's layer `name` (after its activation)."""

    def __init__(self, spec, activation, input_shape, classes):
        super().__init__()
        act = {"relu": nn.ReLU, "leaky-relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
        c, h, w = input_shape
        self.stages = []
        self.outputs = {}
        counts = {}
        stages = spec.split(",")
        recurrent = any(s.split(":")[0] in ("rnn", "lstm", "gru") for s in stages)
        dense = sum(1 for s in stages if s.split(":")[0] == "fc")

        def name(kind):
            counts[kind] = counts.get(kind, 0) + 1
            return f"{kind}{counts[kind]}"

        def options(fields):
            return {k: float(v) for k, v in (f.split("=", 1) for f in fields)}

        def add(n, module, activation=None):
            """Stage `n` (None for the unnamed ones) as `module`, then `activation`; records the layer's output module."""
            if n is not None:
                setattr(self, n, module)
                self.stages.append((n, activation))
            else:
                self.stages.append((None, module))
            self.outputs[layer_name] = activation if activation is not None else module

        shape = (c, h, w)
        for i, stage in enumerate(stages):
            parts = stage.split(":")
            last = i == len(stages) - 1
            before_bn = not last and stages[i + 1].split(":")[0] == "bn"
            after_weights = i > 0 and stages[i - 1].split(":")[0] in ("conv", "fc")
            if parts[0] == "conv":
                out, k, pad = int(parts[1]), int(parts[2]), parts[3]
                p = k // 2 if pad == "same" else 0 if pad == "valid" else int(pad)
                layer_name = n = name("conv")
                add(n, nn.Conv2d(shape[0], out, k, padding=p), None if before_bn else act())
                shape = (out, shape[1] + 2 * p - k + 1, shape[2] + 2 * p - k + 1)
            elif parts[0] in ("maxpool", "avgpool"):
                k, s = int(parts[1]), int(parts[2])
                layer_name = name("pool")
                add(None, nn.MaxPool2d(k, s) if parts[0] == "maxpool" else nn.AvgPool2d(k, s))
                shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
            elif parts[0] in ("adaptiveavgpool", "globalavgpool"):
                sides = [1, 1] if parts[0] == "globalavgpool" else [int(v) for v in parts[1].split("x")]
                oh, ow = sides[0], sides[-1]
                layer_name = name("pool")
                add(None, nn.AdaptiveAvgPool2d((oh, ow)))
                shape = (shape[0], oh, ow)
            elif parts[0] == "bn":
                o = options(parts[1:])
                layer_name = n = name("bn")
                cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
                add(n, cls(shape[0], eps=o.get("eps", 1e-5), momentum=o.get("momentum", 0.1)), act() if after_weights else None)
            elif parts[0] == "lrn":
                o = options(parts[2:])
                layer_name = name("lrn")
                add(None, nn.LocalResponseNorm(int(parts[1]), alpha=o.get("alpha", 1e-4), beta=o.get("beta", 0.75), k=o.get("k", 1.0)))
            elif parts[0] == "flatten":
                layer_name = name("flatten")
                add(None, nn.Flatten())
                shape = (shape[0] * shape[1] * shape[2],) if len(shape) == 3 else shape
            elif parts[0] == "fc":
                out = int(parts[1]) if len(parts) > 1 else classes
                layer_name = n = "fc" if recurrent and dense == 1 else name("fc")
                features = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                self.stages.append(("flatten", None))
                add(n, nn.Linear(features, out), None if last or before_bn else act())
                shape = (out,)
            elif parts[0] == "dropout":
                layer_name = name("dropout")
                add(None, nn.Dropout(float(parts[1])))
            else:
                cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[parts[0]]
                hidden, layers = int(parts[1]), int(parts[2])
                self.rnn = cell(w, hidden, layers, batch_first=True)
                self.stages.append(("rnn", None))
                shape = (hidden,)

        # registered so that eval() reaches the dropout layers
        self.ops = nn.ModuleList(f for _, f in self.stages if isinstance(f, nn.Module))

    def layer(self, name):
        """The module whose output is deconvnet's layer `name`."""
        return self.outputs[name]

    def forward(self, x):
        for n, f in self.stages:
            if n == "flatten":
                x = x.flatten(1)
            elif n == "rnn":
                o, _ = self.rnn(x[:, 0])
                x = o[:, -1]
            else:
                if n is not None:
                    x = getattr(self, n)(x)
                if f is not None:
                    x = f(x)
        return x


def main(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = {k: v for k, v in load_file(path).items() if not k.startswith("optimizer.")}
    shape = json.loads(meta["input_shape"])
    classes = json.loads(meta["class_names"])
    model = Spec(meta["model_spec"], meta["activation"], shape, len(classes)).eval()
    model.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        logits = model(torch.full([1] + shape, 0.5))
    print(json.dumps({"loaded": len(tensors), "logits": logits[0].tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
