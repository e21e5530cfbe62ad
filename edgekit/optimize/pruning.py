"""`edgekit.prune`: magnitude pruning for Keras 3 models, during fine-tuning.

tensorflow-model-optimization prunes only Keras 2 (tf_keras) models. This does the same job
on Keras 3 APIs: a callback raises each prunable kernel's sparsity along a schedule, zeroing
its smallest-magnitude weights, and re-applies the masks after every step so that gradient
updates cannot revive pruned weights. The result's pruned weights are exactly zero.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit._tf import keras
from edgekit.data.images import ImageDataset
from edgekit.errors import TrainingError
from edgekit.keras_io import load_keras, save_keras
from edgekit.metrics.classification import classification_metrics
from edgekit.reports.progress import shown_progress
from edgekit.reports.tables import text_table
from edgekit.run_folders import new_run_folder
from edgekit.training.classification import train_classifier
from edgekit.training.options import TrainOptions, options_from_call
from edgekit.training.scores import predict_scores
from runtimes.registry import Registry

log = logging.getLogger(__name__)

Schedule = Callable[[float, float], float]  # (progress 0..1, target sparsity) -> sparsity now
SCHEDULES: Registry[Schedule] = Registry("pruning schedule")
SCHEDULES.register("constant")(lambda progress, target: target)
# TF-MOT's PolynomialDecay (power 3): prune fast early, when the network adapts easily
SCHEDULES.register("polynomial")(lambda progress, target: target * (1.0 - (1.0 - min(progress, 1.0)) ** 3))


@dataclass(frozen=True)
class LayerSparsity:
    """One pruned layer: its name, kind, weight count and exact zeros."""

    name: str
    kind: str
    weights: int
    zeros: int

    @property
    def sparsity(self) -> float:
        """The share of the layer's weights that are exactly zero."""
        return self.zeros / self.weights if self.weights else 0.0


@dataclass
class PruneResult:
    """The pruned model, its file and the sparsity of every pruned kernel.

    Attributes:
        model: The pruned Keras model.
        model_path: Where it was saved.
        layers: The sparsity of every pruned kernel.
        metrics: What metrics.json holds: the fine-tuning run's metrics, and under "pruning" the target sparsity,
            schedule, per-layer sparsity and the pruned accuracy.
    """

    model: Any
    model_path: Path
    layers: list[LayerSparsity]
    metrics: dict[str, Any]

    @property
    def sparsity(self) -> float:
        """The share of all pruned weights that are exactly zero."""
        total = sum(layer.weights for layer in self.layers)
        return sum(layer.zeros for layer in self.layers) / total if total else 0.0

    def table(self) -> str:
        """Per-layer sparsity as a text table, with the total."""
        rows = [[layer.name, layer.kind, str(layer.weights), f"{layer.sparsity * 100:.1f}%"] for layer in self.layers]
        rows.append(["total", "", str(sum(layer.weights for layer in self.layers)), f"{self.sparsity * 100:.1f}%"])
        return text_table(["layer", "kind", "weights", "sparsity"], rows)


def prunable_kernels(model: Any, depthwise: bool = False) -> list[tuple[Any, Any]]:
    """(layer, kernel variable) for every Conv2D (1x1 included), Dense and, optionally, DepthwiseConv2D."""
    k = keras()
    kernels = []
    for layer in _all_layers(model):
        if isinstance(layer, k.layers.DepthwiseConv2D):
            if depthwise:
                kernels.append((layer, layer.depthwise_kernel))
        elif isinstance(layer, (k.layers.Conv2D, k.layers.Dense)):
            kernels.append((layer, layer.kernel))
    return kernels


def _all_layers(model: Any) -> list[Any]:
    layers = []
    for layer in model.layers:
        layers.extend(_all_layers(layer) if hasattr(layer, "layers") and layer.layers else [layer])
    return layers


def magnitude_mask(values: np.ndarray, sparsity: float) -> np.ndarray:
    """1 where a weight is kept, 0 for the round(sparsity * size) smallest magnitudes."""
    count = int(round(sparsity * values.size))
    mask = np.ones(values.size, np.float32)
    if count > 0:
        mask[np.argsort(np.abs(values), axis=None, kind="stable")[:count]] = 0.0
    return mask.reshape(values.shape)


def _pruning_callback(
    kernels: list[tuple[Any, Any]], target: float, schedule: Schedule, total_steps: int, frequency: int
) -> Any:
    k = keras()

    class MagnitudePruning(k.callbacks.Callback):
        """Raises sparsity every `frequency` steps; masks every step so pruned weights stay zero."""

        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.masks = [k.ops.ones(tuple(var.shape), var.dtype) for _, var in kernels]

        def set_masks(self, sparsity: float) -> None:
            self.masks = [
                k.ops.convert_to_tensor(magnitude_mask(np.asarray(var), sparsity), var.dtype) for _, var in kernels
            ]

        def _apply(self) -> None:  # on the device: no copy of every kernel to numpy per step
            for (_, var), mask in zip(kernels, self.masks):
                var.assign(var * mask)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.step += 1
            if self.step % frequency == 0 or self.step >= total_steps:
                self.set_masks(schedule(self.step / total_steps, target))
            self._apply()

    return MagnitudePruning()


