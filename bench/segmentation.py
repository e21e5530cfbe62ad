"""Semantic segmentation: quality within a training budget, every format against Keras, and predict's cost on a
camera frame.

The default small segmenter on generated segmentation scenes (800 at 96 px, `--epochs`, default 60: about 4 minutes
on 2 cores), its test mean IoU and training time; its files (TFLite, ONNX, CoreML fp16, SavedModel; int8 TFLite and
ONNX calibrated on the training split) against Keras on the test split (the share of pixels given the same class,
the mIoU delta); and for each output the files can carry (per-class scores, or the category mask computed in the
graph), the int8 TFLite file's size and `predict` on a 640x480 frame (the mask mapped back to 640x480) against
`run_all` on the model's tensor, interleaved, the median of `--runs` pairs: for the small model (96 px: its
inference takes about half a millisecond, less than preparing a 640x480 frame, so its ratio is not gated) and for
`mobilenetv2_segmenter` at 224 px, a camera-sized model.

Targets: test mIoU >= 0.90 within 300 s of training; float files >= 0.995 of pixels agreeing, int8 within 1.5
mIoU points; predict/run <= 1.15 for MobileNetV2's category-mask file. Exits 1 on a miss.

    .venv/bin/python bench/segmentation.py [--epochs 60] [--runs 200]
    .venv/bin/python bench/segmentation.py --smoke   # 60 scenes at 64 px, 2 epochs, 5 calls, TFLite only (make test)

A full run writes bench/records/segmentation.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from _artifacts import CACHE
from overhead import interleaved_ratio

MIOU_TARGET, SECONDS_TARGET, AGREEMENT_TARGET, INT8_TARGET, FRAME_TARGET = 0.90, 300.0, 0.995, 1.5, 1.15
FLOAT_TARGETS = ["tflite:fp32", "onnx:fp32", "coreml:fp16", "savedmodel:fp32"]
INT8_TARGETS = ["tflite:int8", "onnx:int8"]


def trained(images: int, size: int, epochs: int) -> tuple[Path, object, object]:
    """(model.keras, train split, test split), trained once per recipe."""
    import edgekit

    recipe = f"small_segmenter, {images} scenes at {size} px, {epochs} epochs, seed 0"
    work = CACHE / f"segmentation_{images}_{size}_{epochs}"
    root = edgekit.datasets.make_shapes_segmentation(work / "data", n_images=images, image_size=size, seed=0)
    train, val, test = edgekit.load_segmentation(root, image_size=size).split(seed=0)
    model, stamp = work / "train" / "model.keras", work / "train" / "recipe.txt"
    if not (stamp.exists() and stamp.read_text() == recipe and model.exists()):
        edgekit.train(
            train, val, task="segmentation", epochs=epochs, patience=epochs, test=test, out_dir=work / "train"
        )
        stamp.write_text(recipe)
    return model, train, test


def frame_ratio(path: str, runs: int) -> tuple[float, float, float]:
    """predict(640x480 frame) / run_all(tensor): (median ratio, predict ms, run ms)."""
    import edgekit

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with edgekit.load(path) as model:
        tensor = model.preprocess(frame, "bgr")
        assert model.predict(frame, color="bgr").mask.shape == (480, 640)
        return interleaved_ratio(lambda: model.predict(frame, color="bgr"), lambda: model.run_all(tensor), runs)


def mobilenetv2(args: argparse.Namespace, work: Path) -> list[tuple[str, Path, object]]:
    """mobilenetv2_segmenter at 224 px trained one epoch on the same scenes read at that size (none with --smoke):
    a camera-sized model for the frame figures (its accuracy is not measured here)."""
    import edgekit

    if args.smoke:  # the harness only: the small model's frame figures exercise the same code
        return []
    size = 224
    root = work / "data"
    train, val, _ = edgekit.load_segmentation(root, image_size=size).split(seed=0)
    out = work / f"mobilenetv2_{size}"
    if not (out / "model.keras").exists():
        edgekit.train(
            train.subset(range(min(64, len(train)))), val.subset(range(8)), "mobilenetv2_segmenter",
            task="segmentation", epochs=1, out_dir=out, exist_ok=True, verbose=0,
        )  # fmt: skip
    return [(f"mobilenetv2_segmenter {size} px", out / "model.keras", train)]


def frame_figures(name: str, model_path: Path, train: object, work: Path, runs: int) -> list:
    """For each output (scores, category mask): the int8 TFLite file's size and predict(640x480)/run."""
    from records import Figure

    import edgekit

    figures = []
    for kind, output in (("scores", "scores"), ("category mask", "category_mask")):
        report = edgekit.export(
            model_path,
            ["tflite:int8"],
            calibration=train,
            out_dir=work / f"frame-{model_path.parent.name}-{output}",
            progress=False,
            options={"tflite": {"segmentation_output": output}},
        )
        result = report.result("tflite:int8")
        ratio, predict_ms, run_ms = frame_ratio(result.path, runs)
        print(
            f"{name}, tflite:int8 ({kind}): {result.size_bytes / 1024:.0f} kB; predict(640x480) {predict_ms:.2f} ms, "
            f"run_all(tensor) {run_ms:.2f} ms: ratio {ratio:.3f}"
        )
        gated = kind == "category mask" and name.startswith("mobilenetv2")
        figures += [
            Figure(f"{name}, tflite:int8 ({kind}): size", round(result.size_bytes / 1024, 1), "kB"),
            Figure(
                f"{name}, tflite:int8 ({kind}): predict(640x480) / run",
                round(ratio, 3),
                "",
                f"<= {FRAME_TARGET}" if gated else "",
            ),
        ]
    return figures


def measure(args: argparse.Namespace) -> list:
    from records import Figure

    import edgekit

    images, size, epochs = (60, 64, 2) if args.smoke else (800, 96, args.epochs)
    model_path, train, test = trained(images, size, epochs)
    metrics = json.loads((model_path.parent / "metrics.json").read_text())
    work = model_path.parent.parent
    print(f"test mIoU {metrics['miou']['test']:.3f} after {metrics['training_seconds']:.0f} s of training")
    figures = [
        Figure("small_segmenter test mIoU", round(metrics["miou"]["test"], 3), "", f">= {MIOU_TARGET}"),
        Figure("training time", metrics["training_seconds"], "s", f"<= {SECONDS_TARGET}"),
    ]
    floats, integers = (FLOAT_TARGETS[:1], INT8_TARGETS[:1]) if args.smoke else (FLOAT_TARGETS, INT8_TARGETS)
    report = edgekit.export(
        model_path, floats + integers, calibration=train, check=test, out_dir=work / "export", progress=False
    )
    print(report.table())
    for result in report.results:
        if result.target in FLOAT_TARGETS:
            figures.append(
                Figure(
                    f"{result.target} vs Keras: pixel agreement",
                    round(result.agreement, 4),
                    "",
                    f">= {AGREEMENT_TARGET}",
                )
            )
        else:
            figures.append(
                Figure(f"{result.target}: mIoU delta", round(result.accuracy_delta, 2), "points", f">= -{INT8_TARGET}")
            )
    for name, path, data in ((f"small_segmenter {size} px", model_path, train), *mobilenetv2(args, work)):
        figures += frame_figures(name, path, data, work, args.runs)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="60 scenes at 64 px, 2 epochs, 5 calls; no record")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs = 5
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from records import report_figures

    command = f"bench/segmentation.py --epochs {args.epochs} --runs {args.runs}"
    return report_figures("segmentation", measure(args), command, args.smoke)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
