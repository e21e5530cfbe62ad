"""Segmentation datasets read lazily: `load_segmentation(path, stream=True)` (or "auto" past 2 GiB of decoded
pixels) checks every mask once while listing (its size against the image's header, its ids against the labels)
and then decodes images and masks per epoch, through the same tf.data stage as streamed detection data
(`edgekit.data.detection_streaming.example_batches`). Validation, test and check splits are decoded once
(`load()`). A COCO file's masks are rasterized while listing and kept (one byte a pixel); mask files are read
again when used."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgekit.data.detection_streaming import example_batches
from edgekit.data.image_streaming import SkipLog, read_all
from edgekit.data.images import SkippedFile, SplitMixin
from edgekit.data.segmentation_datasets import (
    UNREADABLE,
    SegmentationDataset,
    main_class,
    mask_of,
    mask_problem,
    mask_to_input,
    read_mask,
    skip_counts,
)
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.preprocess import image_array, normalize, prepare_pixels

MaskSource = Path | np.ndarray  # a PNG of class ids, or a mask rasterized while listing


@dataclass
class StreamingSegmentationDataset(SplitMixin):
    """Image files and their masks, decoded when read (module docstring). Splits like `SegmentationDataset`."""

    streams = True  # read per epoch: `edgekit.data.images.is_streaming`

    files: tuple[str, ...]
    masks: list[MaskSource]
    main_classes: np.ndarray  # per image, its largest class but 0 (what splits stratify by)
    source_sizes: np.ndarray  # (N, 2) source (height, width), from the file headers
    labels: tuple[str, ...]
    geometry: Preprocessing
    listing_skipped: tuple[SkippedFile, ...] = ()
    skip_log: SkipLog = field(default_factory=SkipLog)  # images found unreadable while decoding (shared by splits)
    cache_dir: Path | None = None
    given_splits: tuple[str, ...] = ()
    split_source: str = ""

    def __len__(self) -> int:
        return len(self.files)

    @property
    def targets(self) -> np.ndarray:  # type: ignore[override]
        return self.main_classes

    @property
    def sources(self) -> tuple[str, ...]:
        return self.files

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        return self.listing_skipped + tuple(
            SkippedFile(s.path, f"{UNREADABLE}: {s.reason}") for s in self.skip_log.files()
        )

    def skip_counts(self) -> dict[str, int]:
        """How many files were left out, per reason."""
        return skip_counts(self.skipped)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "StreamingSegmentationDataset":
        chosen = [int(i) for i in np.asarray(indices, dtype=np.int64)]
        return StreamingSegmentationDataset(
            tuple(self.files[i] for i in chosen),
            [self.masks[i] for i in chosen],
            self.main_classes[chosen],
            self.source_sizes[chosen],
            self.labels,
            self.geometry,
            self.listing_skipped,
            self.skip_log,
            self.cache_dir,
            tuple(self.given_splits[i] for i in chosen) if self.given_splits else (),
            self.split_source,
        )

    def read(self, index: int) -> np.ndarray | None:
        """Image `index` at the contract's geometry, or None (recorded in `skipped`) when it cannot be decoded."""
        path = self.files[index]
        try:
            image, color = image_array(path, "bgr")
            if image.shape[:2] != tuple(self.source_sizes[index]):
                raise InputError(f"decoded {image.shape[1]}x{image.shape[0]}, its header said otherwise")
            return prepare_pixels(image, self.geometry, color)
        except InputError as exc:
            self.skip_log.add(path, str(exc))
            return None

    def source_mask(self, index: int) -> np.ndarray:
        """Image `index`'s mask at its source size."""
        mask = self.masks[index]
        return mask if isinstance(mask, np.ndarray) else read_mask(mask).astype(np.uint8)  # type: ignore[union-attr]

    def load(self, workers: int = 4) -> SegmentationDataset:
        """Decode every image and mask into memory, skipping unreadable images."""
        pixels, kept = read_all(self, workers)
        source_masks = [self.source_mask(i) for i in kept]
        return SegmentationDataset(
            pixels,
            np.stack([mask_to_input(mask, self.geometry) for mask in source_masks]),
            self.labels,
            self.geometry,
            source_masks,
            tuple(self.files[i] for i in kept),
            self.skipped,
            tuple(self.given_splits[i] for i in kept) if self.given_splits else (),
            self.split_source,
        )

    def tensors(self, preprocessing: Preprocessing, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Float model inputs for the readable images among `indices`, decoded now."""
        loaded = self.subset(np.arange(len(self))[indices]).load()
        return normalize(loaded.pixels, preprocessing)

    def example_pipeline(
        self, preprocessing: Preprocessing, batch_size: int, prepare: Any, shuffle: bool = True, seed: int = 0
    ) -> Any:
        """tf.data batches of (float images, (H, W) masks at the input): `prepare(pixels, mask, rng)` gives each
        image and its input-size mask (training's augmentation); decoded pixels are cached in `cache_dir`."""
        cache = None
        if self.cache_dir is not None:
            digest = hashlib.sha256("\n".join(self.files).encode() + repr(self.geometry.geometry()).encode())
            Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
            cache = Path(self.cache_dir) / f"segmentation-pixels-{digest.hexdigest()[:20]}"

        def example(pixels: np.ndarray, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            return prepare(pixels, mask_to_input(self.source_mask(i), self.geometry), rng)

        shape = tuple(self.geometry.input_size)
        return example_batches(self, preprocessing, batch_size, example, shape, shuffle, seed, None, cache)


def listed(
    pairs: list[tuple[Path, Any, str]],
    names: Sequence[str],
    geometry: Preprocessing,
    skipped: list[SkippedFile],
    cache_dir: Path | None,
) -> StreamingSegmentationDataset:
    """The streamed dataset of `pairs`: each image's size from its header, each mask read once and checked."""
    from edgekit.data.records import image_size_of

    files, masks, classes, sizes, splits = [], [], [], [], []
    for image_path, source, split in pairs:
        size = image_size_of(image_path)
        try:
            mask = mask_of(source) if size is not None else None
        except (InputError, OSError, ValueError) as exc:
            mask, size = None, None
            skipped.append(SkippedFile(str(image_path), f"{UNREADABLE}: {exc}"))
            continue
        if size is None:
            skipped.append(SkippedFile(str(image_path), f"{UNREADABLE}: its header does not read"))
            continue
        problem = mask_problem(mask, size, names)
        if problem is not None or mask is None:
            skipped.append(SkippedFile(str(image_path), problem or "no mask"))
            continue
        files.append(str(image_path))
        masks.append(source if isinstance(source, Path) else mask.astype(np.uint8))
        classes.append(main_class(mask, len(names)))
        sizes.append(size)
        splits.append(split)
    if not files:
        from edgekit.errors import DatasetError

        raise DatasetError(f"no usable image and mask ({len(skipped)} skipped)")
    given = (tuple(splits), "the data's split lists") if any(splits) else ((), "")
    return StreamingSegmentationDataset(
        tuple(files),
        masks,
        np.asarray(classes, np.int64),
        np.asarray(sizes, np.int64).reshape(-1, 2),
        tuple(names),
        geometry,
        tuple(skipped),
        cache_dir=cache_dir,
        given_splits=given[0],
        split_source=given[1],
    )
