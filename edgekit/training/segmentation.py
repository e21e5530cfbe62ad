"""Training a segmentation model: augmentation that moves masks with the images (nearest pixel, 255 where the
image has no source pixel), early stopping on validation mean IoU, and the metrics at each source image's size
(the masks predict() gives, through the same decoding)."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgekit._tf import keras
from edgekit._version import __version__
from edgekit.data.images import in_memory, is_streaming
from edgekit.data.segmentation import SegmentationDataset
from edgekit.errors import TrainingError
from edgekit.keras_io import save_keras
from edgekit.metrics.segmentation import SegmentationMetrics, segmentation_metrics
from edgekit.reports.progress import epoch_progress
from edgekit.training.batches import seeded_batches
from edgekit.training.detection import moved_with_pixels
from edgekit.training.options import TrainOptions, TrainResult
from edgekit.training.segmentation_graph import (
    SEGMENTERS,
    segmentation_loss,
)
from runtimes.contract import ModelContract, Preprocessing
from runtimes.heads.segmentation import IGNORE, SegmentationHead
from runtimes.preprocess import normalize
from runtimes.quiet import warnings_to_debug_log
from runtimes.tasks.segmentation import source_mask

log = logging.getLogger(__name__)


def augment_segmentation(
    pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator, pad_value: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The detector's augmentation (scale, flip, shift, colour) with the mask warped alike by nearest pixel."""
    out, _, _, _, matrix = moved_with_pixels(
        pixels, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), rng, pad_value
    )
    height, width = mask.shape
    moved = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_NEAREST, borderValue=IGNORE)
    return out, moved


def source_masks(scores: np.ndarray, dataset: SegmentationDataset, kind: str = "scores") -> list[np.ndarray]:
    """A batch of model outputs (one per image of `dataset`) as class masks at each source image's size."""
    return [
        source_mask(np.asarray(output, np.float32 if kind == "scores" else output.dtype), size, dataset.geometry, kind)
        for output, size in zip(scores, (tuple(int(v) for v in s) for s in dataset.source_sizes))
    ]


def evaluate_segmentation(
    model: Any, dataset: SegmentationDataset, preprocessing: Preprocessing
) -> SegmentationMetrics:
    """Mean IoU, per-class IoU and pixel accuracy of the Keras model at each source image's size (its scores
    resized to each source image as runtimes resize them)."""
    scores = np.concatenate(
        [
            np.asarray(model(dataset.tensors(preprocessing, slice(s, s + 32)), training=False))
            for s in range(0, len(dataset), 32)
        ]
    )
    return segmentation_metrics(dataset.source_masks, source_masks(scores, dataset), dataset.labels)


