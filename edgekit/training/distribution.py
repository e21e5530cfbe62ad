"""Training past one device: tf.distribute strategies, chosen from `--devices N` and TF_CONFIG.

Nothing here schedules or moves data itself: TensorFlow's MirroredStrategy (several local
devices) and MultiWorkerMirroredStrategy (several machines, described by the standard
TF_CONFIG environment variable) do. edgekit builds and compiles the model inside the
strategy's scope, feeds it global batches, and lets only the chief write files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgekit.errors import TrainingError

log = logging.getLogger(__name__)


def cluster_workers() -> int:
    """Workers (chief included) that TF_CONFIG names; 0 without TF_CONFIG."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise TrainingError(
            f"TF_CONFIG is not valid JSON: {raw[:200]!r}; see the README's multi-worker example"
        ) from None
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))


def strategy_for(devices: int | None) -> Any:
    """The tf.distribute strategy for `devices` local devices, across TF_CONFIG's workers when it names several.

    GPUs are used when there are enough; without them the CPU is split into `devices`
    logical devices (the same code path, for testing on any machine). Must run before
    TensorFlow has initialized its devices (the CLI calls it first). None: one device.
    """
    workers = cluster_workers()
    if (devices is None or devices <= 1) and workers <= 1:
        return None
    if devices is not None and devices < 1:
        raise TrainingError(f"--devices must be >= 1, got {devices}")
    from edgekit._tf import keras

    keras()
    import tensorflow as tf

    count = devices or 1
    gpus = tf.config.list_physical_devices("GPU")
    names = None
    if len(gpus) >= count:
        names = [f"/gpu:{i}" for i in range(count)]
    elif count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:
            raise TrainingError(
                f"cannot split the CPU into {count} devices: TensorFlow already started; call "
                "strategy_for before any other TensorFlow work (edgekit train --devices does)"
            ) from None
        names = [f"/cpu:{i}" for i in range(count)]
        log.info("no %d GPUs here (%d found): training on %d logical CPU devices", count, len(gpus), count)
    if workers > 1:
        log.info("training on %d workers (TF_CONFIG) with MultiWorkerMirroredStrategy", workers)
        return tf.distribute.MultiWorkerMirroredStrategy()
    log.info("training on %d devices with MirroredStrategy: %s", count, ", ".join(names or []))
    return tf.distribute.MirroredStrategy(names)


def is_chief(strategy: Any) -> bool:
    """Whether this process writes files: always without a strategy or TF_CONFIG, else the chief (worker 0 when
    none)."""
    if strategy is None:
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


@contextlib.contextmanager
def output_folder(out_dir: Path, chief: bool) -> Iterator[Path]:
    """`out_dir` for the chief; a temporary folder, removed after, for the other workers (they save too: saving
    may take part in collective ops, but their files must not race the chief's)."""
    if chief:
        out_dir.mkdir(parents=True, exist_ok=True)
        yield out_dir
        return
    scratch = Path(tempfile.mkdtemp(prefix="edgekit-worker-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def scope(strategy: Any) -> Any:
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def is_multi_worker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def fit_multi_worker(
    model: Any, strategy: Any, train_data: Any, val_data: Any, epochs: int, batch_size: int, callbacks: list[Any]
) -> dict[str, list[float]]:
    """Keras' fit, for MultiWorkerMirroredStrategy: one `strategy.run` step per global batch.

    Keras 3's own fit fails under this strategy before its first step (it all-reduces a
    nested data batch to build itself: keras-team/keras#20585, open). This loop does the
    same work with the compiled model's optimizer: per-example sparse cross-entropy averaged
    over the global batch, gradients all-reduced by the strategy, accuracy and validation
    loss summed across workers, and the given Keras callbacks (early stopping, checkpoint,
    progress) driven at the usual points. Returns the history as fit does.
    """
    import tensorflow as tf

    from edgekit._tf import keras

    k = keras()
    with strategy.scope():
        per_example = k.losses.SparseCategoricalCrossentropy(reduction=None)
    optimizer = model.optimizer
    model.stop_training = False

    def sums(x: Any, y: Any, training: bool) -> tuple[Any, Any, Any]:
        scores = model(x, training=training)
        losses = per_example(y, scores)
        correct = tf.cast(tf.equal(tf.argmax(scores, axis=-1), tf.cast(y, tf.int64)), tf.float32)
        return losses, tf.reduce_sum(correct), tf.cast(tf.shape(y)[0], tf.float32)

    def train_replica(x: Any, y: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            losses, correct, count = sums(x, y, True)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=batch_size)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return tf.reduce_sum(losses), correct, count

    def val_replica(x: Any, y: Any) -> tuple[Any, Any, Any]:
        losses, correct, count = sums(x, y, False)
        return tf.reduce_sum(losses), correct, count

    def summed(replica: Any) -> Any:
        @tf.function
        def step(batch: Any) -> Any:
            parts = strategy.run(replica, args=batch)
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, part, axis=None) for part in parts]

        return step

    train_step, val_step = summed(train_replica), summed(val_replica)
    train_batches = strategy.experimental_distribute_dataset(train_data)
    val_batches = strategy.experimental_distribute_dataset(val_data)
    return _epochs(
        model,
        k.callbacks.CallbackList(callbacks, model=model),
        epochs,
        train_step,
        val_step,
        train_batches,
        val_batches,
    )


def _epochs(
    model: Any, callback_list: Any, epochs: int, train_step: Any, val_step: Any, train_batches: Any, val_batches: Any
) -> dict[str, list[float]]:
    """The epoch loop of `fit_multi_worker`: sums per epoch, the callbacks at fit's points; the history."""
    history: dict[str, list[float]] = {"accuracy": [], "loss": [], "val_accuracy": [], "val_loss": []}
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        totals = np.zeros(3)
        for index, batch in enumerate(train_batches):
            totals += [float(v) for v in train_step(batch)]
            callback_list.on_train_batch_end(index, {"loss": totals[0] / max(totals[2], 1)})
        validation = np.zeros(3)
        for batch in val_batches:
            validation += [float(v) for v in val_step(batch)]
        logs = {
            "accuracy": totals[1] / max(totals[2], 1),
            "loss": totals[0] / max(totals[2], 1),
            "val_accuracy": validation[1] / max(validation[2], 1),
            "val_loss": validation[0] / max(validation[2], 1),
        }
        for key, value in logs.items():
            history[key].append(float(value))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history
