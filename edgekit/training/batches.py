"""Seeded training batches built in Python, as a tf.data.Dataset (classification and detection share it)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from edgekit.data.image_streaming import fit_ready


def seeded_batches(
    count: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    make_batch: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]],
) -> Any:
    """A tf.data.Dataset of `count` items' batches in a seeded order, reshuffled each epoch when `shuffle`.

    `make_batch(indices, rng)` builds one batch in Python, one batch at a time; the same
    generator drives the order and any augmentation, so a seed gives the same training run
    (classification and detection share it). A tf.data.Dataset rather than a Keras PyDataset:
    Keras turns a PyDataset into a pipeline with tf.data's autotuner on (see `fit_ready`).
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    steps = math.ceil(count / batch_size)
    order = np.arange(count)

    def epoch() -> Any:  # called by each epoch's iterator
        nonlocal order
        if shuffle:
            order = rng.permutation(count)
        for index in range(steps):
            yield make_batch(order[index * batch_size : (index + 1) * batch_size], rng)

    probe = make_batch(np.arange(min(count, batch_size)), np.random.default_rng(seed))  # shapes and types only
    signature = tuple(tf.TensorSpec((None, *np.shape(part)[1:]), tf.as_dtype(np.asarray(part).dtype)) for part in probe)
    data = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    return fit_ready(data.apply(tf.data.experimental.assert_cardinality(steps)))
