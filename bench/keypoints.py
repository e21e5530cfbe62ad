"""Keypoint models in every format: float files against Keras, and int8 after post-training quantization against
int8 after quantization-aware training.

The default small keypoint detector on generated keypoint scenes (800 at 96 px, `--epochs`, default 40), exported
to TFLite, ONNX and CoreML in float (OKS mAP delta, object agreement and the largest point error against Keras),
to int8 after post-training quantization (calibrated on the training split: `tflite:int8_full`, `onnx:int8`,
`coreml:int8`; no float operator in the maps layout, so the TFLite file is full integer), and to int8 after
`edgekit.quantize_aware` (`--qat-epochs`, default 4) from the same float model, each against the float model's
OKS mAP on the test split.

Targets: float files agree with Keras on >= 0.99 of the objects; the int8 files of the better of PTQ and QAT
within 1.5 OKS mAP points of float. Exits 1 on a miss.

    .venv/bin/python bench/keypoints.py [--epochs 40] [--qat-epochs 4]
    .venv/bin/python bench/keypoints.py --smoke   # 60 scenes at 64 px, 1 epoch each (make test)

A full run writes bench/records/keypoints.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from _artifacts import CACHE

FLOAT_AGREEMENT, INT8_TARGET = 0.99, 1.5
FLOAT_TARGETS = ["tflite:fp32", "onnx:fp32", "coreml:fp16"]
PTQ_TARGETS = ["tflite:int8_full", "onnx:int8", "coreml:int8"]
QAT_TARGETS = ["tflite:int8", "onnx:int8", "coreml:int8"]


def trained(images: int, size: int, epochs: int) -> tuple[Path, object, object]:
    """(model.keras, train split, test split), trained once per recipe."""
    import edgekit

    recipe = f"small_keypoint_detector, {images} scenes at {size} px, {epochs} epochs, seed 0"
    work = CACHE / f"keypoints_{images}_{size}_{epochs}"
    root = edgekit.datasets.make_shapes_keypoints(work / "data", n_images=images, image_size=size, seed=0)
    train, val, test = edgekit.load_keypoints(root, image_size=size).split(seed=0)
    model, stamp = work / "train" / "model.keras", work / "train" / "recipe.txt"
    if not (stamp.exists() and stamp.read_text() == recipe and model.exists()):
        edgekit.train(
            train, val, task="keypoints", epochs=epochs, patience=epochs, test=test, out_dir=work / "train", verbose=1
        )
        stamp.write_text(recipe)
    metrics = json.loads((work / "train" / "metrics.json").read_text())
    print(
        f"{recipe}: test OKS mAP {metrics['oks_map']['test']:.3f}, PCK@0.1 {metrics['pck']['test']:.3f}, "
        f"point error {metrics['mean_error_px']['test']:.2f} px (trained in {metrics['training_seconds']:.0f} s)"
    )
    return model, train, test


def measure(args: argparse.Namespace) -> list:
    from records import Figure

    import edgekit

    images, size, epochs = (60, 64, 1) if args.smoke else (800, 96, args.epochs)
    model_path, train, test = trained(images, size, epochs)
    work = model_path.parent.parent
    float_report = edgekit.export(
        model_path, FLOAT_TARGETS + PTQ_TARGETS, calibration=train, check=test, out_dir=work / "export", progress=False
    )
    val = train.subset(list(range(0, len(train), 7)))
    aware = edgekit.quantize_aware(model_path, train, val, epochs=args.qat_epochs, out_dir=work / "qat", exist_ok=True)
    qat_report = edgekit.export(aware.model_path, QAT_TARGETS, check=test, out_dir=work / "qat-export", progress=False)
    print(float_report.table())
    print(qat_report.table())
    keras = float_report.keras_accuracy
    figures = [Figure("float Keras model: test OKS mAP", round(keras * 100, 1), "points")]
    for result in float_report.results[: len(FLOAT_TARGETS)]:
        figures += [
            Figure(
                f"{result.target} vs Keras: object agreement", round(result.agreement, 3), "", f">= {FLOAT_AGREEMENT}"
            ),
            Figure(f"{result.target} vs Keras: largest point error", round(result.max_abs_error or 0.0, 3), "px"),
        ]
    best = {"PTQ": [], "QAT": []}
    for kind, results in (("PTQ", float_report.results[len(FLOAT_TARGETS) :]), ("QAT", qat_report.results)):
        for result in results:
            delta = (result.accuracy - keras) * 100  # against the float model, for QAT too
            best[kind].append(delta)
            figures += [
                Figure(f"{kind} {result.target}: OKS mAP delta from float", round(delta, 1), "points"),
                Figure(f"{kind} {result.target} vs its Keras model: object agreement", round(result.agreement, 3)),
                Figure(
                    f"{kind} {result.target} vs its Keras model: objects with every point within 1 px",
                    round(result.details.get("points_within_1px", 0.0), 3),
                ),
            ]
    chosen = max(best, key=lambda kind: min(best[kind]))
    figures.append(
        Figure(
            f"int8 ({chosen}, the better): worst OKS mAP delta",
            round(min(best[chosen]), 1),
            "points",
            f">= -{INT8_TARGET}",
        )
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--qat-epochs", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="60 scenes at 64 px, 1 epoch each; no record")
    args = parser.parse_args(argv)
    if args.smoke:
        args.qat_epochs = 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from records import report_figures

    command = f"bench/keypoints.py --epochs {args.epochs} --qat-epochs {args.qat_epochs}"
    return report_figures("keypoints", measure(args), command, args.smoke)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
