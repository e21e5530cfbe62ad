"""Keras' scores on a dataset, through the contract: what checks, metrics and distillation compare against."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.data.images import ImageDataset, is_streaming
from runtimes.contract import Preprocessing


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
