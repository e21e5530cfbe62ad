"""Classifier training (`edgekit.train` for classification): fit an architecture on an image dataset and write
everything a user checks."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._tf import keras
from edgekit._version import __version__
from edgekit.data.image_streaming import StreamingImageDataset, memory_pipeline
from edgekit.data.images import ImageDataset, is_streaming
from edgekit.errors import TrainingError, UnknownNameError
from edgekit.keras_io import load_keras, save_keras
from edgekit.metrics.classification import classification_metrics
from edgekit.reports.plots import plot_confusion, plot_history
from edgekit.reports.progress import epoch_progress
from edgekit.training.architectures import ARCHITECTURES, Architecture
from edgekit.training.batches import seeded_batches
from edgekit.training.distribution import fit_multi_worker, is_chief, is_multi_worker, output_folder, scope
from edgekit.training.options import TrainOptions, TrainResult
from edgekit.training.scores import scored_targets
from edgekit.training.soft_targets import distillation_loss, hard_label_accuracy, teacher_scores
from runtimes.contract import ModelContract, Preprocessing
from runtimes.quiet import warnings_to_debug_log

log = logging.getLogger(__name__)

DEFAULT_USER_MODEL_SCALING = dict(scale=1 / 255, offset=0.0)


def _batches(
    dataset: ImageDataset,
    preprocessing: Preprocessing,
    batch_size: int,
    train: bool,
    seed: int,
    soft: np.ndarray | None = None,
    distributed: bool = False,
) -> Any:
    """A tf.data.Dataset of batches normalized by the runtime's own code (see `seeded_batches`).

    With `soft` (teacher scores per image), targets are [one-hot labels | teacher scores].
    A streamed dataset gives its tf.data pipeline instead (decoded per epoch, same pixels).
    """
    if is_streaming(dataset):  # train() refuses distillation on streamed data first
        return dataset.pipeline(preprocessing, batch_size, shuffle=train, seed=seed, flip=train)
    if distributed:  # tf.distribute takes tf.data (measured: a PyDataset under MirroredStrategy stayed at chance)
        return memory_pipeline(dataset, preprocessing, batch_size, shuffle=train, seed=seed, flip=train)
    width_axis = 3 if preprocessing.layout.value == "nchw" else 2

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        chosen = np.sort(indices)
        x = dataset.tensors(preprocessing, chosen)
        if train:  # mirror half the batch: shapes and most photos keep their class
            flip = rng.random(len(x)) < 0.5
            x[flip] = np.flip(x[flip], axis=width_axis)
        if soft is None:
            return x, dataset.targets[chosen]
        onehot = np.eye(soft.shape[1], dtype=np.float32)[dataset.targets[chosen]]
        return x, np.concatenate([onehot, soft[chosen]], axis=1)

    return seeded_batches(len(dataset), batch_size, train, seed, make_batch)


def _resolve_model(
    arch: Any, train: ImageDataset, weights: str | None, preprocessing: Preprocessing | None
) -> tuple[Any, Preprocessing, str]:
    """Build or load the network; return it with the preprocessing contract it will be trained under."""
    k = keras()
    geometry = train.geometry
    channels = geometry.channels
    if isinstance(arch, str) and arch in ARCHITECTURES:
        spec: Architecture = ARCHITECTURES.get(arch)
        if min(geometry.input_size) < spec.min_size:
            raise TrainingError(
                f"{arch} needs images of at least {spec.min_size}x{spec.min_size}; got {geometry.input_size}"
            )
        if spec.needs_rgb and channels != 3:
            raise TrainingError(f"{arch} takes 3-channel images; load the dataset with color_order='rgb' or 'bgr'")
        model = spec.build((*geometry.input_size, channels), len(train.labels), weights)
        return model, preprocessing or spec.preprocessing(geometry), arch
    if isinstance(arch, (str, Path)) and str(arch).endswith(".keras"):
        model, contract = load_keras(arch)
        preprocessing = preprocessing or (contract.preprocessing if contract else None)
        name = Path(arch).stem
    elif isinstance(arch, k.Model):
        model, name = arch, arch.name
    else:
        raise UnknownNameError(
            f"unknown architecture {arch!r}; valid architectures: {', '.join(ARCHITECTURES.names())}, "
            "a keras.Model, or the path of a .keras file"
        )
    if preprocessing is None:
        preprocessing = replace(geometry, mean=None, std=None, **DEFAULT_USER_MODEL_SCALING)
        log.warning("no preprocessing given for a user model: training it on pixels * 1/255")
    expected = tuple(model.input_shape[1:])
    if expected != tuple(preprocessing.input_shape):
        raise TrainingError(
            f"model input shape {expected} does not match the dataset images {preprocessing.input_shape}"
        )
    outputs = model.output_shape[-1]
    if outputs != len(train.labels):
        raise TrainingError(f"model outputs {outputs} scores but the dataset has {len(train.labels)} classes")
    return model, preprocessing, name


def train_classifier(train: ImageDataset, val: ImageDataset, arch: Any, options: TrainOptions) -> TrainResult:
    """Train a classifier (`edgekit.train` with task "classification"; its docstring says what is written)."""
    if not isinstance(train, ImageDataset | StreamingImageDataset):
        raise TrainingError("task='classification' needs an ImageDataset; these splits hold boxes (a DetectionDataset)")
    arch = arch or "small_cnn"
    options = replace(
        options,
        epochs=20 if options.epochs is None else options.epochs,
        learning_rate=1e-3 if options.learning_rate is None else options.learning_rate,
        patience=5 if options.patience is None else options.patience,
    )
    for name, other in (("val", val), ("test", options.test)):
        if other is not None and (other.labels != train.labels or other.geometry != train.geometry):
            raise TrainingError(
                f"the {name} split has other labels or image geometry than the train split; split one dataset"
            )
    if options.teacher is not None and is_streaming(train):
        raise TrainingError(
            "distillation reads the teacher's scores for every training image: load the dataset "
            "into memory (ImageFolder(..., stream=False)) to distill"
        )
    if options.teacher is not None and options.strategy is not None:
        raise TrainingError("distillation runs on one device so far; drop strategy= (or --devices) to distill")
    k = keras()
    k.utils.set_random_seed(options.seed)
    with scope(options.strategy):  # variables (model, optimizer, metrics) are made where the strategy places them
        model, preprocessing, model_name = _resolve_model(arch, train, options.weights, options.preprocessing)
    with output_folder(Path(options.out_dir), is_chief(options.strategy)) as out:
        contract = ModelContract(preprocessing, train.labels, model_name=model_name, edgekit_version=__version__)
        history = _fit(model, preprocessing, train, val, out, options)
        model_path = save_keras(model, out / "model.keras", contract)
        metrics = _report(model, contract, train, val, out, history, options.test)
        return TrainResult(model, contract, out, model_path, metrics, history)


def _fit(model: Any, preprocessing: Preprocessing, train: Any, val: Any, out: Path, options: TrainOptions) -> dict:
    """Compile and fit `model` (with the teacher's scores when distilling); the best epoch's weights kept."""
    k = keras()
    soft_targets = val_soft = None
    loss: Any = "sparse_categorical_crossentropy"
    metrics: list[Any] = ["accuracy"]
    if options.teacher is not None:
        soft_targets = teacher_scores(options.teacher, train, preprocessing)
        val_soft = teacher_scores(options.teacher, val, preprocessing)
        loss = distillation_loss(len(train.labels), options.temperature, options.alpha)
        metrics = [hard_label_accuracy(len(train.labels))]
    with scope(options.strategy):
        model.compile(optimizer=k.optimizers.Adam(options.learning_rate), loss=loss, metrics=metrics)
    checkpoint = out / ".best.weights.h5"
    callbacks = [k.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience), *options.callbacks]
    if options.restore_best:
        best = k.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True)
        callbacks.insert(0, best)
    distributed = options.strategy is not None
    seed, batch_size = options.seed, options.batch_size
    batches = _batches(train, preprocessing, batch_size, options.augment, seed, soft_targets, distributed)
    steps = math.ceil(len(train) / batch_size)
    callbacks.append(epoch_progress(k, options.epochs, steps, enabled=bool(options.verbose), logger=log))
    val_batches = _batches(val, preprocessing, batch_size, False, seed, val_soft, distributed)
    if distributed and is_multi_worker(options.strategy):
        history = fit_multi_worker(model, options.strategy, batches, val_batches, options.epochs, batch_size, callbacks)
    else:
        with warnings_to_debug_log("Keras fit"):  # a streamed split's unknown length ("ran out of data") and the like
            fit = model.fit(  # Keras' own bars stay off: edgekit's callback shows one line per epoch
                batches,
                validation_data=val_batches,
                epochs=options.epochs,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,  # the batches shuffle themselves, seeded
            )
        history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    if options.restore_best and checkpoint.exists():
        model.load_weights(checkpoint)
        checkpoint.unlink()
    return history


def _report(
    model: Any, contract: ModelContract, train: Any, val: Any, out: Path, history: dict, test: Any
) -> dict[str, Any]:
    """Score every split, write metrics.json, history.png and confusion.png; return the metrics."""
    preprocessing, model_name = contract.preprocessing, contract.model_name
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    results = {
        name: classification_metrics(*scored_targets(model, ds, preprocessing), ds.labels)
        for name, ds in splits.items()
    }
    report_split = "test" if test is not None else "val"
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else len(history.get("loss", []))
    metrics = {
        "arch": model_name,
        "edgekit_version": __version__,
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": best_epoch,
        "accuracy": {name: m.accuracy for name, m in results.items()},
        "report_split": report_split,
        "per_class": results[report_split].per_class,
        "confusion": results[report_split].confusion,
        "labels": list(train.labels),
        "contract": contract.to_dict(),
        "history": history,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_history(history, out / "history.png")
    plot_confusion(
        results[report_split].confusion, train.labels, out / "confusion.png", title=f"confusion ({report_split})"
    )
    log.info("trained %s: %s", model_name, ", ".join(f"{n} {a:.3f}" for n, a in metrics["accuracy"].items()))
    return metrics
