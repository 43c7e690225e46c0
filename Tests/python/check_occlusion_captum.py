#!/usr/bin/env python3
"""Compare `deconvnet occlude --npy` with Captum's Occlusion on the same checkpoint and image.

Usage: check_occlusion_captum.py CHECKPOINT.safetensors OUT_DIR
OUT_DIR is the --out directory of `deconvnet occlude ... --npy`: input.npy, attribution.npy, class-score.npy
and occlusion.json (window, stride, fill, target, score). Builds the PyTorch twin of the checkpoint
(check_torch_load.Spec, strict load), runs captum.attr.Occlusion with sliding_window_shapes=(C, w, w),
strides=(C, s, s), baselines=fill (one value per channel) and the same target, on logits (--score logit)
or softmax probabilities (--score prob), and prints the largest differences as JSON. Exits 0 when the
attribution agrees to 1e-4 of its largest magnitude plus 1e-6 (float rounding). Captum uses ceil((H-w)/s)+1 positions; the
comparison is meaningful when s divides H-w (always at stride 1).
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


def main(checkpoint, out):
    from captum.attr import Occlusion

    with safe_open(checkpoint, "pt") as f:
        meta = f.metadata()
    tensors = {k: v for k, v in load_file(checkpoint).items() if not k.startswith("optimizer.")}
    shape = json.loads(meta["input_shape"])
    classes = json.loads(meta["class_names"])
    model = Spec(meta["model_spec"], meta["activation"], shape, len(classes)).eval()
    model.load_state_dict(tensors, strict=True)

    summary = json.load(open(os.path.join(out, "occlusion.json")))
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))[None]
    ours = np.load(os.path.join(out, "attribution.npy"))
    c, w, s = shape[0], summary["window"], summary["stride"]
    baseline = torch.tensor(summary["fill"], dtype=torch.float32).view(1, c, 1, 1).expand_as(x).contiguous()
    forward = model if summary["score"] == "logit" else (lambda t: torch.softmax(model(t), dim=1))
    with torch.no_grad():
        theirs = Occlusion(forward).attribute(x, target=summary["target"], sliding_window_shapes=(c, w, w), strides=(c, s, s),
                                              baselines=baseline, perturbations_per_eval=64)[0].numpy()
    scale = max(float(np.abs(theirs).max()), 1e-12)
    difference = float(np.abs(theirs - ours).max())
    print(json.dumps({"max_abs_difference": difference, "relative": difference / scale, "max_abs_attribution": scale,
                      "positions": summary["rows"] * summary["cols"]}))
    return 0 if difference <= 1e-4 * scale + 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
