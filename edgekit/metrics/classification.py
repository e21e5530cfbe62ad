"""Classification metrics in plain numpy (no scikit-learn needed at run time)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class ClassificationMetrics:
    accuracy: float
    count: int
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    per_class: dict[str, dict[str, float]]  # label -> precision, recall, support

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predictions), 1)
    return matrix


def classification_metrics(targets: np.ndarray, scores: np.ndarray, labels: Sequence[str]) -> ClassificationMetrics:
    """Accuracy, confusion matrix and per-class precision/recall from score rows."""
    predictions = np.argmax(scores, axis=1)
    matrix = confusion_matrix(np.asarray(targets), predictions, len(labels))
    per_class = {}
    for index, label in enumerate(labels):
        hits = matrix[index, index]
        predicted, actual = matrix[:, index].sum(), matrix[index, :].sum()
        per_class[label] = {
            "precision": float(hits / predicted) if predicted else 0.0,
            "recall": float(hits / actual) if actual else 0.0,
            "support": int(actual),
        }
    accuracy = float(np.trace(matrix) / max(1, matrix.sum()))
    return ClassificationMetrics(accuracy, int(matrix.sum()), matrix.tolist(), per_class)


def top1_agreement(scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    """Share of samples whose arg-max is the same in both score arrays."""
    return float(np.mean(np.argmax(scores_a, axis=1) == np.argmax(scores_b, axis=1)))
