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
        acts = {"relu": nn.ReLU, "leaky-relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
        act = acts[activation]
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
            positional = [f for f in parts if "=" not in f and f not in ("ceil", "exclude-pad")]
            options = dict(f.split("=", 1) if "=" in f else (f, "") for f in parts[len(positional):])
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
                n = name("conv")
                setattr(self, n, nn.Conv2d(shape[0], out, (kh, kw), stride=stride, groups=groups))
                stage_act = acts[options["act"]]() if "act" in options else act()
                self.stages.append(("pad", (left, right, top, bottom)))
                self.stages.append((n, stage_act))
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
                self.stages.append((None, pool))
                shape = tuple(pool(torch.zeros((1,) + shape)).shape[1:])
            elif parts[0] == "fc":
                out = int(positional[1]) if len(positional) > 1 else classes
                n = "fc" if recurrent and dense == 1 else name("fc")
                features = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                setattr(self, n, nn.Linear(features, out))
                self.stages.append(("flatten", None))
                stage_act = acts[options["act"]]() if "act" in options else None if last else act()
                self.stages.append((n, stage_act))
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
        self.ops = nn.ModuleList(f for n, f in self.stages if n != "pad" and isinstance(f, nn.Module))

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
