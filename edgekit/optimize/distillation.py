"""`edgekit.distill`: train a small student on a blend of hard labels and a teacher's softened outputs.

The teacher is run once over the training images (offline distillation), so it can be any
Keras model or any artifact `edgekit.load` runs: a teacher exported earlier still teaches.
The loss is Hinton et al.'s: ``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``,
with both distributions softened by temperature T.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgekit.data.images import ImageDataset
from edgekit.training.classification import train_classifier
from edgekit.training.options import TrainOptions, TrainResult


def distill(
    teacher: Any,
    student: Any,
    train: ImageDataset,
    val: ImageDataset,
    temperature: float | None = None,
    alpha: float | None = None,
    epochs: int | None = None,
    *,
    options: TrainOptions | None = None,
    **keywords: Any,
) -> TrainResult:
    """Train `student` from `teacher`: `edgekit.train` with a teacher (`TrainOptions` says every option).

    Args:
        teacher: a keras.Model, a .keras path or any artifact `edgekit.load` runs (a teacher exported earlier).
        student: an architecture name, a keras.Model or a .keras path.
        train: the training split (in memory: the teacher scores every image once).
        val: the validation split.
        temperature: `TrainOptions.temperature` (4 by default).
        alpha: `TrainOptions.alpha`, the hard labels' weight (0.5 by default).
        epochs: `TrainOptions.epochs` (20 by default).
        options: a `TrainOptions`; keywords (any of its fields) win over it.
        **keywords: any `TrainOptions` field (test, batch_size, learning_rate, out_dir, seed, ...).

    Returns:
        The student's `TrainResult`.

    Raises:
        TrainingError: a streamed training split, a teacher with other labels, or bad temperature/alpha.

    Examples:
        >>> result = edgekit.distill("runs/big/model.keras", "small_cnn", train, val, temperature=4, alpha=0.3)
    """
    given = {"temperature": temperature, "alpha": alpha, "epochs": epochs}
    chosen = TrainOptions.from_call(options, {**{k: v for k, v in given.items() if v is not None}, **keywords})
    return train_classifier(train, val, student, replace(chosen, teacher=teacher))
