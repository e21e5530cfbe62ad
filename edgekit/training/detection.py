"""Training a detector: box-preserving augmentation, early stopping on validation mAP, metrics and plots."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgekit._tf import keras
from edgekit._version import __version__
from edgekit.data.detection import DetectionData, DetectionDataset
from edgekit.data.images import in_memory, is_streaming
from edgekit.errors import TrainingError
from edgekit.keras_io import load_keras, save_keras
from edgekit.metrics.detection import EVAL_SCORE_THRESHOLD, DetectionMetrics, map_of, source_detections
from edgekit.reports.progress import epoch_progress
from edgekit.training.batches import seeded_batches
from edgekit.training.detector_graph import DETECTORS, decode_maps, detection_loss, encode_targets
from edgekit.training.options import TrainOptions, TrainResult
from runtimes.contract import ModelContract, Preprocessing
from runtimes.heads.detection import DetectionHead
from runtimes.preprocess import normalize
from runtimes.quiet import warnings_to_debug_log

log = logging.getLogger(__name__)


def augment(
    pixels: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator, pad_value: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image and its input-pixel boxes: flip, scale and translate, colour jitter; boxes follow the pixels.

    A box pushed mostly out of the frame (under 40% of it left) is dropped, one partly out is clipped.
    """
    out, boxes, classes, _, _ = moved_with_pixels(pixels, boxes, classes, rng, pad_value)
    return out, boxes, classes


