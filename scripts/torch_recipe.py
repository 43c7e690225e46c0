#!/usr/bin/env python3
"""The course recipes in PyTorch, for comparing deconvnet's accuracy with the reference side by side.

Trains one model on a data set in the course layout (DIR/Train/<class>/*.png, DIR/Test/<class>/*.png)
exactly as `deconvnet train` does by default: Adam (lr 0.001, betas 0.9/0.999), batch 100, a fresh
shuffle every epoch, pixels in [0, 1], PyTorch's default initialisation, cross-entropy; evaluation on
the test split after every epoch. Prints one JSON line per epoch and a final one.

    python3 scripts/torch_recipe.py lenet5 --data ../shared/data/CIFAR10 --seed 1
    python3 scripts/torch_recipe.py lstm --data ../shared/data/MNIST --seed 1

Needs torch and pillow (pip install torch pillow); not part of the tests.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def load(root, split):
    """The images of one split as (N, 1, 28, 28) floats in [0, 1] and their labels."""
    classes = sorted(os.listdir(os.path.join(root, split)), key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else c))
    xs, ys = [], []
    for label, name in enumerate(classes):
        for path in sorted(glob.glob(os.path.join(root, split, name, "*.png"))):
            xs.append(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255)
            ys.append(label)
    return torch.tensor(np.stack(xs))[:, None], torch.tensor(ys)


class LeNet5(nn.Module):
    """deconvnet's `lenet5` preset on 1x28x28 (flattened 7x7x64 = 3136)."""

    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(3136, 1024)
        self.fc2 = nn.Linear(1024, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.dropout(F.relu(self.fc1(x.flatten(1))), 0.5, self.training))


class Recurrent(nn.Module):
    """deconvnet's `rnn`/`lstm`/`gru` presets: rows as time steps, the last hidden state to a Linear."""

    def __init__(self, kind, hidden, classes):
        super().__init__()
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](28, hidden, 1, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x[:, 0])
        return self.fc(out[:, -1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=["lenet5", "rnn", "lstm", "gru"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = load(args.data, "Train")
    test_x, test_y = load(args.data, "Test")
    classes = int(train_y.max()) + 1
    model = LeNet5(classes) if args.model == "lenet5" else Recurrent(args.model, args.hidden, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        model.train()
        order = torch.randperm(len(train_x))
        for i in range(0, len(train_x), 100):
            batch = order[i:i + 100]
            optimizer.zero_grad()
            F.cross_entropy(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
        print(json.dumps({"epoch": epoch, "test_acc": round(accuracy, 4), "seconds": round(time.time() - start, 1)}), flush=True)
    print(json.dumps({"model": args.model, "seed": args.seed, "epochs": args.epochs, "test_acc": round(accuracy, 4)}))


if __name__ == "__main__":
    main()
