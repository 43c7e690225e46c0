#!/usr/bin/env python3
"""Compare deconvnet's projections with Captum's NeuronDeconvolution and NeuronGuidedBackprop.

Usage: check_projection_captum.py DIR
DIR holds model.safetensors (a deconvnet checkpoint), input.npy (1, C, H, W), and cases.json: a list of
{"layer", "method" (deconvnet or guided), "unit" [c, y, x], "file"}, each file deconvnet's projection
(C, H, W) of that unit of that layer. Builds the PyTorch twin (check_torch_load.Spec, strict load, eval
mode), runs Captum on the module whose output is the layer (after its activation) with the same
neuron, and prints the cosine of each pair. Exits 0 when every cosine is at least 0.9999.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_torch_load import Spec  # noqa: E402


def main(directory):
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    path = os.path.join(directory, "model.safetensors")
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = {k: v for k, v in load_file(path).items() if not k.startswith("optimizer.")}
    shape = json.loads(meta["input_shape"])
    model = Spec(meta["model_spec"], meta["activation"], shape, len(json.loads(meta["class_names"]))).eval()
    model.load_state_dict(tensors, strict=True)
    x = torch.from_numpy(np.load(os.path.join(directory, "input.npy")))
    methods = {"deconvnet": NeuronDeconvolution, "guided": NeuronGuidedBackprop}
    results, ok = [], True
    for case in json.load(open(os.path.join(directory, "cases.json"))):
        method = methods[case["method"]](model, model.layer(case["layer"]))
        theirs = method.attribute(x.clone().requires_grad_(True), neuron_selector=tuple(case["unit"]))[0].detach().numpy().ravel()
        ours = np.load(os.path.join(directory, case["file"])).ravel()
        norm = float(np.linalg.norm(ours) * np.linalg.norm(theirs))
        cosine = float(np.dot(ours, theirs)) / norm if norm > 0 else (1.0 if not ours.any() and not theirs.any() else 0.0)
        ok &= cosine >= 0.9999
        results.append({"layer": case["layer"], "method": case["method"], "cosine": cosine, "norm": float(np.linalg.norm(theirs))})
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
