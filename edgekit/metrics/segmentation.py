"""Segmentation metrics from one confusion matrix: mean IoU, per-class IoU and pixel accuracy (pixels marked 255,
"not labelled", are left out), and the pixel agreement of two masks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from runtimes.heads.segmentation import IGNORE


@dataclass(frozen=True)
class SegmentationMetrics:
    """How well predicted masks match the truth.

    Attributes:
        miou: The mean of the per-class IoUs over the classes present in the truth or the predictions.
        per_class_iou: Each label's IoU (None where the class is in neither).
        pixel_accuracy: The share of labelled pixels given their true class.
        confusion: (classes, classes) pixel counts, truth by row, prediction by column.
    """

    miou: float
    per_class_iou: dict[str, float | None]
    pixel_accuracy: float
    confusion: np.ndarray


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts of labelled pixels, truth by row and prediction by column."""
    keep = truth != IGNORE
    pairs = truth[keep].astype(np.int64) * classes + np.clip(predicted[keep].astype(np.int64), 0, classes - 1)
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def segmentation_metrics(
    truths: Sequence[np.ndarray], predictions: Sequence[np.ndarray], labels: Sequence[str]
) -> SegmentationMetrics:
    """Metrics of per-image predicted class masks against their truths (same sizes, pairwise).

    Examples:
        >>> m = segmentation_metrics([truth], [predicted], ["background", "road"])
        >>> round(m.miou, 3)
    """
    classes = len(labels)
    confusion = np.zeros((classes, classes), np.int64)
    for truth, predicted in zip(truths, predictions):
        if truth.shape != predicted.shape:
            raise ValueError(f"a {predicted.shape} prediction for a {truth.shape} truth mask")
        confusion += confusion_matrix(truth, predicted, classes)
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    ious = [float(tp / u) if u else None for tp, u in zip(true_positive, union)]
    present = [iou for iou in ious if iou is not None]
    total = confusion.sum()
    return SegmentationMetrics(
        float(np.mean(present)) if present else 0.0,
        dict(zip(labels, ious)),
        float(true_positive.sum() / total) if total else 0.0,
        confusion,
    )


def pixel_agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """The share of pixels two sets of masks give the same class."""
    same = sum(int(np.count_nonzero(x == y)) for x, y in zip(a, b))
    total = sum(int(x.size) for x in a)
    return same / total if total else 1.0
