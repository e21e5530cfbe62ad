"""Image folders read lazily, for datasets larger than memory: tf.data decodes and resizes per epoch.

`ImageFolder(path, stream=True)` (or `stream="auto"`, which streams when the decoded pixels
would pass `STREAM_ABOVE_BYTES`) lists the files and labels only. Training then reads them
through a tf.data pipeline: file indices (shuffled per epoch, before decoding, so no pixel
buffer grows with the dataset), decoded, colour-converted and resized in parallel
(`num_parallel_calls=AUTOTUNE`) by the runtime's own `prepare_pixels`, optionally cached on
disk as decoded pixels, batched, scaled by the runtime's own `normalize`, flipped and
prefetched. The pixels are the device's, bit for bit: the same functions make them.

Work that needs random access to few images (calibration samples, the export check on a
test split, evaluation) decodes them into an in-memory `ImageDataset` with `load()`.
Corrupt files are skipped and counted wherever they are met (`dataset.skipped`, shared by
a dataset and its splits).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgekit.data.images import ImageDataset, SkippedFile, SplitMixin, check_geometry
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.preprocess import normalize, prepare_pixels

log = logging.getLogger(__name__)

STREAM_ABOVE_BYTES = 2 << 30  # stream="auto": decoded pixels past 2 GiB are read from disk per epoch
CACHE_SHUFFLE_BUFFER = 1024  # images: with a cache the order is fixed on disk, so a bounded buffer shuffles it
PREFETCH_BATCHES = 2  # batches made ahead of the training step (tf.data's autotuner is off: see fit_ready)


class SkipLog:
    """Files that could not be decoded, recorded once each (threads of the pipeline add to it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            if path in self._reasons:
                return
            self._reasons[path] = reason
        log.warning("skipped unreadable image %s: %s", path, reason)

    def __contains__(self, path: str) -> bool:
        return path in self._reasons

    def files(self) -> tuple[SkippedFile, ...]:
        with self._lock:
            return tuple(SkippedFile(path, reason) for path, reason in self._reasons.items())


@dataclass
class StreamingImageDataset(SplitMixin):
    """Labelled image files, decoded when read (see the module docstring). Splits like `ImageDataset`."""

    streams = True  # read per epoch: `edgekit.data.images.is_streaming`

    files: tuple[str, ...]
    targets: np.ndarray
    labels: tuple[str, ...]
    geometry: Preprocessing
    skip_log: SkipLog = field(default_factory=SkipLog)
    cache_dir: Path | None = None  # where decoded pixels are cached (one file set per split and geometry)
    given_splits: tuple[str, ...] = ()  # per image: the split the data put it in ("" for none); () when it has none
    split_source: str = ""  # where the splits came from (train/, val/, test/ folders)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.files

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        return self.skip_log.files()

    @property
    def image_size(self) -> tuple[int, int]:
        return self.geometry.input_size

    def class_counts(self) -> dict[str, int]:
        """Images per class, less the files found unreadable so far."""
        readable = np.array([path not in self.skip_log for path in self.files], bool)
        counts = np.bincount(self.targets[readable], minlength=len(self.labels))
        return {label: int(n) for label, n in zip(self.labels, counts)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "StreamingImageDataset":
        indices = np.asarray(indices, dtype=np.int64)
        return StreamingImageDataset(
            tuple(self.files[i] for i in indices),
            self.targets[indices],
            self.labels,
            self.geometry,
            self.skip_log,
            self.cache_dir,
            tuple(self.given_splits[i] for i in indices) if self.given_splits else (),
            self.split_source,
        )

    def read(self, index: int) -> np.ndarray | None:
        """Image `index` at the contract's geometry, or None (recorded in `skipped`) when it cannot be decoded."""
        path = self.files[index]
        try:
            return prepare_pixels(path, self.geometry)
        except InputError as exc:
            self.skip_log.add(path, str(exc))
            return None

    def load(self, workers: int = 4) -> ImageDataset:
        """Decode every image into memory (threads: OpenCV releases the GIL), skipping unreadable ones."""
        pixels, kept = read_all(self, workers)
        return ImageDataset(
            pixels,
            self.targets[kept],
            self.labels,
            self.geometry,
            tuple(self.files[i] for i in kept),
            self.skipped,
            tuple(self.given_splits[i] for i in kept) if self.given_splits else (),
            self.split_source,
        )

    def sample(self, count: int, seed: int = 0) -> ImageDataset:  # type: ignore[override]
        """Up to `count` images drawn without replacement, decoded (calibration data)."""
        return super().sample(count, seed).load()

    def tensors(self, preprocessing: Preprocessing, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Float model inputs for the readable images among `indices`, decoded now."""
        chosen = np.arange(len(self))[indices]
        return self.subset(chosen).load().tensors(preprocessing)

    def cache_key(self) -> str:
        """Names this split's cached pixels: its files, labels and geometry (another split or size, another cache)."""
        digest = hashlib.sha256()
        for path, target in zip(self.files, self.targets.tolist()):
            digest.update(f"{path}\0{target}\n".encode())
        digest.update(repr(self.geometry.geometry()).encode())
        return digest.hexdigest()[:20]

    def pipeline(
        self,
        preprocessing: Preprocessing,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        flip: bool = False,
        parallel_calls: int | None = None,
    ) -> Any:
        """A tf.data.Dataset of (float batch, targets): decoded in parallel, cached if `cache_dir`, prefetched.

        `parallel_calls` is the decoders' parallelism (None: tf.data.AUTOTUNE).
        """
        cache = None
        if self.cache_dir is not None:
            Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
            cache = Path(self.cache_dir) / f"pixels-{self.cache_key()}"
        return tf_batches(
            self.read,
            self.targets,
            self.geometry,
            preprocessing,
            batch_size,
            shuffle,
            seed,
            flip,
            parallel_calls,
            cache,
        )


def read_all(dataset: Any, workers: int = 4) -> tuple[np.ndarray, list[int]]:
    """(stacked pixels, their indices) of every image `dataset.read` can decode, on `workers` threads."""
    with ThreadPoolExecutor(workers) as pool:
        images = list(pool.map(dataset.read, range(len(dataset))))
    kept = [i for i, image in enumerate(images) if image is not None]
    if not kept:
        raise DatasetError(f"none of the {len(dataset)} images could be read ({len(dataset.skipped)} skipped)")
    return np.stack([images[i] for i in kept]), kept


def memory_pipeline(
    dataset: ImageDataset,
    preprocessing: Preprocessing,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    flip: bool = False,
) -> Any:
    """The same tf.data pipeline over an in-memory dataset's pixels (what tf.distribute strategies take)."""
    return tf_batches(
        lambda index: dataset.pixels[index],
        dataset.targets,
        dataset.geometry,
        preprocessing,
        batch_size,
        shuffle,
        seed,
        flip,
    )


def tf_batches(
    read: Callable[[int], np.ndarray | None],
    targets: np.ndarray,
    geometry: Preprocessing,
    preprocessing: Preprocessing,
    batch_size: int,
    shuffle: bool,
    seed: int,
    flip: bool,
    parallel_calls: int | None = None,
    cache: Path | None = None,
) -> Any:
    """(float batch, targets) from `read(index)` (uint8 pixels at `geometry`, or None to skip the image).

    Scaling is the runtime's `normalize`; flips mirror about half of each batch, seeded.
    """
    import tensorflow as tf

    check_geometry(geometry, preprocessing)
    labels = tf.constant(np.asarray(targets, np.int64))
    data = decoded_images(read, len(targets), geometry, shuffle, seed, parallel_calls, cache)
    data = data.map(lambda pixels, index: (pixels, tf.gather(labels, index))).batch(batch_size)
    data = data.map(scaling(preprocessing), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if flip:
        width_axis = 3 if preprocessing.layout.value == "nchw" else 2

        def mirror(batch: tuple[Any, Any], draw: Any) -> tuple[Any, Any]:
            x, y = batch
            chosen = tf.random.stateless_uniform([tf.shape(x)[0]], seed=tf.stack([draw, draw // 2])) < 0.5
            return tf.where(tf.reshape(chosen, [-1, 1, 1, 1]), tf.reverse(x, axis=[width_axis]), x), y

        data = tf.data.Dataset.zip((data, tf.data.Dataset.random(seed=seed))).map(
            mirror, num_parallel_calls=tf.data.AUTOTUNE
        )
    return fit_ready(data)


def fit_ready(data: Any) -> Any:
    """`data` prefetched, with tf.data's autotuner off: what edgekit hands to Keras' fit.

    Keras makes a new iterator each epoch, and deleting the last one waits for the
    autotuner's thread to wake from a sleep that grows to many seconds. Measured on a 2-core
    host: one detector epoch in two took 40 s instead of 22 s, every core idle for 18 of
    them (gdb: the main thread in ~RootDataset::Iterator, the autotuner in
    Model::OptimizeLoop). Without the autotuner, AUTOTUNE parallel maps make one call per
    core, and PREFETCH_BATCHES batches wait ahead of the training step.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(PREFETCH_BATCHES).with_options(options)


def decoded_images(
    read: Callable[[int], np.ndarray | None],
    count: int,
    geometry: Preprocessing,
    shuffle: bool,
    seed: int,
    parallel_calls: int | None = None,
    cache: Path | None = None,
) -> Any:
    """A tf.data.Dataset of (uint8 pixels at `geometry`, index) for the readable images among `count`.

    Indices are shuffled before reading (without a cache: the order costs 8 bytes an image);
    `read` runs on `parallel_calls` threads (None: AUTOTUNE). With a cache the read pixels are
    stored on disk after the first epoch and a bounded buffer shuffles them.
    """
    import tensorflow as tf

    height, width = geometry.input_size
    channels = geometry.channels

    def decode(index: Any) -> tuple[np.ndarray, bool]:
        pixels = read(int(index))
        return (np.zeros((height, width, channels), np.uint8), False) if pixels is None else (pixels, True)

    def decoded(index: Any) -> tuple[Any, Any, Any]:
        pixels, ok = tf.numpy_function(decode, [index], [tf.uint8, tf.bool], stateful=False)
        pixels.set_shape((height, width, channels))
        return pixels, index, ok

    data = tf.data.Dataset.range(count)
    if shuffle and cache is None:
        data = data.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    calls = tf.data.AUTOTUNE if parallel_calls is None else parallel_calls
    data = data.map(decoded, num_parallel_calls=calls, deterministic=True)
    data = data.filter(_readable).map(_without_flag)
    if cache is not None:
        data = data.cache(str(cache))
        if shuffle:
            data = data.shuffle(min(count, CACHE_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    return data


def scaling(preprocessing: Preprocessing) -> Callable[[Any, Any], tuple[Any, Any]]:
    """(uint8 batch, targets) -> (float batch, targets) by the runtime's own `normalize` (the device's scaling)."""
    import tensorflow as tf

    shape = (None, *preprocessing.input_shape)

    def scaled(pixels: np.ndarray) -> np.ndarray:
        return normalize(pixels, preprocessing)

    def to_model(pixels: Any, batch_targets: Any) -> tuple[Any, Any]:
        x = tf.numpy_function(scaled, [pixels], tf.float32, stateful=False)
        x.set_shape(shape)
        return x, batch_targets

    return to_model


def _readable(pixels: Any, target: Any, ok: Any) -> Any:
    return ok


def _without_flag(pixels: Any, target: Any, ok: Any) -> tuple[Any, Any]:
    return pixels, target


def should_stream(stream: bool | str, count: int, geometry: Preprocessing, root: Path) -> bool:
    """Whether a folder of `count` images streams: as asked, or ("auto") when the decoded pixels would pass
    STREAM_ABOVE_BYTES."""
    if stream not in (True, False, "auto"):
        raise DatasetError(f"invalid stream={stream!r}; valid: True, False or 'auto'")
    if stream != "auto":
        return bool(stream)
    height, width = geometry.input_size
    decoded = count * height * width * geometry.channels
    if decoded > STREAM_ABOVE_BYTES:
        log.info(
            "streaming %d images from %s: decoded they would take %.1f GiB (over %.0f GiB); pass stream=False "
            "to hold them in memory",
            count,
            root,
            decoded / 2**30,
            STREAM_ABOVE_BYTES / 2**30,
        )
        return True
    return False
