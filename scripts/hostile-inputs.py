#!/usr/bin/env python3
"""Writes the crafted inputs of issue 13's "What broke" list into a folder, for scripts/hostile-inputs.sh.

usage: hostile-inputs.py OUT CHECKPOINT JPEG
  OUT         folder to write into (made if missing)
  CHECKPOINT  a deconvnet checkpoint to derive broken ones from (checkpoints/lenet5-fashion-mnist.safetensors)
  JPEG        a small real JPEG to give a huge header (Fuzz/corpus/jpeg/tiny.jpg)

Only the standard library: every file is small on disk, whatever it declares.
"""
import json
import os
import struct
import sys
import zlib


def png(path, width, height, value=0):
    """A gray 8-bit PNG, each row filter 0 and every pixel `value`: small on disk, width x height when decoded."""
    row = b"\0" + bytes([value]) * width
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def huge_jpeg(source, path, side):
    """`source` with its frame header (SOF0/SOF2) claiming side x side pixels."""
    data = bytearray(open(source, "rb").read())
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", side, side)
            break
        i += 2 + length
    open(path, "wb").write(data)


def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])


def write_safetensors(path, header, body):
    text = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + bytes(body))


def idx(path, dims, values, magic_type=0x08):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, magic_type, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values))


def main():
    out, checkpoint, jpeg = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    huge_jpeg(jpeg, out + "/huge-header.jpg", 60000)
    png(out + "/image.png", 28, 28, 128)

    header, body = safetensors(checkpoint)
    for side in (300, 2000):
        h = json.loads(json.dumps(header))
        h["__metadata__"]["input_shape"] = f"[1, {side}, {side}]"
        write_safetensors(f"{out}/input-{side}.safetensors", h, body)
    h = json.loads(json.dumps(header))
    first = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])[0]
    nan = bytearray(body)
    nan[h[first]["data_offsets"][0]:h[first]["data_offsets"][0] + 4] = struct.pack("<f", float("nan"))
    write_safetensors(out + "/nan-weight.safetensors", h, nan)
    h = json.loads(json.dumps(header))
    names = json.loads(h["__metadata__"]["class_names"])
    names[0] = "T-shirt\x1b[2J\x1b[31mred"
    h["__metadata__"]["class_names"] = json.dumps(names)
    write_safetensors(out + "/escape-names.safetensors", h, body)

    # IDX: 20 tiny images whose labels include a 255; 1000 blank ones; a gzip file that inflates to 1 GiB
    os.makedirs(out + "/label-255", exist_ok=True)
    for prefix in ("train", "t10k"):
        idx(f"{out}/label-255/{prefix}-images-idx3-ubyte", [20, 28, 28], bytes(20 * 28 * 28))
        idx(f"{out}/label-255/{prefix}-labels-idx1-ubyte", [20], [i % 10 for i in range(19)] + [255])
    os.makedirs(out + "/small", exist_ok=True)
    for prefix in ("train", "t10k"):
        idx(f"{out}/small/{prefix}-images-idx3-ubyte", [1000, 28, 28], bytes(1000 * 28 * 28))
        idx(f"{out}/small/{prefix}-labels-idx1-ubyte", [1000], [i % 10 for i in range(1000)])
    os.makedirs(out + "/gzip-bomb", exist_ok=True)
    count = (1 << 30) // (28 * 28)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(out + "/gzip-bomb/train-images-idx3-ubyte.gz", "wb") as f:
        f.write(compressor.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, count, 28, 28)))
        zeros = bytes(1 << 20)
        for _ in range(1 << 10):
            f.write(compressor.compress(zeros))
        f.write(compressor.flush())
    for prefix in ("train", "t10k"):
        idx(f"{out}/gzip-bomb/{prefix}-labels-idx1-ubyte", [count if prefix == "train" else 1], bytes(count if prefix == "train" else 1))
    idx(out + "/gzip-bomb/t10k-images-idx3-ubyte", [1, 28, 28], bytes(28 * 28))

    # folder data sets: 4000x4000 images; class names with terminal escapes
    for split in ("Train", "Test"):
        for c in ("a", "b"):
            os.makedirs(f"{out}/big/{split}/{c}", exist_ok=True)
            for i in range(3):
                png(f"{out}/big/{split}/{c}/{i}.png", 4000, 4000, 60 + 100 * (c == "b"))
            folder = f"{out}/escapes/{split}/{c}\x1b[31m\x07"
            os.makedirs(folder, exist_ok=True)
            png(folder + "/0.png", 8, 8, 200 * (c == "b"))


main()
