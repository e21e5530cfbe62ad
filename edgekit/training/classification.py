"""`edgekit.train`: fit an architecture on an image dataset and write everything a user checks."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgekit._tf import keras
from edgekit._version import __version__
from edgekit.data.image_streaming import fit_ready, is_streaming, memory_pipeline
from edgekit.data.images import ImageDataset
from edgekit.errors import TrainingError, UnknownNameError
from edgekit.keras_io import load_keras, save_keras
from edgekit.metrics.classification import classification_metrics
from edgekit.reports.plots import plot_confusion, plot_history
from edgekit.reports.progress import epoch_progress
from edgekit.training.architectures import ARCHITECTURES, Architecture
from edgekit.training.distribution import fit_multi_worker, is_chief, is_multi_worker, output_folder, scope
from runtimes._quiet import warnings_to_debug_log
from runtimes.contract import ModelContract, Preprocessing

log = logging.getLogger(__name__)

DEFAULT_USER_MODEL_SCALING = dict(scale=1 / 255, offset=0.0)


@dataclass
class TrainResult:
    """The trained model and where its files went."""

    model: Any
    contract: ModelContract
    out_dir: Path
    model_path: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.contract.preprocessing


def predict_scores(model: Any, dataset: ImageDataset, preprocessing: Preprocessing, batch_size: int = 64) -> np.ndarray:
    """Keras scores for every image of `dataset`, batch by batch through the contract."""
    chunks = [
        np.asarray(model(dataset.tensors(preprocessing, slice(start, start + batch_size)), training=False))
        for start in range(0, len(dataset), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float32)


def scored_targets(
    model: Any, dataset: Any, preprocessing: Preprocessing, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(targets, Keras scores) of every readable image: a streamed split is read through its pipeline, once."""
    if not is_streaming(dataset):
        return dataset.targets, predict_scores(model, dataset, preprocessing, batch_size)
    targets, chunks = [], []
    for x, y in dataset.pipeline(preprocessing, batch_size):
        chunks.append(np.asarray(model(x, training=False)))
        targets.append(y.numpy())
    return np.concatenate(targets), np.concatenate(chunks).astype(np.float32)


def _train_detector(train: Any, val: Any, arch: Any, *, teacher: Any, **options: Any) -> TrainResult:
    from edgekit.data.detection import DetectionData
    from edgekit.training.detection import train_detector

    if not isinstance(train, DetectionData) or not isinstance(val, DetectionData):
        raise TrainingError("task='detection' needs DetectionDataset splits: edgekit.load_detection(path).split()")
    if teacher is not None:
        raise TrainingError("distillation (teacher=) is for classifiers; train the detector without it")
    return train_detector(train, val, arch or "small_detector", **options)


def _hard_label_accuracy(num_classes: int) -> Any:
    """Accuracy on the hard labels when targets are [one-hot | teacher scores] (distillation)."""
    k = keras()

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        return k.ops.mean(k.ops.equal(k.ops.argmax(y_true[:, :num_classes], axis=-1), k.ops.argmax(y_pred, axis=-1)))

    return accuracy


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


