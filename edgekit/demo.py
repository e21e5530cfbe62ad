"""The main job per task: shapes data -> a small model -> TFLite, ONNX and CoreML -> each checked, on 2 cores in
minutes.

One demo per task in `DEMOS` (`edgekit demo [TASK]`): classification (the default) and detection.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from edgekit.api import export, train
from edgekit.data.folders import ImageFolder
from edgekit.data.synthetic import make_shapes, make_shapes_detection
from edgekit.exporter import ExportReport
from runtimes.loading import open_model
from runtimes.registry import Registry

log = logging.getLogger(__name__)

DEMO_TARGETS = ("tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8", "coreml:fp16", "coreml:int8")
DEMOS: Registry[Callable[..., ExportReport]] = Registry("demo")


@DEMOS.register("classification")
def run_demo(
    out_dir: str | Path = "runs/demo",
    n_per_class: int = 400,
    image_size: int = 64,
    epochs: int = 20,
    seed: int = 0,
    **_: Any,
) -> ExportReport:
    """Run every stage and write data/, train/, export/ and demo_report.{md,json} under `out_dir`."""
    out = Path(out_dir)
    started = time.perf_counter()
    log.info("1/4 generating the shapes dataset (%d images per class)", n_per_class)
    root = make_shapes(out / "data" / "shapes", n_per_class=n_per_class, image_size=image_size, seed=seed)
    dataset = ImageFolder(root, image_size=image_size)
    train_split, val_split, test_split = dataset.split(val=0.15, test=0.15, seed=seed)

    log.info("2/4 training small_cnn on %d images (val %d, test %d)", len(train_split), len(val_split), len(test_split))
    result = train(
        train_split,
        val_split,
        "small_cnn",
        test=test_split,
        epochs=epochs,
        patience=6,
        learning_rate=1e-3,
        out_dir=out / "train",
        exist_ok=True,  # the demo rewrites its own folder, data included
        seed=seed,
    )

    report = _export_checked(result.model_path, train_split, test_split, out)

    log.info("4/4 predicting one test image through edgekit.load")
    sample = Path(test_split.sources[0])
    with open_model(report.result("tflite:int8").path) as model:
        prediction = model.predict(sample)

    _finish(
        out,
        started,
        report,
        result,
        f"int8 model says {sample.parent.name}/{sample.name} is {prediction}",
        result.metrics["accuracy"],
        "Training curves: `train/history.png`, confusion: `train/confusion.png`.",
    )
    return report


def _export_checked(model_path: Path, train_split: Any, test_split: Any, out: Path) -> ExportReport:
    """Stage 3 of every demo: the demo targets, each checked against Keras on the test split; the report written."""
    log.info("3/4 exporting %s and checking each against Keras on the test split", ", ".join(DEMO_TARGETS))
    report = export(model_path, DEMO_TARGETS, out_dir=out / "export", calibration=train_split, check=test_split)
    report.write(out / "export")
    return report


def _finish(
    out: Path, started: float, report: ExportReport, result: Any, prediction: str, trained: Any, files: str
) -> None:
    """The table, the sample prediction and where everything went; demo_report.{json,md}."""
    elapsed = time.perf_counter() - started
    print(report.table())  # opens with its "check:" line
    print(prediction)
    print(
        f"done in {elapsed:.0f} s; report: {out / 'export' / 'export_report.md'} (+ .json, .png); "
        f"training plots in {result.out_dir}"
    )
    summary = {"seconds": round(elapsed, 1), "train": trained, **report.to_dict()}
    (out / "demo_report.json").write_text(json.dumps(summary, indent=2))
    (out / "demo_report.md").write_text(report.markdown() + f"\n{files}\n")


@DEMOS.register("detection")
def run_detection_demo(
    out_dir: str | Path = "runs/demo-detection",
    n_images: int = 2000,
    image_size: int = 128,
    epochs: int = 24,
    seed: int = 0,
    **_: Any,
) -> ExportReport:
    """Shapes scenes -> small_detector -> every format checked on mAP and boxes; writes the same files as `run_demo`
    plus ``predicted.png`` (one test image with the int8 model's boxes)."""
    from edgekit.data.annotations import load_detection

    out = Path(out_dir)
    started = time.perf_counter()
    log.info("1/4 generating the shapes-detection dataset (%d scenes at %d px)", n_images, image_size)
    root = make_shapes_detection(out / "data" / "shapes-detection", n_images=n_images, image_size=image_size, seed=seed)
    dataset = load_detection(root, image_size=image_size)
    train_split, val_split, test_split = dataset.split(val=0.15, test=0.15, seed=seed)

    log.info(
        "2/4 training small_detector on %d images (val %d, test %d)", len(train_split), len(val_split), len(test_split)
    )
    result = train(
        train_split,
        val_split,
        "small_detector",
        task="detection",
        test=test_split,
        epochs=epochs,
        out_dir=out / "train",
        exist_ok=True,  # the demo rewrites its own folder, data included
        seed=seed,
    )

    report = _export_checked(result.model_path, train_split, test_split, out)

    log.info("4/4 detecting objects in one test image through edgekit.load")
    sample = Path(test_split.sources[0])
    with open_model(report.result("tflite:int8").path) as model:
        found = model.predict(sample)
        picture = out / "predicted.png"
        import cv2

        image = cv2.imread(str(sample))
        model.task.draw(image, found, model.labels)
        cv2.imwrite(str(picture), image)

    truth = ", ".join(test_split.labels[int(c)] for c in test_split.classes[0]) or "nothing"
    _finish(
        out,
        started,
        report,
        result,
        f"int8 model on {sample.name} (ground truth: {truth}; drawn in {picture}): {found}",
        {"map": result.metrics["map"], "map50": result.metrics["map50"]},
        "Training curves: `train/history.png`, predicted boxes: `train/val_boxes.png`, `predicted.png`.",
    )
    return report