def moved_with_pixels(
    pixels: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator, pad_value: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`augment`'s work, and what else must follow the pixels: (image, boxes, classes, the boxes kept (a mask
    over the given ones), the 2x3 affine matrix applied; its [0, 0] is negative for a flip)."""
    height, width = pixels.shape[:2]
    scale = rng.uniform(0.7, 1.3)
    flip = rng.random() < 0.5
    tx, ty = rng.uniform(-0.2, 0.2) * width, rng.uniform(-0.2, 0.2) * height
    sx = -scale if flip else scale
    cx, cy = width / 2, height / 2
    matrix = np.array([[sx, 0, cx - sx * cx + tx], [0, scale, cy - scale * cy + ty]], np.float32)
    out = cv2.warpAffine(
        pixels,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(pad_value,) * 3,
    )
    if out.ndim == 2:
        out = out[..., None]
    keep = np.ones(len(boxes), bool)
    if len(boxes):
        xs = boxes[:, [0, 2]] * sx + matrix[0, 2]
        ys = boxes[:, [1, 3]] * scale + matrix[1, 2]
        moved = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
        clipped = np.clip(moved, 0, [width, height, width, height])
        area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
        keep = (
            (area(clipped) >= 0.4 * area(moved))
            & (clipped[:, 2] - clipped[:, 0] >= 2)
            & (clipped[:, 3] - clipped[:, 1] >= 2)
        )
        boxes, classes = clipped[keep].astype(np.float32), classes[keep]
    jittered = out.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    jittered *= rng.uniform(0.85, 1.15, size=out.shape[-1]).astype(np.float32)
    return np.clip(jittered, 0, 255).astype(np.uint8), boxes, classes, keep, matrix


def _batches(
    dataset: DetectionData, preprocessing: Preprocessing, batch_size: int, train: bool, seed: int
) -> tuple[Any, int]:
    """(batches, batches per epoch): normalized images and their encoded targets; training batches are augmented
    (boxes follow the pixels). A streamed dataset is read through tf.data (edgekit.data.detection_streaming)."""
    num_classes = len(dataset.labels)
    if is_streaming(dataset):
        batches = dataset.pipeline(
            preprocessing,
            batch_size,
            lambda boxes, classes: encode_targets(boxes, classes, preprocessing.input_size, num_classes),
            partial(augment, pad_value=preprocessing.pad_value) if train else None,
            shuffle=train,
            seed=seed,
        )
        return batches, math.ceil(len(dataset) / batch_size)
    input_boxes = [dataset.input_boxes(i) for i in range(len(dataset))]

    def make_batch(chosen: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        images, targets = [], []
        for i in chosen:
            pixels, boxes, classes = dataset.pixels[i], input_boxes[i], dataset.classes[i]
            if train:
                pixels, boxes, classes = augment(pixels, boxes, classes, rng, preprocessing.pad_value)
            images.append(pixels)
            targets.append(encode_targets(boxes, classes, preprocessing.input_size, num_classes))
        return normalize(np.stack(images), preprocessing), np.stack(targets)

    batches = seeded_batches(len(dataset), batch_size, train, seed, make_batch)
    return batches, len(batches)


def predict_maps(
    model: Any, dataset: DetectionDataset, preprocessing: Preprocessing, batch_size: int = 64
) -> np.ndarray:
    """Keras raw maps for every image, through the contract."""
    return np.concatenate(
        [
            np.asarray(model(dataset.tensors(preprocessing, slice(s, s + batch_size)), training=False))
            for s in range(0, len(dataset), batch_size)
        ]
    ).astype(np.float32)


def evaluate_keras(
    model: Any,
    dataset: DetectionDataset,
    preprocessing: Preprocessing,
    head: DetectionHead,
    maps: np.ndarray | None = None,
) -> DetectionMetrics:
    maps = predict_maps(model, dataset, preprocessing) if maps is None else maps
    return map_of(
        dataset,
        source_detections(
            dataset, *decode_maps(maps, len(dataset.labels), head.max_detections), head, EVAL_SCORE_THRESHOLD
        ),
    )


def _map_callback(
    k: Any, val: DetectionDataset, preprocessing: Preprocessing, head: DetectionHead, patience: int, loss: Any
) -> Any:
    """Early stopping on validation mAP@[.5:.95], keeping the best epoch's weights in memory.

    One forward pass over the validation images per epoch gives both the mAP and the
    validation loss (against targets encoded once), instead of a second pass for Keras'
    own validation.
    """
    num_classes = len(val.labels)
    targets = np.stack(
        [
            encode_targets(val.input_boxes(i), val.classes[i], preprocessing.input_size, num_classes)
            for i in range(len(val))
        ]
    )

    class ValidationMap(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best, self.best_weights, self.wait = -1.0, None, 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            maps = predict_maps(self.model, val, preprocessing)
            metrics = evaluate_keras(self.model, val, preprocessing, head, maps)
            if logs is not None:
                batches = range(0, len(val), 32)  # the training batch size's mean, as Keras' val_loss would be
                logs["val_loss"] = float(np.mean([float(loss(targets[s : s + 32], maps[s : s + 32])) for s in batches]))
                logs["val_map"], logs["val_map50"] = metrics.map, metrics.map50
            if metrics.map > self.best:
                self.best, self.best_weights, self.wait = metrics.map, self.model.get_weights(), 0
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True

    return ValidationMap()


def _resolve(
    arch: Any, train: DetectionData, weights: str | None, preprocessing: Preprocessing | None = None
) -> tuple[Any, Preprocessing, str]:
    geometry = train.geometry
    if isinstance(arch, str) and arch in DETECTORS:
        spec = DETECTORS.get(arch)
        height, width = geometry.input_size
        if min(height, width) < spec.min_size or height % 32 or width % 32:
            raise TrainingError(
                f"{arch} needs an image size that is a multiple of 32 and at least {spec.min_size}; "
                f"got {geometry.input_size}: load the dataset with image_size=128 (or 160, 192, ...)"
            )
        if geometry.channels != 3:
            raise TrainingError(f"{arch} takes 3-channel images; load the dataset with color_order='rgb' or 'bgr'")
        return spec.build((height, width, 3), len(train.labels), weights), spec.preprocessing(geometry), arch
    if isinstance(arch, (str, Path)) and str(arch).endswith(".keras"):
        model, contract = load_keras(arch)
        if contract is None or contract.task != "detection":
            raise TrainingError(f"{arch} is not an edgekit detector (its contract's task is not detection)")
        return model, contract.preprocessing, Path(arch).stem
    if isinstance(arch, keras().Model) and preprocessing is not None:  # a built detector (quantize_aware's)
        return arch, preprocessing, arch.name
    raise TrainingError(
        f"unknown detector architecture {arch!r}; valid: {', '.join(DETECTORS.names())} or a detector .keras file"
    )


def train_detector(train: DetectionData, val: DetectionData, arch: Any, options: TrainOptions) -> TrainResult:
    """Train a detector (`edgekit.train` with task "detection") and write its files.

    Writes ``model.keras`` (the epoch with the best validation mAP@[.5:.95], contract
    inside), ``metrics.json`` (mAP, mAP@.5, per-class AP per split, training time),
    ``history.png`` (loss and validation mAP per epoch) and ``val_boxes.png`` (predicted
    against ground-truth boxes on validation images). Streamed splits (load_detection(...,
    stream=True)) train through tf.data; their validation and test images are decoded once.
    """
    if not isinstance(train, DetectionData) or not isinstance(val, DetectionData):
        raise TrainingError("task='detection' needs DetectionDataset splits: edgekit.load_detection(path).split()")
    if options.teacher is not None:
        raise TrainingError("distillation (teacher=) is for classifiers; train the detector without it")
    if options.strategy is not None:
        raise TrainingError(
            "distributed training (strategy=, --devices) is for classifiers so far; train the detector on one device"
        )
    options = replace(
        options,
        epochs=60 if options.epochs is None else options.epochs,
        learning_rate=3e-3 if options.learning_rate is None else options.learning_rate,
        patience=10 if options.patience is None else options.patience,
        head=options.head or DetectionHead(),
    )
    for name, other in (("val", val), ("test", options.test)):
        if other is not None and (other.labels != train.labels or other.geometry != train.geometry):
            raise TrainingError(
                f"the {name} split has other labels or image geometry than the train split; split one dataset"
            )
    if train.object_count == 0:
        raise TrainingError("the training split has no objects: a detector needs annotated boxes to learn from")
    k = keras()
    k.utils.set_random_seed(options.seed)
    model, preprocessing, model_name = _resolve(arch or "small_detector", train, options.weights, options.preprocessing)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contract = ModelContract(
        preprocessing,
        train.labels,
        model_name=model_name,
        task="detection",
        edgekit_version=__version__,
        head=options.head.to_dict(),
    )
    val = in_memory(val)  # mAP reads every image each epoch
    test = in_memory(options.test) if options.test is not None else None
    history, seconds = _fit_detector(model, preprocessing, train, val, options)
    model_path = save_keras(model, out / "model.keras", contract)
    metrics = _report_detector(model, contract, val, test, out, history, seconds)
    return TrainResult(model, contract, out, model_path, metrics, history)


def _fit_detector(
    model: Any, preprocessing: Preprocessing, train: DetectionData, val: DetectionDataset, options: TrainOptions
) -> tuple[dict[str, list[float]], float]:
    """Fit with a cosine schedule, keeping the epoch with the best validation mAP; (history, seconds)."""
    k = keras()
    epochs = options.epochs
    batches, steps = _batches(train, preprocessing, options.batch_size, train=options.augment, seed=options.seed)
    schedule = k.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=epochs * steps, alpha=0.02)
    loss = detection_loss(len(train.labels))
    model.compile(optimizer=k.optimizers.Adam(schedule), loss=loss)
    best = _map_callback(k, val, preprocessing, options.head, options.patience, loss)
    progress = epoch_progress(k, epochs, steps, enabled=bool(options.verbose), logger=log)
    started = time.perf_counter()
    with warnings_to_debug_log("Keras fit"):  # a streamed split's unknown length ("ran out of data") and the like
        fit = model.fit(batches, epochs=epochs, verbose=0, callbacks=[best, progress, *options.callbacks])
    seconds = time.perf_counter() - started
    if best.best_weights is not None:
        model.set_weights(best.best_weights)
    return {key: [float(v) for v in values] for key, values in fit.history.items()}, seconds


def _report_detector(
    model: Any,
    contract: ModelContract,
    val: DetectionDataset,
    test: DetectionDataset | None,
    out: Path,
    history: dict[str, list[float]],
    seconds: float,
) -> dict[str, Any]:
    """mAP per split into metrics.json, history.png and val_boxes.png; return the metrics."""
    from edgekit.reports.plots import plot_detection_history, plot_detection_samples

    preprocessing, head = contract.preprocessing, DetectionHead.from_dict(contract.head)
    splits = {"val": val, **({"test": test} if test is not None else {})}
    results = {name: evaluate_keras(model, ds, preprocessing, head) for name, ds in splits.items()}
    report = "test" if test is not None else "val"
    metrics = {
        "arch": contract.model_name,
        "task": "detection",
        "edgekit_version": __version__,
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": int(np.argmax(history["val_map"])) + 1 if history.get("val_map") else None,
        "training_seconds": round(seconds, 1),
        "map": {name: m.map for name, m in results.items()},
        "map50": {name: m.map50 for name, m in results.items()},
        "report_split": report,
        "per_class_ap": results[report].per_class,
        "per_class_ap50": results[report].per_class50,
        "labels": list(contract.labels),
        "contract": contract.to_dict(),
        "history": history,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_detection_history(history, out / "history.png")
    shown = val.subset(np.arange(min(8, len(val))))
    maps = predict_maps(model, shown, preprocessing)
    found = source_detections(
        shown, *decode_maps(maps, len(val.labels), head.max_detections), head, head.score_threshold
    )
    plot_detection_samples(shown, found, out / "val_boxes.png")
    log.info(
        "trained %s in %.0f s: %s",
        contract.model_name,
        seconds,
        ", ".join(f"{n} mAP {m.map:.3f} (mAP@.5 {m.map50:.3f})" for n, m in results.items()),
    )
    return metrics
