"""Distillation's training pieces: the teacher's scores per image and the loss that blends them with the labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit._tf import keras
from edgekit.data.images import ImageDataset
from edgekit.errors import TrainingError
from edgekit.training.scores import predict_scores
from runtimes.contract import Preprocessing


def teacher_scores(
    teacher: Any, dataset: ImageDataset, preprocessing: Preprocessing, batch_size: int = 64
) -> np.ndarray:
    """The teacher's class probabilities for every image, each fed through the teacher's own contract."""
    from edgekit.keras_io import load_keras

    k = keras()
    labels = dataset.labels  # a bare Keras model carries no labels: trust the caller
    if isinstance(teacher, (str, Path)) and str(teacher).endswith(".keras"):
        teacher, contract = load_keras(teacher)
        if contract is not None:
            preprocessing, labels = contract.preprocessing, contract.labels
    if isinstance(teacher, k.Model):
        scores = predict_scores(teacher, dataset, preprocessing, batch_size)
    else:
        from runtimes.loading import open_model

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


def hard_label_accuracy(num_classes: int) -> Any:
    """Accuracy on the hard labels when targets are [one-hot | teacher scores] (distillation)."""
    k = keras()

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        return k.ops.mean(k.ops.equal(k.ops.argmax(y_true[:, :num_classes], axis=-1), k.ops.argmax(y_pred, axis=-1)))

    return accuracy
