"""Training a keypoint model: augmentation that moves points with the image (a flip swaps them through the
dataset's flip map), early stopping on validation OKS mAP, and the metrics: OKS mAP, PCK@0.1, point error."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgekit._tf import keras
from edgekit._version import __version__
from edgekit.data.images import in_memory, is_streaming
from edgekit.data.keypoint_datasets import KeypointDataset, is_keypoint_data
from edgekit.errors import TrainingError
from edgekit.keras_io import save_keras
from edgekit.metrics.keypoints import KeypointMetrics, default_sigmas, keypoint_metrics
from edgekit.reports.progress import epoch_progress
from edgekit.training.batches import seeded_batches
from edgekit.training.detection import moved_with_pixels, predict_maps
from edgekit.training.detector_graph import DETECTORS
from edgekit.training.keypoint_graph import (
    KEYPOINT_DETECTORS,
    build_keypoint_detector,
    encode_keypoint_targets,
    keypoint_loss,
)
from edgekit.training.options import TrainOptions, TrainResult
from runtimes.contract import ModelContract, Preprocessing
from runtimes.heads.keypoints import KeypointHead
from runtimes.preprocess import normalize
from runtimes.quiet import warnings_to_debug_log
from runtimes.tasks.keypoint_maps import DecodedKeypoints, decode_keypoint_maps, per_image
from runtimes.tasks.keypoints import KeypointOptions, select_objects

log = logging.getLogger(__name__)


def augment_keypoints(
    pixels: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    points: np.ndarray,
    flip_idx: tuple[int, ...],
    rng: np.random.Generator,
    pad_value: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The detector's augmentation with each object's (K, 3) input-pixel points moved along: a flip mirrors them
    and swaps them through `flip_idx`; a point pushed out of the frame becomes unlabelled (visibility 0)."""
    out, boxes, classes, keep, matrix = moved_with_pixels(pixels, boxes, classes, rng, pad_value)
    moved = points[keep].copy()
    moved[..., 0] = points[keep][..., 0] * matrix[0, 0] + matrix[0, 2]
    moved[..., 1] = points[keep][..., 1] * matrix[1, 1] + matrix[1, 2]
    if matrix[0, 0] < 0:
        moved = moved[:, list(flip_idx)]
    height, width = pixels.shape[:2]
    outside = (moved[..., 0] < 0) | (moved[..., 0] > width) | (moved[..., 1] < 0) | (moved[..., 1] > height)
    moved[..., 2] = np.where(outside, 0.0, moved[..., 2])
    return out, boxes, classes, moved


def input_points(dataset: KeypointDataset, index: int) -> np.ndarray:
    """Image `index`'s points (n, K, 3) in model-input pixels (where the resize put them)."""
    mapping, points = dataset.mapping(index), dataset.keypoints[index].copy()
    points[..., 0] = points[..., 0] * mapping.scale_x + mapping.offset_x
    points[..., 1] = points[..., 1] * mapping.scale_y + mapping.offset_y
    return points