def _batches(dataset: Any, preprocessing: Preprocessing, batch_size: int, train: bool, seed: int) -> Any:
    """Normalized images and their input-size masks, augmented (masks move with the pixels) for training; a
    streamed dataset through tf.data (`edgekit.data.segmentation_streaming`)."""

    def prepare(pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return augment_segmentation(pixels, mask, rng, preprocessing.pad_value) if train else (pixels, mask)

    if is_streaming(dataset):
        return dataset.example_pipeline(preprocessing, batch_size, prepare, shuffle=train, seed=seed)

    def make_batch(chosen: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        images, masks = zip(*(prepare(dataset.pixels[i], dataset.masks[i], rng) for i in chosen))
        return normalize(np.stack(images), preprocessing), np.stack(masks).astype(np.int32)

    return seeded_batches(len(dataset), batch_size, train, seed, make_batch)


def _best_miou(k: Any, val: SegmentationDataset, preprocessing: Preprocessing, patience: int) -> Any:
    class BestMiou(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best, self.best_weights, self.wait = -1.0, None, 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            metrics = evaluate_segmentation(self.model, val, preprocessing)
            if logs is not None:
                logs["val_miou"], logs["val_pixel_accuracy"] = metrics.miou, metrics.pixel_accuracy
            if metrics.miou > self.best:
                self.best, self.best_weights, self.wait = metrics.miou, self.model.get_weights(), 0
            else:
                self.wait += 1
                self.model.stop_training = self.wait >= patience

    return BestMiou()


def _resolve(arch: Any, train: SegmentationDataset, options: TrainOptions) -> tuple[Any, Preprocessing, str]:
    if isinstance(arch, keras().Model) and options.preprocessing is not None:  # a built model (quantize_aware's)
        return arch, options.preprocessing, arch.name
    arch = arch or "small_segmenter"
    if arch not in SEGMENTERS:
        raise TrainingError(f"unknown segmentation architecture {arch!r}; valid: {', '.join(SEGMENTERS)}")
    spec, (height, width) = SEGMENTERS[arch], train.geometry.input_size
    if height % 16 or width % 16 or min(height, width) < spec.min_size or train.geometry.channels != 3:
        raise TrainingError(
            f"{arch} takes RGB images whose sides are multiples of 16 and at least {spec.min_size}; got "
            f"{train.geometry.input_size} with {train.geometry.channels} channel(s)"
        )
    preprocessing = replace(train.geometry, scale=spec.scale, offset=0.0, mean=None, std=None)
    return spec.build((height, width, 3), len(train.labels), options.weights), preprocessing, arch


def train_segmentation(
    train: SegmentationDataset, val: SegmentationDataset, arch: Any, options: TrainOptions
) -> TrainResult:
    """Train a segmentation model (`edgekit.train` on `SegmentationDataset` splits): ``model.keras`` (the epoch with
    the best validation mean IoU) and ``metrics.json`` (mean IoU, pixel accuracy and per-class IoU per split)."""
    if not all(hasattr(split, "geometry") and hasattr(split, "masks") for split in (train, val)):
        raise TrainingError(
            "task='segmentation' needs SegmentationDataset splits: edgekit.load_segmentation(path).split()"
        )
    val = in_memory(val)  # mIoU reads every image each epoch
    options = replace(options, test=in_memory(options.test) if options.test is not None else None)
    options = replace(
        options,
        epochs=40 if options.epochs is None else options.epochs,
        learning_rate=3e-3 if options.learning_rate is None else options.learning_rate,
        patience=8 if options.patience is None else options.patience,
    )
    k = keras()
    k.utils.set_random_seed(options.seed)
    model, preprocessing, name = _resolve(arch, train, options)
    head = options.head if isinstance(options.head, SegmentationHead) else SegmentationHead()
    contract = ModelContract(preprocessing, train.labels, name, "segmentation", __version__, head=head.to_dict())
    history, seconds = _fit(model, preprocessing, train, val, options)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = save_keras(model, out / "model.keras", contract)
    splits = {"val": val, **({"test": options.test} if options.test is not None else {})}
    results = {split: evaluate_segmentation(model, data, preprocessing) for split, data in splits.items()}
    metrics = {
        "arch": name,
        "task": "segmentation",
        "training_seconds": round(seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        "miou": {split: m.miou for split, m in results.items()},
        "pixel_accuracy": {split: m.pixel_accuracy for split, m in results.items()},
        "per_class_iou": {split: m.per_class_iou for split, m in results.items()},
        "contract": contract.to_dict(),
        "history": history,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    last = results.get("test", results["val"])
    from edgekit.reports.plots import plot_confusion

    plot_confusion(last.confusion.tolist(), train.labels, out / "confusion.png", title="pixels: truth by prediction")
    shown = ", ".join(f"{n} mIoU {m.miou:.3f}, pixel accuracy {m.pixel_accuracy:.3f}" for n, m in results.items())
    log.info("trained %s in %.0f s: %s", name, seconds, shown)
    return TrainResult(model, contract, out, model_path, metrics, history)


def _fit(
    model: Any,
    preprocessing: Preprocessing,
    train: SegmentationDataset,
    val: SegmentationDataset,
    options: TrainOptions,
) -> tuple[dict[str, list[float]], float]:
    k = keras()
    batches = _batches(train, preprocessing, options.batch_size, options.augment, options.seed)
    steps = math.ceil(len(train) / options.batch_size)
    schedule = k.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=options.epochs * steps, alpha=0.02)
    model.compile(optimizer=k.optimizers.Adam(schedule), loss=segmentation_loss())
    best = _best_miou(k, val, preprocessing, options.patience)
    progress = epoch_progress(k, options.epochs, steps, enabled=bool(options.verbose), logger=log)
    started = time.perf_counter()
    with warnings_to_debug_log("Keras fit"):
        fit = model.fit(batches, epochs=options.epochs, verbose=0, callbacks=[best, progress, *options.callbacks])
    if best.best_weights is not None and options.restore_best:
        model.set_weights(best.best_weights)
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return history, time.perf_counter() - started
