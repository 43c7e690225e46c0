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
    """The PyTorch twin of a deconvnet spec: conv/pool/fc/dropout stages, or a recurrent stack + fc."""

    def __init__(self, spec, activation, input_shape, classes):
        super().__init__()
        act = {"relu": nn.ReLU, "leaky-relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
        c, h, w = input_shape
        self.stages = []
        counts = {}
        stages = spec.split(",")
        recurrent = any(s.split(":")[0] in ("rnn", "lstm", "gru") for s in stages)
        dense = sum(1 for s in stages if s.split(":")[0] == "fc")

        def name(kind):
            counts[kind] = counts.get(kind, 0) + 1
            return f"{kind}{counts[kind]}"

        shape = (c, h, w)
        for i, stage in enumerate(stages):
            parts = stage.split(":")
            last = i == len(stages) - 1
            if parts[0] == "conv":
                out, k, pad = int(parts[1]), int(parts[2]), parts[3]
                p = k // 2 if pad == "same" else 0 if pad == "valid" else int(pad)
                n = name("conv")
                setattr(self, n, nn.Conv2d(shape[0], out, k, padding=p))
                self.stages.append((n, act()))
                shape = (out, shape[1] + 2 * p - k + 1, shape[2] + 2 * p - k + 1)
            elif parts[0] in ("maxpool", "avgpool"):
                k, s = int(parts[1]), int(parts[2])
                pool = nn.MaxPool2d(k, s) if parts[0] == "maxpool" else nn.AvgPool2d(k, s)
                self.stages.append((None, pool))
                shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
            elif parts[0] == "fc":
                out = int(parts[1]) if len(parts) > 1 else classes
                n = "fc" if recurrent and dense == 1 else name("fc")
                features = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                setattr(self, n, nn.Linear(features, out))
                self.stages.append(("flatten", None))
                self.stages.append((n, None if last else act()))
                shape = (out,)
            elif parts[0] == "dropout":
                self.stages.append((None, nn.Dropout(float(parts[1]))))
            else:
                cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[parts[0]]
                hidden, layers = int(parts[1]), int(parts[2])
                self.rnn = cell(w, hidden, layers, batch_first=True)
                self.stages.append(("rnn", None))
                shape = (hidden,)

        # registered so that eval() reaches the dropout layers
        self.ops = nn.ModuleList(f for _, f in self.stages if isinstance(f, nn.Module))

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