@dataclass(frozen=True)
class PruneOptions:
    """How `edgekit.prune` fine-tunes; every field is also a keyword of `prune` (the options-free call works).

    Attributes:
        sparsity: the fraction of each kernel's weights set to zero, in (0, 1).
        schedule: how sparsity rises over the fine-tuning (`SCHEDULES`: "polynomial", "constant").
        epochs: fine-tuning epochs.
        depthwise: prune DepthwiseConv2D kernels too (few weights, often costly to prune).
        frequency: steps between mask updates.
        learning_rate: Adam's, for the fine-tuning.
        batch_size: images per step.
        test: a held-out split the pruned accuracy is measured on (else the validation split).
        out_dir: where model.keras and metrics.json go (an earlier run's folder is kept: ``runs/prune2``, ...).
        exist_ok: write into `out_dir` even when it holds an earlier run.
        seed: the fine-tuning's seed.
        verbose: 1 logs one line per epoch; 0 is silent.
    """

    sparsity: float = 0.8
    schedule: str = "polynomial"
    epochs: int = 4
    depthwise: bool = False
    frequency: int = 10
    learning_rate: float = 3e-4
    batch_size: int = 32
    test: ImageDataset | None = None
    out_dir: str | Path = "runs/prune"
    exist_ok: bool = False
    seed: int = 0
    verbose: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity < 1.0:
            raise TrainingError(f"sparsity must be between 0 and 1 (exclusive), got {self.sparsity}")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown pruning schedule {self.schedule!r}; valid: {', '.join(SCHEDULES.names())}")


def prune(
    model: Any,
    train: ImageDataset,
    val: ImageDataset,
    sparsity: float | None = None,
    schedule: str | None = None,
    epochs: int | None = None,
    *,
    options: PruneOptions | None = None,
    **keywords: Any,
) -> PruneResult:
    """Fine-tune `model` while pruning it to `sparsity` per kernel.

    Writes ``model.keras`` (with the contract), ``metrics.json`` with the per-layer sparsity
    report, and the training plots. Export the result like any model; TFLite stores it sparse.

    Args:
        model: a keras.Model or a .keras path.
        train: the fine-tuning split.
        val: the validation split.
        sparsity: `PruneOptions.sparsity` (positional, as before).
        schedule: `PruneOptions.schedule`.
        epochs: `PruneOptions.epochs`.
        options: a `PruneOptions`; keywords (any of its fields) win over it.
        **keywords: any `PruneOptions` field.

    Returns:
        A `PruneResult`: the pruned model, its path, the per-layer sparsity and the metrics.

    Raises:
        TrainingError: a sparsity outside (0, 1), an unknown schedule or a model without prunable kernels.

    Examples:
        >>> result = edgekit.prune("runs/train/model.keras", train, val, sparsity=0.8, epochs=4)
        >>> print(result.table())
    """
    given = {"sparsity": sparsity, "schedule": schedule, "epochs": epochs}
    chosen = options_from_call(PruneOptions, options, {**{k: v for k, v in given.items() if v is not None}, **keywords})
    contract = None
    if isinstance(model, (str, Path)):
        model, contract = load_keras(model)
    kernels = prunable_kernels(model, chosen.depthwise)
    if not kernels:
        raise TrainingError("the model has no Conv2D, Dense or DepthwiseConv2D kernels to prune")
    steps = chosen.epochs * -(-len(train) // chosen.batch_size)
    callback = _pruning_callback(kernels, chosen.sparsity, SCHEDULES.get(chosen.schedule), steps, chosen.frequency)
    with shown_progress(chosen.verbose):
        result = _fine_tune(train, val, model, contract, callback, chosen)
    callback.set_masks(chosen.sparsity)  # exactly the target, once more
    callback._apply()
    save_keras(result.model, result.model_path, result.contract)
    return _pruned(result, kernels, chosen, val)


def _fine_tune(train: Any, val: Any, model: Any, contract: Any, callback: Any, chosen: PruneOptions) -> Any:
    """Train with the pruning callback and no best-epoch restore (the last epoch holds the final masks)."""
    return train_classifier(
        train,
        val,
        model,
        TrainOptions(
            test=chosen.test,
            epochs=chosen.epochs,
            batch_size=chosen.batch_size,
            learning_rate=chosen.learning_rate,
            patience=chosen.epochs,
            preprocessing=contract.preprocessing if contract else None,
            out_dir=new_run_folder(chosen.out_dir, chosen.exist_ok),
            seed=chosen.seed,
            verbose=chosen.verbose,
            callbacks=[callback],
            restore_best=False,
        ),
    )


def _pruned(result: Any, kernels: list[tuple[Any, Any]], chosen: PruneOptions, val: ImageDataset) -> PruneResult:
    """The per-layer sparsity and the pruned accuracy, written into metrics.json."""
    layers = [
        LayerSparsity(layer.name, type(layer).__name__, int(np.prod(var.shape)), int(np.sum(np.asarray(var) == 0)))
        for layer, var in kernels
    ]
    evaluated = chosen.test if chosen.test is not None else val
    accuracy = classification_metrics(
        evaluated.targets, predict_scores(result.model, evaluated, result.preprocessing), evaluated.labels
    ).accuracy
    metrics = dict(
        result.metrics,
        pruning={
            "target_sparsity": chosen.sparsity,
            "schedule": chosen.schedule,
            "depthwise": chosen.depthwise,
            "accuracy_after_pruning": accuracy,
            "layers": [dict(asdict(layer), sparsity=layer.sparsity) for layer in layers],
        },
    )
    (result.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    pruned = PruneResult(result.model, result.model_path, layers, metrics)
    log.info("pruned %d kernels to %.1f%% sparsity; accuracy %.3f", len(layers), pruned.sparsity * 100, accuracy)
    return pruned
