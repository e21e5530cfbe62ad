"""Detection datasets read lazily: YOLO, COCO and VOC annotations in memory, images decoded per epoch.

`load_detection(path, stream=True)` (or "auto" past 2 GiB of decoded pixels) reads the
annotations and each image's header (its size, which the boxes are checked against) and
returns a `StreamingDetectionDataset`. Training reads it through the same tf.data stage as
streamed image folders (`edgekit.data.image_streaming.decoded_images`: indices shuffled before decoding,
the runtime's `prepare_pixels` on parallel threads, an optional on-disk cache of decoded
pixels), then augments each image with its boxes and encodes the targets on parallel
threads, batches, scales with the runtime's `normalize` and prefetches.

Validation, test and check splits are decoded once into memory (`load()`): mAP needs every
image each epoch, and they are the small parts of a split. Images whose header reads but
whose pixels do not are skipped and counted when they are met, once, across splits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgekit.data.detection import UNREADABLE_IMAGE, DetectionData, DetectionDataset
from edgekit.data.image_streaming import SkipLog, decoded_images, fit_ready, read_all, scaling
from edgekit.data.images import SkippedFile, check_geometry
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.preprocess import image_array, prepare_pixels

Augment = Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray]]
Encode = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class StreamingDetectionDataset(DetectionData):
    """Annotated image files, decoded when read (see the module docstring). Splits like `DetectionDataset`."""

    streams = True  # read per epoch: `edgekit.data.images.is_streaming`

    files: tuple[str, ...]
    boxes: list[np.ndarray]  # per image (n, 4) float32 x0 y0 x1 y1 in source pixels
    classes: list[np.ndarray]  # per image (n,) int64 class indices
    source_sizes: np.ndarray  # (N, 2) source (height, width), from the file headers
    labels: tuple[str, ...]
    geometry: Preprocessing
    listing_skipped: tuple[SkippedFile, ...] = ()  # annotations and files skipped while listing
    skip_log: SkipLog = field(default_factory=SkipLog)  # images found unreadable while decoding (shared by splits)
    cache_dir: Path | None = None
    given_splits: tuple[str, ...] = ()  # per image: the split the data put it in ("" for none); () when it has none
    split_source: str = ""  # where the splits came from (data.yaml, ImageSets/Main, one COCO file per split)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.files

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:  # type: ignore[override]
        return self.listing_skipped + tuple(
            SkippedFile(s.path, f"{UNREADABLE_IMAGE}: {s.reason}") for s in self.skip_log.files()
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> "StreamingDetectionDataset":
        indices = np.asarray(indices, dtype=np.int64)
        return StreamingDetectionDataset(
            tuple(self.files[i] for i in indices),
            [self.boxes[i] for i in indices],
            [self.classes[i] for i in indices],
            self.source_sizes[indices],
            self.labels,
            self.geometry,
            self.listing_skipped,
            self.skip_log,
            self.cache_dir,
            tuple(self.given_splits[i] for i in indices) if self.given_splits else (),
            self.split_source,
        )

    def read(self, index: int) -> np.ndarray | None:
        """Image `index` at the contract's geometry, or None (recorded in `skipped`) when it cannot be decoded."""
        path = self.files[index]
        try:
            image, color = image_array(path, "bgr")
            if image.shape[:2] != tuple(self.source_sizes[index]):
                raise InputError(
                    f"decoded {image.shape[1]}x{image.shape[0]}, its header said "
                    f"{self.source_sizes[index][1]}x{self.source_sizes[index][0]}"
                )
            return prepare_pixels(image, self.geometry, color)
        except InputError as exc:
            self.skip_log.add(path, str(exc))
            return None

    def load(self, workers: int = 4) -> DetectionDataset:
        """Decode every image into memory (threads: OpenCV releases the GIL), skipping unreadable ones."""
        return self.loaded(workers)[0]

    def loaded(self, workers: int = 4) -> tuple[DetectionDataset, list[int]]:
        """`load()`'s dataset and the indices of the images it kept (the readable ones)."""
        pixels, kept = read_all(self, workers)
        dataset = DetectionDataset(
            pixels,
            [self.boxes[i] for i in kept],
            [self.classes[i] for i in kept],
            self.source_sizes[kept],
            self.labels,
            self.geometry,
            tuple(self.files[i] for i in kept),
            self.skipped,
            tuple(self.given_splits[i] for i in kept) if self.given_splits else (),
            self.split_source,
        )
        return dataset, list(kept)

    def tensors(self, preprocessing: Preprocessing, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Float model inputs for the readable images among `indices`, decoded now."""
        return self.subset(np.arange(len(self))[indices]).load().tensors(preprocessing)

    def cache_key(self) -> str:
        """Names this split's cached pixels: its files and geometry (another split or size, another cache)."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(f"{path}\n".encode())
        digest.update(repr(self.geometry.geometry()).encode())
        return digest.hexdigest()[:20]

    def pipeline(
        self,
        preprocessing: Preprocessing,
        batch_size: int,
        encode: Encode,
        augment: Augment | None = None,
        shuffle: bool = True,
        seed: int = 0,
        parallel_calls: int | None = None,
    ) -> Any:
        """A tf.data.Dataset of (float batch, encoded targets), as the module docstring says."""
        input_boxes = [self.input_boxes(i) for i in range(len(self))]

        def prepare(pixels: np.ndarray, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            boxes, classes = input_boxes[i], self.classes[i]
            if augment is not None:
                pixels, boxes, classes = augment(pixels, boxes, classes, rng)
            return pixels, encode(boxes, classes)

        target_shape = encode(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)).shape
        return self.example_pipeline(preprocessing, batch_size, prepare, target_shape, shuffle, seed, parallel_calls)

    def example_pipeline(
        self,
        preprocessing: Preprocessing,
        batch_size: int,
        prepare: "Prepare",
        target_shape: tuple[int, ...],
        shuffle: bool = True,
        seed: int = 0,
        parallel_calls: int | None = None,
    ) -> Any:
        """`example_batches` of this split, its decoded pixels cached in `cache_dir` when one is set."""
        cache = None
        if self.cache_dir is not None:
            Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
            cache = Path(self.cache_dir) / f"detection-pixels-{self.cache_key()}"
        return example_batches(
            self, preprocessing, batch_size, prepare, target_shape, shuffle, seed, parallel_calls, cache
        )


Prepare = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def example_batches(
    dataset: Any,
    preprocessing: Preprocessing,
    batch_size: int,
    prepare: Prepare,
    target_shape: tuple[int, ...],
    shuffle: bool,
    seed: int,
    parallel_calls: int | None = None,
    cache: Path | None = None,
) -> Any:
    """tf.data batches of (float images, targets) from a streamed annotated dataset: its decoded images (see
    `decoded_images`), each turned with its index into (pixels, target) by `prepare`, on parallel threads, with
    a generator seeded per image and epoch (augmentation that differs every epoch, the same on every run)."""
    import tensorflow as tf

    check_geometry(dataset.geometry, preprocessing)

    def prepared(pixels: np.ndarray, index: Any, draw: Any) -> tuple[np.ndarray, np.ndarray]:
        pixels, target = prepare(pixels, int(index), np.random.default_rng(int(draw) & 0x7FFFFFFFFFFFFFFF))
        return pixels, target.astype(np.float32)

    def to_example(pixels: Any, index: Any, draw: Any) -> tuple[Any, Any]:
        image, target = tf.numpy_function(prepared, [pixels, index, draw], [tf.uint8, tf.float32], stateful=False)
        image.set_shape(pixels.shape)
        target.set_shape(target_shape)
        return image, target

    calls = tf.data.AUTOTUNE if parallel_calls is None else parallel_calls
    data = decoded_images(dataset.read, len(dataset), dataset.geometry, shuffle, seed, parallel_calls, cache)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    data = tf.data.Dataset.zip(data, draws).map(
        lambda pixels_index, draw: to_example(*pixels_index, draw), num_parallel_calls=calls, deterministic=True
    )
    data = data.batch(batch_size).map(scaling(preprocessing), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return fit_ready(data)
