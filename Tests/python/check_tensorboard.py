#!/usr/bin/env python3
"""Load an event directory with TensorBoard's own reader and check what it holds.

Usage: check_tensorboard.py EVENT_DIR [EXPECTATIONS_JSON]

EXPECTATIONS_JSON (a path) maps a kind to tags to the exact list of events expected, in step order:
    {"scalars":    {"loss": [{"step": 0, "value": 2.3}, ...]},
     "histograms": {"w":    [{"step": 0, "num": 100, "min": -1.0, "max": 1.0}, ...]},
     "images":     {"img":  [{"step": 0, "width": 2, "height": 2}, ...]}}
Every entry needs "step"; the other keys are optional. Scalars and histogram statistics are compared
within 1e-6 (relative to 1 for small numbers). Without expectations it only lists what it found.
Exits 0 when everything matches, 1 with a message per mismatch otherwise.
"""
import json
import math
import sys

from tensorboard.backend.event_processing import event_accumulator as ea

KINDS = {"scalars": ea.SCALARS, "histograms": ea.HISTOGRAMS, "images": ea.IMAGES}


def load(directory):
    guidance = {kind: 0 for kind in (ea.SCALARS, ea.HISTOGRAMS, ea.COMPRESSED_HISTOGRAMS,
                                     ea.IMAGES, ea.AUDIO, ea.TENSORS)}
    accumulator = ea.EventAccumulator(directory, size_guidance=guidance)
    accumulator.Reload()
    return accumulator


def events(accumulator, kind, tag):
    """The loaded events of one kind and tag: accumulator.Scalars(tag), .Histograms(tag) or .Images(tag)."""
    return getattr(accumulator, kind.capitalize())(tag)


def fields(kind, event):
    """The comparable fields of one loaded event."""
    if kind == "scalars":
        return {"step": event.step, "value": event.value}
    if kind == "histograms":
        h = event.histogram_value
        return {"step": event.step, "num": h.num, "min": h.min, "max": h.max, "sum": h.sum,
                "buckets": len(h.bucket)}
    return {"step": event.step, "width": event.width, "height": event.height,
            "bytes": len(event.encoded_image_string)}


def close(actual, expected):
    if isinstance(expected, float) or isinstance(actual, float):
        return math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6)
    return actual == expected


def check(accumulator, expectations):
    problems = []
    tags = accumulator.Tags()
    for kind, by_tag in expectations.items():
        if kind not in KINDS:
            problems.append(f"unknown kind {kind!r}; use one of {sorted(KINDS)}")
            continue
        for tag, expected_events in by_tag.items():
            if tag not in tags[KINDS[kind]]:
                problems.append(f"{kind} {tag!r} missing; found {tags[KINDS[kind]]}")
                continue
            actual_events = [fields(kind, e) for e in events(accumulator, kind, tag)]
            if len(actual_events) != len(expected_events):
                problems.append(f"{kind} {tag!r}: {len(actual_events)} events, expected "
                                f"{len(expected_events)}: {actual_events}")
                continue
            for actual, expected in zip(actual_events, expected_events):
                for key, value in expected.items():
                    if key not in actual:
                        problems.append(f"{kind} {tag!r}: no field {key!r} to compare")
                    elif not close(actual[key], value):
                        problems.append(f"{kind} {tag!r} step {actual['step']}: {key} is "
                                        f"{actual[key]}, expected {value}")
    return problems


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    accumulator = load(argv[1])
    tags = accumulator.Tags()
    for kind, key in KINDS.items():
        for tag in tags[key]:
            print(f"{kind} {tag}: steps {[e.step for e in events(accumulator, kind, tag)]}")
    if len(argv) == 2:
        return 0 if any(tags[key] for key in KINDS.values()) else 1
    with open(argv[2]) as f:
        problems = check(accumulator, json.load(f))
    for problem in problems:
        print("MISMATCH:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
