"""Model.predict on a 640x480 BGR camera frame vs Model.run on the already-preprocessed tensor.

The frame path (colour, resize, scaling, result) should add little to inference. Interleaves
the two sides and prints the median time ratio per artifact; the last line is the worst.
Exits 1 above the 1.10 target.

    .venv/bin/python bench/frame_path.py [--runs 200] [--repeat 3]
    .venv/bin/python bench/frame_path.py --smoke     # a 32 px model, a few calls: the harness works (make test)

A full run writes bench/records/frame_path.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from _artifacts import mobilenetv2_artifacts
from overhead import interleaved_ratio

TARGET = 1.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="whole measurements, for the spread (default: 3)")
    parser.add_argument("--smoke", action="store_true", help="a 32 px model and 5 calls; no record, no target")
    args = parser.parse_args(argv)
    size, runs, repeat = (32, 5, 1) if args.smoke else (224, args.runs, args.repeat)
    worsts = [measure(mobilenetv2_artifacts(size), runs) for _ in range(repeat)]
    worst = statistics.median(worsts)
    print(f"worst predict(640x480 frame) / run(tensor) ratio: {worst:.3f} (target <= {TARGET}; runs {worsts})")
    if args.smoke:
        return 0
    from records import Figure, write_record

    write_record(
        "frame_path",
        [
            Figure(
                "worst predict(640x480 frame) / run(tensor) ratio (median of repeats)",
                round(worst, 3),
                "",
                f"<= {TARGET}",
                tuple(round(w, 3) for w in worsts),
            )
        ],
        command=f"bench/frame_path.py --runs {runs} --repeat {repeat}",
    )
    return 0 if worst <= TARGET else 1


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
