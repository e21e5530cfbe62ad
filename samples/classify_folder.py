"""Classify every image in a folder with any model edgekit exported, using only `runtimes`.

This is the device-side path: numpy, OpenCV and one inference runtime, no TensorFlow.
The model's own embedded contract decides size, colour order and scaling.

    python samples/classify_folder.py runs/demo/export/small_cnn_int8.tflite runs/demo/data/shapes/circle
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import runtimes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="exported model file, e.g. model_int8.tflite")
    parser.add_argument("folder", type=Path, help="folder of images")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the runtime")
    args = parser.parse_args(argv)

    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    counts: Counter[str] = Counter()
    skipped = 0
    latency = 0.0
    with runtimes.open(args.model, num_threads=args.threads) as model:
        for path in images:
            try:
                result = model.predict(path)
            except runtimes.InputError as exc:  # a broken file is counted, not fatal
                skipped += 1
                print(f"{path.name}: skipped ({exc})", file=sys.stderr)
                continue
            counts[result.label] += 1
            latency += result.latency_ms
            print(f"{path.name}: {result.label} {result.score:.3f}")
    done = sum(counts.values())
    summary = ", ".join(f"{label} {n}" for label, n in counts.most_common())
    print(f"{done} classified ({summary}), {skipped} skipped, mean latency {latency / max(done, 1):.2f} ms")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