def _batches(dataset: Any, preprocessing: Preprocessing, batch_size: int, train: bool, seed: int) -> Any:
    """Normalized images and their encoded targets, augmented (points move with the pixels) for training; a
    streamed dataset through tf.data (`edgekit.data.keypoint_datasets`)."""
    num_classes = len(dataset.labels)
    boxes = [dataset.input_boxes(i) for i in range(len(dataset))]
    points = [input_points(dataset, i) for i in range(len(dataset))]

    def prepare(pixels: np.ndarray, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        b, c, p = boxes[i], dataset.classes[i], points[i]
        if train:
            pixels, b, c, p = augment_keypoints(pixels, b, c, p, dataset.flip_idx, rng, preprocessing.pad_value)
        return pixels, encode_keypoint_targets(b, c, p, preprocessing.input_size, num_classes)

    if is_streaming(dataset):
        shape = prepare(np.zeros((*preprocessing.input_size, 3), np.uint8), 0, np.random.default_rng(0))[1].shape
        return dataset.example_pipeline(preprocessing, batch_size, prepare, shape, shuffle=train, seed=seed)

    def make_batch(chosen: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        images, targets = zip(*(prepare(dataset.pixels[i], int(i), rng) for i in chosen))
        return normalize(np.stack(images), preprocessing), np.stack(targets)

    return seeded_batches(len(dataset), batch_size, train, seed, make_batch)


def split_maps(maps: np.ndarray, num_classes: int, num_points: int) -> list[np.ndarray]:
    """The training graph's one concatenated map -> the maps layout's heat, box sides, point offsets and point
    visibilities (what an exported file's four outputs hold)."""
    c, k = num_classes, num_points
    return [maps[..., :c], maps[..., c : c + 4], maps[..., c + 4 : c + 4 + 2 * k], maps[..., c + 4 + 2 * k :]]


def source_objects(
    candidates: Sequence[DecodedKeypoints], dataset: KeypointDataset, head: KeypointHead, threshold: float
) -> list:
    """Per image: (boxes, scores, classes, points (m, K, 2), point scores (m, K)) in source pixels, the candidates
    scoring at least `threshold` after the head's NMS: what predict() gives for each image."""
    options = KeypointOptions(threshold, head.iou_threshold, head.max_detections)
    height, width = dataset.geometry.input_size
    found = []
    for i, candidate in enumerate(candidates):
        kept = select_objects(candidate, head.nms, options)
        mapping = dataset.mapping(i)
        boxes = mapping.normalized_to_source((height, width), tuple(dataset.source_sizes[i]))(kept.boxes)
        points = mapping.points_to_source(kept.points, (height, width))
        found.append((boxes, kept.scores, kept.classes, points, kept.point_scores))
    return found


def found_objects(maps: np.ndarray, dataset: KeypointDataset, head: KeypointHead, threshold: float) -> list:
    """`source_objects` of the training graph's raw maps (a batch, one per image of `dataset`)."""
    parts = split_maps(maps, len(dataset.labels), len(dataset.keypoint_names))
    batch = decode_keypoint_maps(*parts, head.max_detections)
    return source_objects(per_image(batch), dataset, head, threshold)


def evaluate_keypoints(
    model: Any, dataset: KeypointDataset, preprocessing: Preprocessing, head: KeypointHead
) -> KeypointMetrics:
    """OKS mAP, PCK@0.1 and the point error of the Keras model on `dataset` (scores from 0.05, as mAP needs)."""
    found = found_objects(predict_maps(model, dataset, preprocessing), dataset, head, 0.05)
    return keypoint_metrics(
        dataset.boxes,
        dataset.classes,
        dataset.keypoints,
        *(list(part) for part in list(zip(*found))[:4]),
        labels=dataset.labels,
        sigmas=head.sigmas,
    )


def _best_oks(k: Any, val: KeypointDataset, preprocessing: Preprocessing, head: KeypointHead, patience: int) -> Any:
    class BestOks(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best, self.best_weights, self.wait = -1.0, None, 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            metrics = evaluate_keypoints(self.model, val, preprocessing, head)
            if logs is not None:
                logs["val_oks_map"], logs["val_pck"] = metrics.oks_map, metrics.pck
            if metrics.oks_map >= self.best:  # a tie keeps the later epoch: before any object is found, all are 0
                self.best, self.best_weights, self.wait = metrics.oks_map, self.model.get_weights(), 0
            else:
                self.wait += 1
                self.model.stop_training = self.wait >= patience

    return BestOks()


def _resolve(arch: Any, train: KeypointDataset, options: TrainOptions) -> tuple[Any, Preprocessing, str, KeypointHead]:
    """The model to train, its preprocessing, name and head: a new small keypoint detector, a keypoint model's
    .keras file (fine-tuned) or a built one with `options`' preprocessing and head (quantize_aware's)."""
    if isinstance(arch, (str, Path)) and str(arch).endswith(".keras"):
        from edgekit.keras_io import load_keras

        model, contract = load_keras(arch)
        if contract is None or contract.task != "keypoints":
            raise TrainingError(f"{arch} is not an edgekit keypoint model (its contract's task is not keypoints)")
        return model, contract.preprocessing, Path(arch).stem, KeypointHead.from_dict(contract.head)
    if isinstance(arch, keras().Model) and options.preprocessing is not None and options.head is not None:
        return arch, options.preprocessing, arch.name, options.head
    arch = arch or "small_keypoint_detector"
    if arch not in KEYPOINT_DETECTORS:
        raise TrainingError(
            f"unknown keypoint architecture {arch!r}; valid: {', '.join(KEYPOINT_DETECTORS)} or a keypoint "
            "model's .keras file"
        )
    spec = DETECTORS.get(KEYPOINT_DETECTORS[arch])
    height, width = train.geometry.input_size
    if height % 32 or width % 32 or min(height, width) < spec.min_size or train.geometry.channels != 3:
        raise TrainingError(
            f"{arch} takes RGB images whose sides are multiples of 32 and at least {spec.min_size}; got "
            f"{train.geometry.input_size} with {train.geometry.channels} channel(s)"
        )
    model = build_keypoint_detector(
        (height, width, 3), len(train.labels), len(train.keypoint_names), spec.name, options.weights
    )
    head = KeypointHead(
        train.keypoint_names,
        train.skeleton,
        train.flip_idx,
        default_sigmas(train.keypoint_names),
        score_threshold=0.3,  # the detector's defaults: its heat peaks score as a detector's do
        iou_threshold=0.5,
        max_detections=50,
        layout="maps",
        nms="plain",
    )
    return model, spec.preprocessing(train.geometry), arch, head


def train_keypoints(train: KeypointDataset, val: KeypointDataset, arch: Any, options: TrainOptions) -> TrainResult:
    """Train a keypoint model (`edgekit.train` on `KeypointDataset` splits): ``model.keras`` (the epoch with the
    best validation OKS mAP, its contract naming the points, skeleton, flip map and sigmas) and ``metrics.json``
    (OKS mAP, PCK@0.1 and the mean point error per split)."""
    if not all(is_keypoint_data(split) for split in (train, val)):
        raise TrainingError("task='keypoints' needs KeypointDataset splits: edgekit.load_keypoints(path).split()")
    val = in_memory(val)  # OKS mAP reads every image each epoch
    options = replace(options, test=in_memory(options.test) if options.test is not None else None)
    options = replace(
        options,
        epochs=60 if options.epochs is None else options.epochs,
        learning_rate=3e-3 if options.learning_rate is None else options.learning_rate,
        patience=10 if options.patience is None else options.patience,
    )
    k = keras()
    k.utils.set_random_seed(options.seed)
    model, preprocessing, name, head = _resolve(arch, train, options)
    contract = ModelContract(preprocessing, train.labels, name, "keypoints", __version__, head=head.to_dict())
    history, seconds = _fit(model, preprocessing, train, val, head, options)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = save_keras(model, out / "model.keras", contract)
    splits = {"val": val, **({"test": options.test} if options.test is not None else {})}
    results = {name: evaluate_keypoints(model, data, preprocessing, head) for name, data in splits.items()}
    metrics = {
        "arch": contract.model_name,
        "task": "keypoints",
        "training_seconds": round(seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        **{key: {name: getattr(m, key) for name, m in results.items()} for key in ("oks_map", "pck", "mean_error_px")},
        "contract": contract.to_dict(),
        "history": history,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    shown = ", ".join(f"{n} OKS mAP {m.oks_map:.3f}, PCK@0.1 {m.pck:.3f}" for n, m in results.items())
    log.info("trained %s in %.0f s: %s", contract.model_name, seconds, shown)
    return TrainResult(model, contract, out, model_path, metrics, history)


def _fit(
    model: Any,
    preprocessing: Preprocessing,
    train: KeypointDataset,
    val: KeypointDataset,
    head: KeypointHead,
    options: TrainOptions,
) -> tuple[dict[str, list[float]], float]:
    k = keras()
    batches = _batches(train, preprocessing, options.batch_size, options.augment, options.seed)
    steps = math.ceil(len(train) / options.batch_size)
    schedule = k.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=options.epochs * steps, alpha=0.02)
    model.compile(
        optimizer=k.optimizers.Adam(schedule), loss=keypoint_loss(len(train.labels), len(head.keypoint_names))
    )
    best = _best_oks(k, val, preprocessing, head, options.patience)
    progress = epoch_progress(k, options.epochs, steps, enabled=bool(options.verbose), logger=log)
    started = time.perf_counter()
    with warnings_to_debug_log("Keras fit"):
        fit = model.fit(batches, epochs=options.epochs, verbose=0, callbacks=[best, progress, *options.callbacks])
    if best.best_weights is not None and options.restore_best:
        model.set_weights(best.best_weights)
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return history, time.perf_counter() - started