def seeded_batches(
    count: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    make_batch: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]],
) -> Any:
    """A tf.data.Dataset of `count` items' batches in a seeded order, reshuffled each epoch when `shuffle`.

    `make_batch(indices, rng)` builds one batch in Python, one batch at a time; the same
    generator drives the order and any augmentation, so a seed gives the same training run
    (classification and detection share it). A tf.data.Dataset rather than a Keras PyDataset:
    Keras turns a PyDataset into a pipeline with tf.data's autotuner on (see `fit_ready`).
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    steps = math.ceil(count / batch_size)
    order = np.arange(count)

    def epoch() -> Any:  # called by each epoch's iterator
        nonlocal order
        if shuffle:
            order = rng.permutation(count)
        for index in range(steps):
            yield make_batch(order[index * batch_size : (index + 1) * batch_size], rng)

    probe = make_batch(np.arange(min(count, batch_size)), np.random.default_rng(seed))  # shapes and types only
    signature = tuple(tf.TensorSpec((None, *np.shape(part)[1:]), tf.as_dtype(np.asarray(part).dtype)) for part in probe)
    data = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    return fit_ready(data.apply(tf.data.experimental.assert_cardinality(steps)))


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


def train(
    train: Any,
    val: Any,
    arch: Any = None,
    *,
    task: str | None = None,
    test: ImageDataset | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    learning_rate: float | None = None,
    patience: int | None = None,
    weights: str | None = None,
    preprocessing: Preprocessing | None = None,
    augment: bool = True,
    out_dir: str | Path = "runs/train",
    seed: int = 0,
    verbose: int = 1,
    callbacks: Sequence[Any] = (),
    restore_best: bool = True,
    teacher: Any = None,
    temperature: float = 4.0,
    alpha: float = 0.5,
    head: Any = None,
    strategy: Any = None,
) -> TrainResult:
    """Train `arch` (a registered name, a keras.Model or a .keras path) and write its files.

    With `teacher` (a Keras model, a .keras path or any artifact `edgekit.load` runs), the
    model learns from a blend of the hard labels (weight `alpha`) and the teacher's outputs
    softened by `temperature`: knowledge distillation. `restore_best=False` keeps the last
    epoch's weights instead of the best validation loss's (pruning needs the final masks).
    `verbose=1` logs one line per epoch (logger ``edgekit.training.classification``; shown by the CLI) and draws a
    bar per epoch when stderr is a terminal; `verbose=0` is silent. Keras' own bars stay off.

    Writes ``model.keras`` (best epoch by validation loss, with the contract inside),
    ``metrics.json``, ``history.png`` and ``confusion.png`` to `out_dir`.

    `strategy` (a tf.distribute strategy, e.g. `edgekit.training.distribution.strategy_for(2)`) trains on
    several devices or machines: the model, optimizer and metrics are built in its scope,
    `batch_size` is the global batch, and only the chief writes files (the same files as on one
    device).

    `task="detection"` (implied by DetectionDataset splits) trains a detector instead
    (`arch` "small_detector" by default, or "mobilenetv2_detector"): see
    `edgekit.training.detection.train_detector`; `head` (a DetectionHead) sets its default
    thresholds and maximum detections.

    Example:
        >>> tr, va, te = edgekit.ImageFolder("shapes", image_size=64).split(seed=0)
        >>> result = edgekit.train(tr, va, arch="small_cnn", test=te, epochs=15)
        >>> result.metrics["accuracy"]["test"]
        0.95
    """
    from edgekit.data.detection import DetectionData

    task = task or ("detection" if isinstance(train, DetectionData) else "classification")
    if task == "detection" and strategy is not None:
        raise TrainingError(
            "distributed training (strategy=, --devices) is for classifiers so far; train the detector on one device"
        )
    if task == "detection":  # the one place training forks: each task has its own loop
        given = {
            "epochs": epochs,
            "learning_rate": learning_rate,
            "patience": patience,
        }  # unset: the detector's own defaults
        return _train_detector(
            train,
            val,
            arch,
            test=test,
            batch_size=batch_size,
            weights=weights,
            augment=augment,
            out_dir=out_dir,
            seed=seed,
            verbose=verbose,
            callbacks=callbacks,
            teacher=teacher,
            head=head,
            **{key: value for key, value in given.items() if value is not None},
        )
    if task != "classification":
        raise TrainingError(f"unknown task {task!r}; valid tasks: classification, detection")
    if isinstance(train, DetectionData):
        raise TrainingError("task='classification' needs an ImageDataset; these splits hold boxes (a DetectionDataset)")
    arch = arch or "small_cnn"
    epochs = 20 if epochs is None else epochs
    learning_rate = 1e-3 if learning_rate is None else learning_rate
    patience = 5 if patience is None else patience
    if epochs < 1 or batch_size < 1:
        raise TrainingError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    for name, other in (("val", val), ("test", test)):
        if other is not None and (other.labels != train.labels or other.geometry != train.geometry):
            raise TrainingError(
                f"the {name} split has other labels or image geometry than the train split; split one dataset"
            )
    k = keras()
    k.utils.set_random_seed(seed)
    with scope(strategy):  # variables (model, optimizer, metrics) are made where the strategy places them
        model, preprocessing, model_name = _resolve_model(arch, train, weights, preprocessing)
    with output_folder(Path(out_dir), is_chief(strategy)) as out:
        return _fit_classifier(
            model,
            preprocessing,
            model_name,
            train,
            val,
            test,
            out,
            epochs,
            batch_size,
            learning_rate,
            patience,
            augment,
            seed,
            verbose,
            callbacks,
            restore_best,
            teacher,
            temperature,
            alpha,
            strategy,
        )


def _fit_classifier(
    model: Any,
    preprocessing: Preprocessing,
    model_name: str,
    train: Any,
    val: Any,
    test: Any,
    out: Path,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    augment: bool,
    seed: int,
    verbose: int,
    callbacks: Sequence[Any],
    restore_best: bool,
    teacher: Any,
    temperature: float,
    alpha: float,
    strategy: Any,
) -> TrainResult:
    k = keras()
    contract = ModelContract(preprocessing, train.labels, model_name=model_name, edgekit_version=__version__)
    soft_targets = None
    if teacher is not None and is_streaming(train):
        raise TrainingError(
            "distillation reads the teacher's scores for every training image: load the dataset "
            "into memory (ImageFolder(..., stream=False)) to distill"
        )
    if teacher is not None and strategy is not None:
        raise TrainingError("distillation runs on one device so far; drop strategy= (or --devices) to distill")
    if teacher is not None:
        from edgekit.optimize.distillation import distillation_loss, teacher_scores

        soft_targets = teacher_scores(teacher, train, preprocessing)
        loss: Any = distillation_loss(len(train.labels), temperature, alpha)
        metrics: list[Any] = [_hard_label_accuracy(len(train.labels))]
    else:
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    with scope(strategy):
        model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    checkpoint = out / ".best.weights.h5"
    all_callbacks = [k.callbacks.EarlyStopping(monitor="val_loss", patience=patience), *callbacks]
    if restore_best:
        all_callbacks.insert(
            0, k.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True)
        )
    val_soft = None if soft_targets is None else teacher_scores(teacher, val, preprocessing)
    distributed = strategy is not None
    batches = _batches(
        train, preprocessing, batch_size, train=augment, seed=seed, soft=soft_targets, distributed=distributed
    )
    steps = math.ceil(len(train) / batch_size)
    all_callbacks.append(epoch_progress(k, epochs, steps, enabled=bool(verbose), logger=log))
    val_batches = _batches(
        val, preprocessing, batch_size, train=False, seed=seed, soft=val_soft, distributed=distributed
    )
    if distributed and is_multi_worker(strategy):
        history = fit_multi_worker(model, strategy, batches, val_batches, epochs, batch_size, all_callbacks)
    else:
        with warnings_to_debug_log("Keras fit"):  # a streamed split's unknown length ("ran out of data") and the like
            fit = model.fit(  # Keras' own bars stay off: edgekit's callback shows one line per epoch
                batches,
                validation_data=val_batches,
                epochs=epochs,
                callbacks=all_callbacks,
                verbose=0,
                shuffle=False,  # the batches shuffle themselves, seeded
            )
        history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    if restore_best and checkpoint.exists():
        model.load_weights(checkpoint)
        checkpoint.unlink()
    model_path = save_keras(model, out / "model.keras", contract)

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
    return TrainResult(model, contract, out, model_path, metrics, history)
