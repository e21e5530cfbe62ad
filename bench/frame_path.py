"""Model.predict on a 640x480 BGR camera frame vs Model.run on the already-preprocessed tensor.

The frame path (colour, resize, scaling, result) should add little to inference. Interleaves
the two sides and prints the median time ratio per artifact; the last line is the worst.
Exits 1 above the 1.10 target.

    .venv/bin/python bench/frame_path.py [--runs 200] [--repeat 3]
    .venv/bin/python bench/frame_path.py --smoke     # a 32 px model, a few calls: the harness works (make test)

A full run writes bench/records/frame_path.json (the benchmarks page's figures).
"""

from __future__ import annotations

import statistics
import sys

import numpy as np
from overhead import interleaved_ratio, ratio_bench

TARGET = 1.10


def main(argv: list[str] | None = None) -> int:
    return ratio_bench("frame_path", __doc__, "predict(640x480 frame) / run(tensor) ratio", TARGET, measure, argv)


def measure(artifacts: dict, runs: int) -> float:
    """The worst median ratio over the artifacts, printed per artifact."""
    import edgekit

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    worst = 0.0
    for target, path in artifacts.items():
        model = edgekit.load(path, num_threads=1)
        tensor = model.preprocess(frame, "bgr")
        preprocess_ms: list[float] = []  # what predict() reports for resize, colour and the pixel mapping
        ratio, predict_ms, run_ms = interleaved_ratio(
            lambda: preprocess_ms.append(model.predict(frame, color="bgr").preprocess_ms),
            lambda: model.run(tensor),
            runs,
        )
        worst = max(worst, ratio)
        print(
            f"{target:12} predict(frame) {predict_ms:7.2f} ms  run(tensor) {run_ms:7.2f} ms  median ratio {ratio:.3f}"
            f"  (preprocess {statistics.median(preprocess_ms):.3f} ms, pixels by {model.pixel_path})"
        )
    return worst


if __name__ == "__main__":
    sys.exit(main())
