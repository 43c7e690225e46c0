#!/usr/bin/env python3
"""References for `deconvnet import`: PyTorch models exported to ONNX, and checks of what deconvnet
computes on them against PyTorch, onnxruntime and Captum.

Usage:
  onnx_reference.py export KIND DIR   KIND: small | alexnet | vgg11. Writes DIR/model.onnx (the exporter's
                                      external data beside it), DIR/model.pt (the PyTorch weights),
                                      DIR/image.png (the input size, so no resize), DIR/classes.txt,
                                      DIR/meta.json (mean, std, input, conv5 channels, occlusion window);
                                      for small also DIR/legacy.onnx (the TorchScript exporter, which keeps
                                      BatchNormalization after Linear), DIR/state_dict.safetensors, and a
                                      model with nn.LocalResponseNorm in both exporters' forms,
                                      DIR/lrn.onnx and DIR/lrn-legacy.onnx, with DIR/lrn-input.npy and
                                      PyTorch's logits on it, DIR/lrn-logits.npy.
  onnx_reference.py check KIND DIR    Reads what the Swift test wrote from deconvnet: DIR/occ/input.npy (the
                                      model input), DIR/logits.npy, DIR/occ/attribution.npy and
                                      DIR/project-{deconvnet,guided}-C{,-at}.npy (the strongest unit of channel
                                      C, and the same unit named by its position), and compares: logits with PyTorch's
                                      and onnxruntime's (1e-4 relative), projections with Captum's
                                      NeuronDeconvolution / NeuronGuidedBackprop at the unit deconvnet projects
                                      (cosine >= 0.9999), occlusion with Captum's Occlusion (1e-4 of the map's
                                      range). Prints the figures as JSON; exits 1 if one check fails.

torchvision models use weights=None (random weights, nothing downloaded); `small` is a CNN with batch
norm and strided convolutions trained here for 20 SGD steps on random data.
"""
import json
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn

# torchvision's PyPI wheel may carry CUDA-built operators (nms, roi_align) that fail to register against
# a CPU torch; the model definitions used here do not need them.
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def small():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(),
        nn.Conv2d(24, 24, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(24 * 4 * 4, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(20):
        x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 5, (16,))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval(), (3, 32, 32), 5


def lrn_model():
    """A CNN with nn.LocalResponseNorm, which neither exporter writes as ONNX's LRN."""
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.LocalResponseNorm(5, alpha=0.5, beta=0.75, k=2.0),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 7 * 7, 4)).eval()


def build(kind):
    if kind == "small":
        return small()
    import torchvision
    torch.manual_seed(0)
    make = {"alexnet": torchvision.models.alexnet, "vgg11": torchvision.models.vgg11}[kind]
    return make(weights=None).eval(), (3, 224, 224), 1000


def convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def export(kind, out):
    from PIL import Image
    model, shape, classes = build(kind)
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    x = torch.rand(1, *shape)
    torch.onnx.export(model, (x,), os.path.join(out, "model.onnx"), dynamo=True)
    if kind == "small":
        torch.onnx.export(model, (x,), os.path.join(out, "legacy.onnx"), dynamo=False, input_names=["image"],
                          dynamic_axes={"image": {0: "N"}})
        lrn, x_lrn = lrn_model(), torch.rand(1, 3, 16, 16)
        torch.onnx.export(lrn, (x_lrn,), os.path.join(out, "lrn.onnx"), dynamo=True)
        torch.onnx.export(lrn, (x_lrn,), os.path.join(out, "lrn-legacy.onnx"), dynamo=False, opset_version=17)
        np.save(os.path.join(out, "lrn-input.npy"), x_lrn[0].numpy())
        with torch.no_grad():
            np.save(os.path.join(out, "lrn-logits.npy"), lrn(x_lrn)[0].numpy())
        from safetensors.torch import save_file
        save_file({k: v.float() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")},
                  os.path.join(out, "state_dict.safetensors"))
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (shape[1], shape[2], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(os.path.join(out, "image.png"))
    with open(os.path.join(out, "classes.txt"), "w") as f:
        f.write("".join(f"class {i}\n" for i in range(classes)))
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if kind != "small" else ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    window, stride = (32, 16) if kind != "small" else (8, 4)
    # conv5 units that fire on the image (a dead unit has no strongest position to agree on)
    x = (torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    captured = {}
    handle = convs(model)[4].register_forward_hook(lambda m, i, o: captured.update(out=o.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    strongest = captured["out"][0].amax(dim=(1, 2))
    channels = [int(c) for c in torch.argsort(strongest, descending=True)[:3 if kind != "vgg11" else 1]]
    json.dump({"mean": mean, "std": std, "input": list(shape), "channels": channels,
               "window": window, "stride": stride, "layer": "conv5"}, open(os.path.join(out, "meta.json"), "w"))


def check(kind, out):
    import onnxruntime
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop, Occlusion
    torch.set_num_threads(2)
    model, shape, classes = build(kind)
    model.load_state_dict(torch.load(os.path.join(out, "model.pt")))
    model.eval()
    meta = json.load(open(os.path.join(out, "meta.json")))
    x = torch.from_numpy(np.load(os.path.join(out, "occ", "input.npy")))[None].float()
    results, ok = {}, True

    with torch.no_grad():
        theirs = model(x)[0].numpy()
    session = onnxruntime.InferenceSession(os.path.join(out, "model.onnx"), providers=["CPUExecutionProvider"])
    ort = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0][0]
    ours = np.load(os.path.join(out, "logits.npy")).reshape(-1)
    scale = float(np.abs(theirs).max())
    for name, other in [("torch", theirs), ("onnxruntime", ort)]:
        relative = float(np.abs(ours - other).max()) / scale
        results[f"logits_vs_{name}"] = relative
        ok &= relative <= 1e-4

    layer = convs(model)[4]
    captured = {}
    handle = layer.register_forward_hook(lambda m, i, o: captured.update(out=o.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    for channel in meta["channels"]:
        fmap = captured["out"][0, channel]
        y, xx = divmod(int(fmap.argmax()), fmap.shape[1])
        for method, attribution in [("deconvnet", NeuronDeconvolution), ("guided", NeuronGuidedBackprop)]:
            reference = attribution(model, layer).attribute(x.clone().requires_grad_(), neuron_selector=(channel, y, xx))[0].detach().numpy()
            # the strongest unit of the channel, then the same unit by its position (deconvnet's forward
            # pass over its receptive field alone)
            for suffix in ["", "-at"]:
                mine = np.load(os.path.join(out, f"project-{method}-{channel}{suffix}.npy"))
                cosine = float((reference * mine).sum() / (np.linalg.norm(reference) * np.linalg.norm(mine) + 1e-30))
                results[f"{method}_{channel}{suffix}_cosine"] = cosine
                ok &= cosine >= 0.9999

    summary = json.load(open(os.path.join(out, "occ", "occlusion.json")))
    w, s = summary["window"], summary["stride"]
    with torch.no_grad():
        reference = Occlusion(model).attribute(x, target=summary["target"], sliding_window_shapes=(shape[0], w, w),
                                               strides=(shape[0], s, s), baselines=0.0, perturbations_per_eval=16)[0].numpy()
    mine = np.load(os.path.join(out, "occ", "attribution.npy"))
    span = float(reference.max() - reference.min())
    difference = float(np.abs(reference - mine).max())
    results["occlusion_relative_to_range"] = difference / max(span, 1e-12)
    ok &= difference <= 1e-4 * span + 1e-6
    results["ok"] = bool(ok)
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    command, kind, out = sys.argv[1:4]
    if command == "export":
        export(kind, out)
        sys.exit(0)
    sys.exit(check(kind, out))
