"""`edgekit.quantize_aware`: quantization-aware training for Keras 3 models.

tensorflow-model-optimization's QAT works only on Keras 2 (tf_keras). This fine-tunes a trained Keras 3 model
with int8 simulated as TFLite computes it (`qat_graph`: BatchNorm folded, activations fused; `fake_quant`:
per-channel symmetric weights, per-tensor activation ranges from the data, straight-through gradients). The
activation ranges follow the data for the first epochs and are frozen for the last, so the weights settle on
the ranges the int8 file will use. `edgekit.export` then reads the ranges from the model: `tflite:int8` needs
no calibration data and is integer everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import AWARE_TRAINING
from edgekit._tf import keras
from edgekit.errors import ContractError, TrainingError
from edgekit.keras_io import load_keras, read_keras_contract, save_keras
from edgekit.optimize.qat_graph import activation_ranges, is_qat_model, qat_model
from edgekit.reports.progress import shown_progress
from edgekit.run_folders import new_run_folder, write_run_splits
from edgekit.training.options import TrainOptions, TrainResult, options_from_call
from runtimes.contract import ModelContract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QATOptions:
    """How `edgekit.quantize_aware` fine-tunes; every field is also a keyword of `quantize_aware`.

    Attributes:
        epochs: fine-tuning epochs (a few: about a quarter of the original training's is typical).
        freeze_after: epochs during which activation ranges follow the data; frozen after (None: all but the
            last epoch, or the only one).
        learning_rate: Adam's; small, as for any fine-tuning of a trained model.
        batch_size: images per step.
        range_batches: batches the activation ranges are first measured on, before any weight moves.
        decay: the ranges' moving average per step (TF-MOT's is 0.999, for long runs).
        test: a held-out split scored after fine-tuning (else none).
        out_dir: where model.keras and metrics.json go (an earlier run's folder is kept: ``runs/qat2``, ...).
        exist_ok: write into `out_dir` even when it holds an earlier run.
        seed: the fine-tuning's seed.
        verbose: 1 logs one line per epoch; 0 is silent.
    """

    epochs: int = 3
    freeze_after: int | None = None
    learning_rate: float = 1e-4
    batch_size: int = 32
    range_batches: int = 8
    decay: float = 0.99
    test: Any = None
    out_dir: str | Path = "runs/qat"
    exist_ok: bool = False
    seed: int = 0
    verbose: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.range_batches < 1:
            raise TrainingError(f"epochs and range_batches must be >= 1, got {self.epochs} and {self.range_batches}")
        if not 0.0 < self.decay < 1.0:
            raise TrainingError(f"decay must be between 0 and 1 (exclusive), got {self.decay}")

    @property
    def frozen_from(self) -> int:
        """The first epoch (0-based) trained with frozen ranges."""
        return max(self.epochs - 1, 1) if self.freeze_after is None else self.freeze_after


def quantize_aware(
    model: Any,
    train: Any,
    val: Any,
    epochs: int | None = None,
    *,
    contract: ModelContract | None = None,
    options: QATOptions | None = None,
    **keywords: Any,
) -> TrainResult:
    """Fine-tune a trained model with int8 simulated, so that its full-integer files keep its accuracy.

    Args:
        model: a .keras path written by `edgekit.train` (the contract inside), or a keras.Model with `contract`.
        train: the fine-tuning split (the task's dataset type).
        val: the validation split.
        epochs: `QATOptions.epochs` (positional, as `prune`'s).
        contract: the model's contract when `model` is a keras.Model.
        options: a `QATOptions`; keywords (any of its fields) win over it.
        **keywords: any `QATOptions` field.

    Returns:
        A `TrainResult` as `train` gives: the QAT model (its int8 ranges inside), its path and metrics. Its
        contract's quantization records `aware_training` (the epochs and the ranges policy).

    Raises:
        TrainingError: a layer QAT does not support (named), a nested model, or bad options.
        ContractError: a keras.Model without `contract`.

    Examples:
        >>> result = edgekit.quantize_aware("runs/train/model.keras", train, val, epochs=3)
        >>> edgekit.export(result.model_path, ["tflite:int8"], check=test)  # no calibration data needed
    """
    chosen = options_from_call(QATOptions, options, {**({"epochs": epochs} if epochs else {}), **keywords})
    source = str(Path(model).resolve()) if isinstance(model, (str, Path)) else None
    if isinstance(model, (str, Path)):
        model, contract = load_keras(model)
    if contract is None:
        raise ContractError("quantize_aware needs the model's contract: pass a .keras path or contract=")
    if is_qat_model(model):
        raise TrainingError("the model is already quantization-aware: fine-tune it with edgekit.train")
    from converters.calibration import input_range
    from edgekit.host_tasks import host_task

    aware, plan = qat_model(model, input_range(contract.preprocessing))
    task = host_task(contract.task)
    for layer in activation_ranges(aware):
        layer.decay = chosen.decay
    _measure_ranges(aware, task.calibration(train, contract, chosen.range_batches * chosen.batch_size), chosen)
    policy = (
        f"moving average (decay {chosen.decay:g}) over {chosen.frozen_from} epoch(s), then frozen for "
        f"{chosen.epochs - chosen.frozen_from}"
    )
    log.info(
        "quantization-aware training: %d BatchNorm folded, %d activations fused, %d int8 ranges; %s",
        len(plan.folded),
        len(plan.fused),
        len(activation_ranges(aware)),
        policy,
    )
    with shown_progress(chosen.verbose):
        out_dir = new_run_folder(chosen.out_dir, chosen.exist_ok)
        result = task.train(train, val, aware, _train_options(chosen, contract, out_dir))
    write_run_splits(result.out_dir, {"train": train, "val": val, "test": chosen.test})
    record = {"epochs": chosen.epochs, "ranges": policy, "learning_rate": chosen.learning_rate}
    if source is not None:  # export checks the QAT model's files against this float model too
        record["float_model"] = source
    qat_contract = replace(
        result.contract, quantization={**result.contract.quantization, AWARE_TRAINING: record}, head=contract.head
    )
    save_keras(result.model, result.model_path, qat_contract)
    return replace(result, contract=qat_contract)


def _train_options(chosen: QATOptions, contract: ModelContract, out_dir: Path) -> TrainOptions:
    """The task's training loop, run as a fine-tuning: no early stop, the last epoch kept, ranges frozen."""
    return TrainOptions(
        task=contract.task,
        test=chosen.test,
        epochs=chosen.epochs,
        batch_size=chosen.batch_size,
        learning_rate=chosen.learning_rate,
        patience=chosen.epochs,
        preprocessing=contract.preprocessing,
        out_dir=out_dir,
        exist_ok=True,
        seed=chosen.seed,
        verbose=chosen.verbose,
        callbacks=[_freeze_ranges(chosen.frozen_from)],
        restore_best=False,  # the last epoch's weights are the ones trained on frozen ranges
        head=_head(contract),
    )


def _head(contract: ModelContract) -> Any:
    """The task's parsed head from the contract (a detector's thresholds and output layout, a keypoint model's
    points), carried over; None for a task without one."""
    if not contract.head:
        return None
    from runtimes.heads.detection import DetectionHead
    from runtimes.heads.keypoints import KeypointHead

    return {"detection": DetectionHead, "keypoints": KeypointHead}[contract.task].from_dict(contract.head)


def _measure_ranges(model: Any, samples: Any, chosen: QATOptions) -> None:
    """Every activation range set from the data before the first step (the moving average starts there)."""
    tensors = np.asarray(samples.samples, np.float32)
    for start in range(0, len(tensors), chosen.batch_size):
        model(tensors[start : start + chosen.batch_size], training=True)


def _freeze_ranges(epoch: int) -> Any:
    """A callback that stops the activation ranges from moving at the start of `epoch` (0-based)."""

    class FreezeRanges(keras().callbacks.Callback):
        def on_epoch_begin(self, current: int, logs: Any = None) -> None:
            if current >= epoch:
                for layer in activation_ranges(self.model):
                    layer.frozen.assign(1.0)

    return FreezeRanges()


def trained_aware(model: Any, contract: ModelContract | None = None) -> bool:
    """True when `model` (a .keras path or a keras.Model with its `contract`) was trained quantization-aware:
    its int8 ranges are inside, and int8 targets need no calibration data."""
    if contract is None and isinstance(model, (str, Path)) and Path(model).is_file():
        contract = read_keras_contract(model)
    return contract is not None and AWARE_TRAINING in contract.quantization


def float_reference(contract: ModelContract, check: Any, task: Any) -> tuple[str, float] | None:
    """The float model a quantization-aware model was fine-tuned from, scored on `check`: (its file name, its
    quality). None for a model not trained aware, or when that file has moved."""
    record = contract.quantization.get(AWARE_TRAINING) or {}
    source = record.get("float_model")
    if not source or not Path(source).is_file():
        return None
    model, float_contract = load_keras(source)
    model = task.deployable(model, float_contract)
    return Path(source).name, task.reference_quality(
        check, task.reference(model, check, float_contract), float_contract
    )
