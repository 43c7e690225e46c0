#!/usr/bin/env python3
"""Writes a small made-up data set of class folders whose names are 40 characters long or not ASCII,
for scripts/all-figures.sh: OUT/{train,test}/<class>/<n>.png, 16x16 gray, one stripe pattern per class."""
import os
import random
import struct
import sys
import zlib

CLASSES = ["a class name of exactly forty characters", "Supercalifragilisticexpialidocious-boots",
           "ångström-sized sandals", "猫"]
SIDE = 16


def png(path, rows):
    raw = b"".join(b"\0" + bytes(row) for row in rows)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def image(kind, rng):
    shift = rng.randrange(4)
    def on(y, x):
        return [(y + shift) % 4 < 2, (x + shift) % 4 < 2, (x + y + shift) % 6 < 3, (x - 8) ** 2 + (y - 8) ** 2 < 20 + shift * 6][kind]
    return [[min(255, max(0, (200 if on(y, x) else 40) + rng.randrange(-30, 30))) for x in range(SIDE)] for y in range(SIDE)]


def main():
    out = sys.argv[1]
    rng = random.Random(0)
    for split, count in (("train", 48), ("test", 12)):
        for kind, name in enumerate(CLASSES):
            folder = os.path.join(out, split, name)
            os.makedirs(folder, exist_ok=True)
            for n in range(count):
                png(os.path.join(folder, f"{n}.png"), image(kind, rng))


if __name__ == "__main__":
    main()
