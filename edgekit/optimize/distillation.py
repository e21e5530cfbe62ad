"""`edgekit.distill`: train a small student on a blend of hard labels and a teacher's softened outputs.

The teacher is run once over the training images (offline distillation), so it can be any
Keras model or any artifact `edgekit.load` runs: a teacher exported earlier still teaches.
The loss is Hinton et al.'s: ``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``,
with both distributions softened by temperature T.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit._tf import keras
from edgekit.data.images import ImageDataset
from edgekit.errors import TrainingError
from runtimes.contract import Preprocessing


def teacher_scores(
    teacher: Any, dataset: ImageDataset, preprocessing: Preprocessing, batch_size: int = 64
) -> np.ndarray:
    """The teacher's class probabilities for every image, each fed through the teacher's own contract."""
    from edgekit.keras_io import load_keras
    from edgekit.training.classification import predict_scores

    k = keras()
    labels = dataset.labels  # a bare Keras model carries no labels: trust the caller
    if isinstance(teacher, (str, Path)) and str(teacher).endswith(".keras"):
        teacher, contract = load_keras(teacher)
        if contract is not None:
            preprocessing, labels = contract.preprocessing, contract.labels
    if isinstance(teacher, k.Model):
        scores = predict_scores(teacher, dataset, preprocessing, batch_size)
    else:
        from runtimes.model import open_model

        with open_model(teacher) if isinstance(teacher, (str, Path)) else _borrowed(teacher) as model:
            own = model.require_preprocessing()
            scores = np.concatenate(
                [model.run(dataset.tensors(own, slice(i, i + batch_size))) for i in range(0, len(dataset), batch_size)]
            )
            labels = model.labels
    if tuple(labels) != tuple(dataset.labels):
        raise TrainingError(
            f"the teacher's labels {list(labels)} differ from the dataset's {list(dataset.labels)}; "
            "distill on data with the teacher's classes, in its order"
        )
    return np.clip(scores.astype(np.float32), 0.0, 1.0)


class _borrowed:
    """A context manager over a Model the caller opened (and will close)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> Any:
        return self.model

    def __exit__(self, *exc: object) -> None:
        pass


def distillation_loss(num_classes: int, temperature: float, alpha: float) -> Any:
    """Keras loss over targets [one-hot labels | teacher probabilities] and student probabilities."""
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise TrainingError(f"temperature must be > 0 and alpha in [0, 1]; got {temperature} and {alpha}")
    k = keras()
    ops = k.ops
    eps = 1e-7

    def soften(probabilities: Any) -> Any:  # softmax(log p / T) = softmax(logits / T)
        return ops.softmax(ops.log(ops.clip(probabilities, eps, 1.0)) / temperature, axis=-1)

    def loss(y_true: Any, y_pred: Any) -> Any:
        hard, teacher = y_true[:, :num_classes], y_true[:, num_classes:]
        student = ops.clip(y_pred, eps, 1.0)
        cross_entropy = -ops.sum(hard * ops.log(student), axis=-1)
        soft_teacher, soft_student = soften(teacher), ops.clip(soften(student), eps, 1.0)
        kl = ops.sum(soft_teacher * (ops.log(ops.clip(soft_teacher, eps, 1.0)) - ops.log(soft_student)), axis=-1)
        return alpha * cross_entropy + (1.0 - alpha) * temperature**2 * kl

    return loss


def distill(
    teacher: Any,
    student: Any,
    train: ImageDataset,
    val: ImageDataset,
    temperature: float = 4.0,
    alpha: float = 0.5,
    epochs: int = 20,
    **options: Any,
) -> Any:
    """Train `student` (an architecture name, keras.Model or .keras path) from `teacher`; returns a TrainResult.

    `options` are `edgekit.train`'s (test, batch_size, learning_rate, out_dir, seed, ...).

    Example:
        >>> result = edgekit.distill("runs/big/model.keras", "small_cnn", train, val, temperature=4, alpha=0.3)
    """
    from edgekit.training.classification import train as train_model

    return train_model(
        train, val, student, epochs=epochs, teacher=teacher, temperature=temperature, alpha=alpha, **options
    )
