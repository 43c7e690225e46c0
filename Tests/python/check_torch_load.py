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
        acts = {"relu": nn.ReLU, "leaky-relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
        act = acts[activation]
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

        def add(n, module, activation=None):
            """Stage `n` (None for the unnamed ones) as `module`, then `activation`; records the layer's output module."""
            if n is not None:
                setattr(self, n, module)
                self.stages.append((n, activation))
            else:
                self.stages.append((None, module))
            self.outputs[layer_name] = activation if activation is not None else module

        shape = (c, h, w)
        moved = None  # the activation of a conv or fc, which a bn right after it takes
        for i, stage in enumerate(stages):
            taken, moved = moved, None
            parts = stage.split(":")
            last = i == len(stages) - 1
            positional = [f for f in parts if "=" not in f and f not in ("ceil", "exclude-pad")]
            options = dict(f.split("=", 1) if "=" in f else (f, "") for f in parts[len(positional):])
            before_bn = not last and stages[i + 1].split(":")[0] == "bn"
            if parts[0] == "conv":
                out = int(positional[1])
                kh, kw = (int(v) for v in positional[2].split("x")) if "x" in positional[2] else (int(positional[2]),) * 2
                pad = positional[3] if len(positional) > 3 else "valid"
                if "pad" in options:
                    sides = [int(v) for v in options["pad"].split("/")]
                    top, left, bottom, right = sides * 4 if len(sides) == 1 else sides
                else:
                    top = bottom = kh // 2 if pad == "same" else 0 if pad == "valid" else int(pad)
                    left = right = kw // 2 if pad == "same" else 0 if pad == "valid" else int(pad)
                stride, groups = int(options.get("stride", 1)), int(options.get("groups", 1))
                layer_name = n = name("conv")
                stage_act = acts[options["act"]]() if "act" in options else act()
                self.stages.append(("pad", (left, right, top, bottom)))
                add(n, nn.Conv2d(shape[0], out, (kh, kw), stride=stride, groups=groups), None if before_bn else stage_act)
                moved = stage_act
                shape = (out, (shape[1] + top + bottom - kh) // stride + 1, (shape[2] + left + right - kw) // stride + 1)
            elif parts[0] in ("maxpool", "avgpool"):
                k = int(positional[1])
                s = int(positional[2]) if len(positional) > 2 else k
                p = int(options.get("pad", "0").split("/")[0])
                assert len(set(options.get("pad", "0").split("/"))) == 1, "PyTorch pools pad every side alike"
                ceil = "ceil" in options
                if parts[0] == "maxpool":
                    pool = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
                else:
                    pool = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad="exclude-pad" not in options)
                layer_name = name("pool")
                add(None, pool)
                shape = tuple(pool(torch.zeros((1,) + shape)).shape[1:])
            elif parts[0] in ("adaptiveavgpool", "globalavgpool"):
                sides = [1, 1] if parts[0] == "globalavgpool" else [int(v) for v in parts[1].split("x")]
                oh, ow = sides[0], sides[-1]
                layer_name = name("pool")
                add(None, nn.AdaptiveAvgPool2d((oh, ow)))
                shape = (shape[0], oh, ow)
            elif parts[0] == "bn":
                o = {k: float(v) for k, v in options.items()}
                layer_name = n = name("bn")
                cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
                add(n, cls(shape[0], eps=o.get("eps", 1e-5), momentum=o.get("momentum", 0.1)), taken)
            elif parts[0] == "lrn":
                o = {k: float(v) for k, v in options.items()}
                layer_name = name("lrn")
                add(None, nn.LocalResponseNorm(int(positional[1]), alpha=o.get("alpha", 1e-4), beta=o.get("beta", 0.75), k=o.get("k", 1.0)))
            elif parts[0] == "flatten":
                layer_name = name("flatten")
                add(None, nn.Flatten())
                shape = (shape[0] * shape[1] * shape[2],) if len(shape) == 3 else shape
            elif parts[0] == "fc":
                out = int(positional[1]) if len(positional) > 1 else classes
                layer_name = n = "fc" if recurrent and dense == 1 else name("fc")
                features = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                self.stages.append(("flatten", None))
                stage_act = acts[options["act"]]() if "act" in options else None if last else act()
                add(n, nn.Linear(features, out), None if before_bn else stage_act)
                moved = stage_act
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
        self.ops = nn.ModuleList(f for n, f in self.stages if n != "pad" and isinstance(f, nn.Module))

    def layer(self, name):
        """The module whose output is deconvnet's layer `name`."""
        return self.outputs[name]

    def forward(self, x):
        for n, f in self.stages:
            if n == "flatten":
                x = x.flatten(1)
            elif n == "pad":
                x = torch.nn.functional.pad(x, f)
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
