"""What `edgekit.train` takes (`TrainOptions`, as MediaPipe Model Maker's HParams) and gives (`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence, TypeVar

from edgekit.errors import TrainingError
from runtimes.contract import ModelContract, Preprocessing

T = TypeVar("T")


def options_from_call(kind: type[T], options: T | None, keywords: dict[str, Any]) -> T:
    """An options dataclass from a call: `options` (or the defaults) with `keywords` applied over it, so the
    keyword form of `train`, `prune` and `distill` keeps working. An unknown keyword is named with the valid ones."""
    valid = [f.name for f in fields(kind)]  # type: ignore[arg-type]
    unknown = sorted(set(keywords) - set(valid))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for {kind.__name__}; valid: {', '.join(valid)}")
    base = {name: getattr(options, name) for name in valid} if options is not None else {}
    return kind(**{**base, **keywords})


@dataclass(frozen=True)
class TrainOptions:
    """How to train; every field is also a keyword of `edgekit.train` (the options-free call still works).

    Attributes:
        task: "classification" or "detection"; None infers it from the splits (DetectionDataset: detection).
        test: a held-out split, scored after training (metrics.json, the confusion plot).
        epochs: at most this many epochs (early stopping on the validation loss); None: the task's default.
        batch_size: the global batch (split across devices under a `strategy`).
        learning_rate: Adam's; None: the task's default.
        patience: epochs without a better validation loss before stopping; None: the task's default.
        weights: "imagenet" to start a keras.applications backbone from its pretrained weights.
        preprocessing: the contract's preprocessing for a user's own keras.Model (a registered architecture
            brings its own).
        augment: flip (and for detectors, scale and translate) training images.
        out_dir: where model.keras, metrics.json and the plots go; a folder holding an earlier run is kept and
            this run goes to the next free ``out_dir2``, ``out_dir3``, ... (`TrainResult.out_dir` says which).
        exist_ok: write into `out_dir` even when it holds an earlier run.
        seed: one seed for the order, augmentation and initialization: the same seed, the same run.
        verbose: 1 logs one line per epoch (and draws a bar on a terminal); 0 is silent.
        callbacks: extra Keras callbacks.
        restore_best: keep the best validation loss's weights (False: the last epoch's, as pruning needs).
        teacher: distill from this model (a keras.Model, a .keras path or any artifact `edgekit.load` runs).
        temperature: distillation's softening of both sides' scores.
        alpha: the hard labels' weight in distillation's loss (the teacher's: 1 - alpha).
        head: a detector's `DetectionHead` (default thresholds and maximum detections).
        strategy: a tf.distribute strategy to train on several devices or machines.
    """

    task: str | None = None
    test: Any = None
    epochs: int | None = None
    batch_size: int = 32
    learning_rate: float | None = None
    patience: int | None = None
    weights: str | None = None
    preprocessing: Preprocessing | None = None
    augment: bool = True
    out_dir: str | Path = "runs/train"
    exist_ok: bool = False
    seed: int = 0
    verbose: int = 1
    callbacks: Sequence[Any] = ()
    restore_best: bool = True
    teacher: Any = None
    temperature: float = 4.0
    alpha: float = 0.5
    head: Any = None
    strategy: Any = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1 or self.batch_size < 1:
            raise TrainingError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.temperature <= 0 or not 0.0 <= self.alpha <= 1.0:
            raise TrainingError(f"temperature must be > 0 and alpha in [0, 1]; got {self.temperature} and {self.alpha}")

    @classmethod
    def from_call(cls, options: TrainOptions | None, keywords: dict[str, Any]) -> TrainOptions:
        """`options` with `keywords` (edgekit.train's keyword form) applied; an unknown keyword is named."""
        return options_from_call(cls, options, keywords)


@dataclass
class TrainResult:
    """The trained model and where its files went.

    Attributes:
        model: The trained Keras model.
        contract: Its preprocessing contract, labels and task.
        out_dir: The run's folder.
        model_path: The saved model (model.keras, the contract inside).
        metrics: What metrics.json holds: accuracy (or mAP) per split, epochs, training time.
        history: Keras' per-epoch history (loss, val_loss, ...).
    """

    model: Any
    contract: ModelContract
    out_dir: Path
    model_path: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.contract.preprocessing
