"""Quantization-aware training against post-training quantization, on the full-integer files accelerators run.

Detector: the default small detector on shapes-detection (bench/detection_quality.py's model: 2000 scenes at
128 px, 30 epochs). Its full-integer TFLite file after post-training quantization (`tflite:int8_full`, calibrated on
the training split) against the same file from `edgekit.quantize_aware` (`--detector-epochs`, default 4: 13% of
the original 30), each as mAP@[.5:.95] points from the float Keras model; the same for ONNX (`onnx:int8_full`
against the QAT model's `onnx:int8`); and each QAT file (TFLite, ONNX, CoreML W8A8 on the reference executor)
against the fake-quantized Keras model it came from: detection agreement, the share of detections with every box
side within 1 px, and the largest box error (a peak that moves to the neighbouring cell where the int8 kernels
round a heat value the other way gives a few pixels; the share counts such a detection as not agreeing).

Classifier (`--classifier`, about 15 more minutes: it trains bench/quantization.py's MobileNetV2 at 96 px once):
its full-integer TFLite accuracy after PTQ and after QAT (`--classifier-epochs`, default 2 of the original 10),
against float; top-1 agreement of the QAT file with its fake-quantized model.

Targets: the QAT detector within 1.5 mAP points of float; each QAT file's agreement >= 0.97 and its detections
within 1 px >= 0.97; the QAT
classifier within 0.5 points of float and no worse than PTQ, agreement >= 0.995; QAT epochs <= 25% of training's.
Exits 1 on a miss.

    .venv/bin/python bench/qat.py [--detector-epochs 4] [--classifier] [--classifier-epochs 2]
    .venv/bin/python bench/qat.py --smoke   # 60 scenes at 64 px, 1 epoch each (make test)

A full run writes bench/records/qat.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _artifacts import CACHE

DETECTOR_TARGET, AGREEMENT_TARGET = 1.5, 0.97
CLASSIFIER_TARGET, CLASSIFIER_AGREEMENT, EPOCH_SHARE = 0.5, 0.995, 0.25
DETECTOR_EPOCHS, CLASSIFIER_EPOCHS = 30, 10  # the original trainings' epochs


PTQ_TARGETS, QAT_TARGETS = ["tflite:int8_full", "onnx:int8_full"], ["tflite:int8", "onnx:int8", "coreml:int8"]


def detector_section(args: argparse.Namespace) -> list:
    """PTQ and QAT full-integer detectors (TFLite and ONNX) against float, and every QAT file against its Keras
    model: the figures."""
    from detection import RECIPES, trained
    from records import Figure

    import edgekit

    if args.smoke:
        RECIPES["small_detector"] = ("small_detector", 60, 64, 1, "detection-smoke")
    model_path, train, test = trained("small_detector")
    val = train.subset(list(range(0, len(train), 7)))  # the fine-tuning's validation: a slice of the training split
    work = CACHE / RECIPES["small_detector"][4]
    ptq = edgekit.export(model_path, PTQ_TARGETS, calibration=train, check=test, out_dir=work / "full-int8")
    float_map = ptq.keras_accuracy
    aware = edgekit.quantize_aware(
        model_path, train, val, epochs=args.detector_epochs, out_dir=work / "qat", exist_ok=True, verbose=1
    )
    qat = edgekit.export(aware.model_path, QAT_TARGETS, check=test, out_dir=work / "qat-export", progress=False)
    print(ptq.table())
    print(qat.table())
    figures = []
    for ptq_file, qat_file in zip(ptq.results, qat.results):  # TFLite, then ONNX: full integer both ways
        fmt = ptq_file.target.split(":")[0]
        qat_delta = (qat_file.accuracy - float_map) * 100
        print(
            f"small detector, full-integer {fmt}: float mAP@[.5:.95] {float_map:.3f}; PTQ "
            f"{ptq_file.accuracy_delta:+.1f} points, QAT ({args.detector_epochs} epochs) {qat_delta:+.1f} points"
        )
        figures += [
            Figure(f"detector full-integer {fmt} PTQ: mAP@[.5:.95] delta", round(ptq_file.accuracy_delta, 1), "points"),
            Figure(
                f"detector full-integer {fmt} QAT: mAP@[.5:.95] delta",
                round(qat_delta, 1),
                "points",
                f">= -{DETECTOR_TARGET}",
            ),
        ]
    for qat_file in qat.results:  # the simulation's honesty: each QAT file against the fake-quantized Keras model
        within = qat_file.details.get("within_1px", 0.0)
        print(
            f"{qat_file.target} (QAT) vs its Keras model: agreement {qat_file.agreement:.3f}, detections with every "
            f"side within 1 px {within:.3f}, largest box error {qat_file.max_abs_error or 0.0:.2f} px"
        )
        figures += [
            Figure(
                f"detector QAT {qat_file.target} vs its Keras model: agreement",
                round(qat_file.agreement, 3),
                "",
                f">= {AGREEMENT_TARGET}",
            ),
            Figure(
                f"detector QAT {qat_file.target} vs its Keras model: detections within 1 px",
                round(within, 3),
                "",
                f">= {AGREEMENT_TARGET}",
            ),
            Figure(
                f"detector QAT {qat_file.target} vs its Keras model: largest box error",
                round(qat_file.max_abs_error or 0.0, 2),
                "px",
            ),
        ]
    figures.append(
        Figure(
            "detector QAT epochs / training epochs",
            round(args.detector_epochs / DETECTOR_EPOCHS, 2),
            "",
            f"<= {EPOCH_SHARE}",
        )
    )
    return figures


def classifier_section(args: argparse.Namespace) -> list:
    """PTQ and QAT full-integer MobileNetV2 (96 px) against float: the figures."""
    from _artifacts import trained_mobilenetv2_report
    from records import Figure

    import edgekit

    trained_mobilenetv2_report(96)
    out = CACHE / "mobilenetv2_96_trained"
    root = out / "shapes"
    train, val, test = edgekit.ImageFolder(root, image_size=96).split(val=0.15, test=0.15, seed=0)
    model_path = out / "train" / "model.keras"
    ptq = edgekit.export(
        model_path, ["tflite:int8_full"], calibration=train, check=test, out_dir=out / "full-int8", progress=False
    )
    aware = edgekit.quantize_aware(
        model_path, train, val, epochs=args.classifier_epochs, batch_size=16, out_dir=out / "qat", exist_ok=True
    )
    qat = edgekit.export(aware.model_path, ["tflite:int8"], check=test, out_dir=out / "qat-export", progress=False)
    (ptq_file,), (qat_file,) = ptq.results, qat.results
    ptq_delta, qat_delta = ptq_file.accuracy_delta, (qat_file.accuracy - ptq.keras_accuracy) * 100
    print(
        f"MobileNetV2 96, full-integer TFLite: float {ptq.keras_accuracy:.1%}; PTQ {ptq_delta:+.1f} points, QAT "
        f"({args.classifier_epochs} epochs) {qat_delta:+.1f} points; QAT file vs its Keras model: top-1 agreement "
        f"{qat_file.agreement:.3f}"
    )
    return [
        Figure("MobileNetV2 full-integer PTQ: accuracy delta", round(ptq_delta, 1), "points"),
        Figure(
            "MobileNetV2 full-integer QAT: accuracy delta", round(qat_delta, 1), "points", f">= -{CLASSIFIER_TARGET}"
        ),
        Figure("MobileNetV2 QAT minus PTQ", round(qat_delta - ptq_delta, 1), "points", ">= 0"),
        Figure(
            "MobileNetV2 QAT file vs its Keras model: agreement",
            round(qat_file.agreement, 3),
            "",
            f">= {CLASSIFIER_AGREEMENT}",
        ),
        Figure(
            "MobileNetV2 QAT epochs / training epochs",
            round(args.classifier_epochs / CLASSIFIER_EPOCHS, 2),
            "",
            f"<= {EPOCH_SHARE}",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector-epochs", type=int, default=4)
    parser.add_argument("--classifier", action="store_true", help="also the MobileNetV2 classifier (trains it once)")
    parser.add_argument("--classifier-epochs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="the smoke detector, 1 QAT epoch; no record")
    args = parser.parse_args(argv)
    if args.smoke:
        args.detector_epochs, args.classifier = 1, False
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    figures = detector_section(args)
    if args.classifier:
        figures += classifier_section(args)
    if args.smoke:
        print(f"smoke: {len(figures)} figures, QAT detector file agreement {figures[4].value}")
        return 0
    from records import write_record

    command = f"bench/qat.py --detector-epochs {args.detector_epochs}" + (
        f" --classifier --classifier-epochs {args.classifier_epochs}" if args.classifier else ""
    )
    write_record("qat", figures, command=command)
    misses = [
        f"{figure.name} {figure.value:g} (target {figure.target})" for figure in figures if figure.passed is False
    ]
    print("misses: " + "; ".join(misses) if misses else "every target met")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
