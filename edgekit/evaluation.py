"""Checking artifacts against the Keras model they came from, through the real runtime path."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.data.images import ImageDataset
from edgekit.metrics.classification import classification_metrics, top1_agreement
from runtimes.model import Model


@dataclass(frozen=True)
class ArtifactCheck:
    """How an artifact compares with its reference scores on held-out data."""

    samples: int
    accuracy: float
    reference_accuracy: float
    accuracy_delta: float  # points: artifact minus reference
    agreement: float  # top-1 agreement with the reference
    max_abs_error: float  # largest score difference
    latency_ms: float  # mean single-image Model.run time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def artifact_scores(model: Model, dataset: ImageDataset, batch_size: int = 32) -> np.ndarray:
    """Scores for every image, preprocessed with the contract embedded in the artifact itself."""
    preprocessing = model.require_preprocessing()
    chunks = [
        model.run(dataset.tensors(preprocessing, slice(start, start + batch_size)))
        for start in range(0, len(dataset), batch_size)
    ]
    return np.concatenate(chunks)


def mean_latency_ms(model: Model, dataset: ImageDataset, runs: int = 30, warmup: int = 3) -> float:
    """Mean Model.run time on single preprocessed images (batch of one, as on a camera)."""
    tensors = dataset.tensors(model.require_preprocessing(), slice(0, max(1, min(runs, len(dataset)))))
    for i in range(warmup):
        model.run(tensors[i % len(tensors)][None])
    started = time.perf_counter()
    for row in tensors:
        model.run(row[None])
    return (time.perf_counter() - started) * 1000 / len(tensors)


def check_artifact(model: Model, dataset: ImageDataset, reference_scores: np.ndarray) -> ArtifactCheck:
    scores = artifact_scores(model, dataset)
    accuracy = classification_metrics(dataset.targets, scores, dataset.labels).accuracy
    reference = classification_metrics(dataset.targets, reference_scores, dataset.labels).accuracy
    return ArtifactCheck(
        samples=len(dataset),
        accuracy=accuracy,
        reference_accuracy=reference,
        accuracy_delta=(accuracy - reference) * 100,
        agreement=top1_agreement(scores, reference_scores),
        max_abs_error=float(np.max(np.abs(scores - reference_scores))),
        latency_ms=mean_latency_ms(model, dataset),
    )
