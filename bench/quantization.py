"""What int8 buys for MobileNetV2 at 96 and 224: file size (vs the 1-byte-per-weight floor),
latency (TFLite and ONNX) and top-1 agreement with float32 on the shapes images, all on
random-weight models (sizes and speed do not depend on training). Then the accuracy delta of
int8 on the shapes test split, on MobileNetV2 trained from scratch at 96x96 (built once under
runs/bench/, about 14 minutes on a 2-core host; training at 224 from scratch would take far longer).
The last line has the worst ratios; exits 1 when a size ratio is above 0.30, a latency ratio
above 0.7 or an int8 accuracy delta beyond 2 points.

    .venv/bin/python bench/quantization.py [--runs 100]
    .venv/bin/python bench/quantization.py --smoke   # 32 px random-weight models only: the harness works (make test)

A full run writes bench/records/quantization.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _artifacts import CACHE, mobilenetv2_artifacts, parameter_count, trained_mobilenetv2_report
from overhead import interleaved_ratio

SIZE_TARGET, LATENCY_TARGET, DELTA_TARGET = 0.30, 0.7, 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="32 px random-weight models, 5 calls; no training")
    args = parser.parse_args(argv)
    import edgekit

    worst_size, worst_latency = 0.0, 0.0
    for size in (32,) if args.smoke else (96, 224):
        paths = mobilenetv2_artifacts(size)
        images = edgekit.ImageFolder(CACHE / "shapes", image_size=size)
        floor = parameter_count(size) / paths["tflite:fp32"].stat().st_size
        for fmt in ("tflite", "onnx"):
            fp32, int8 = (edgekit.load(paths[f"{fmt}:{mode}"], num_threads=1) for mode in ("fp32", "int8"))
            size_ratio = paths[f"{fmt}:int8"].stat().st_size / paths[f"{fmt}:fp32"].stat().st_size
            x = fp32.preprocess(images.pixels[0])
            runs = 5 if args.smoke else args.runs
            latency_ratio, int8_ms, fp32_ms = interleaved_ratio(lambda: int8.run(x), lambda: fp32.run(x), runs)
            batch = images.tensors(fp32.preprocessing)
            agreement = float(np.mean(np.argmax(int8.run(batch), 1) == np.argmax(fp32.run(batch), 1)))
            worst_size, worst_latency = max(worst_size, size_ratio), max(worst_latency, latency_ratio)
            print(
                f"mobilenetv2 {size:3d} {fmt:6} int8/fp32 size {size_ratio:.3f} (floor {floor:.3f}), "
                f"latency {latency_ratio:.2f} ({int8_ms:.2f} vs {fp32_ms:.2f} ms), top-1 agreement {agreement:.3f}"
            )
    if args.smoke:
        print(f"smoke: worst int8/fp32 size ratio {worst_size:.3f}, latency ratio {worst_latency:.2f}")
        return 0
    trained = trained_mobilenetv2_report(96)
    worst_delta = 0.0
    for result in trained["results"]:
        if result["target"].endswith("int8"):
            worst_delta = max(worst_delta, abs(result["accuracy_delta"]))
        print(
            f"mobilenetv2  96 trained {result['target']:12} test accuracy {result['accuracy']:.1%} "
            f"(keras {trained['keras_accuracy']:.1%}, delta {result['accuracy_delta']:+.1f} points, agreement "
            f"{result['agreement']:.3f})"
        )
    print(
        f"worst int8/fp32 size ratio {worst_size:.3f} (target <= {SIZE_TARGET}); "
        f"worst latency ratio {worst_latency:.2f} (target <= {LATENCY_TARGET}); "
        f"worst int8 accuracy delta {worst_delta:.1f} points (target <= {DELTA_TARGET})"
    )
    from records import Figure, write_record

    write_record(
        "quantization",
        [
            Figure(
                "worst int8/fp32 file size ratio (MobileNetV2 96 and 224)",
                round(worst_size, 3),
                "",
                f"<= {SIZE_TARGET}",
            ),
            Figure("worst int8/fp32 latency ratio", round(worst_latency, 2), "", f"<= {LATENCY_TARGET}"),
            Figure(
                "worst int8 accuracy delta (MobileNetV2 96, trained)",
                round(worst_delta, 1),
                "points",
                f"<= {DELTA_TARGET}",
            ),
        ],
        command=f"bench/quantization.py --runs {args.runs}",
    )
    return 0 if worst_size <= SIZE_TARGET and worst_latency <= LATENCY_TARGET and worst_delta <= DELTA_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
