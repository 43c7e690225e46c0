#!/usr/bin/env python3
"""PyTorch's training speed on the zfnet network, for `deconvnet bench train --model zfnet` side by side.

The same work as `torch_reference.py`'s training benches (/work/shared/bench): random 3x32x32 inputs,
Adam (lr 0.001), cross-entropy, batch 100, 2 threads, 5 warm-up steps, then timed steps. Prints one
JSON line with images per second. `--no-lrn` drops the two LocalResponseNorm layers (to compare with
a build that has no `lrn` stage yet).

    /work/venv/bin/python scripts/torch_bench_zfnet.py [--no-lrn] [--steps 20]

The network (SPEC.md's zfnet): conv 64 7x7 stride 2 pad 3, LRN(5, 1e-4, 0.75, 2), maxpool 3/2 pad 1,
conv 192 5x5 pad 2, LRN, maxpool 3/2 pad 1, conv 256 3x3, conv 256 3x3, conv 192 3x3 (pad 1),
maxpool 3/2 pad 1, fc 512, dropout 0.5, fc 512, dropout 0.5, fc 10; ReLU after each conv and hidden fc.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def zfnet(lrn=True, classes=10):
    norm = (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)) if lrn else nn.Identity
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3), nn.ReLU(), norm(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), norm(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(192, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        nn.Flatten(), nn.Linear(192 * 2 * 2, 512), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, classes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-lrn", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = zfnet(lrn=not args.no_lrn).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"task": "train-zfnet", "lrn": not args.no_lrn, "batch": args.batch_size, "threads": args.threads,
                      "images_per_s": args.batch_size * args.steps / seconds}))


if __name__ == "__main__":
    main()
