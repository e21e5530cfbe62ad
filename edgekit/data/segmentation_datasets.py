"""Segmentation dataset types and the helpers every reader shares: `SegmentationDataset` (images and masks in
memory), a mask to the model input through the image's resize, a mask file read, and why a mask cannot be used."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from edgekit.data.images import SkippedFile, SplitMixin, check_geometry
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.heads.segmentation import IGNORE
from runtimes.preprocess import BoxMapping, box_mapping, normalize

MASK_FOLDERS = ("masks", "labels", "annotations")
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
NO_MASK = "no mask for the image"
MASK_SIZE = "mask size differs from its image"
MASK_IDS = "mask holds ids outside the labels"
UNREADABLE = "unreadable image or mask"


@dataclass
class SegmentationDataset(SplitMixin):
    """Images at the contract's geometry and their class masks.

    Attributes:
        pixels: (N, H, W, C) uint8 images in `geometry`'s colour order and resize mode.
        masks: (N, H, W) uint8 class ids at the model input (255: not labelled, the letterbox's bands too).
        labels: The class names, in id order.
        geometry: The input size, colour order and resize the pixels were made with.
        source_masks: Per image, its (height, width) uint8 mask at the source image's size.
        sources: Each image's file path.
        skipped: Files left out, each with its reason.
        given_splits: Per image, the split the data put it in ("" for none); () when the data has none.
        split_source: Where the given splits came from.
    """

    pixels: np.ndarray
    masks: np.ndarray
    labels: tuple[str, ...]
    geometry: Preprocessing
    source_masks: list[np.ndarray] = field(default_factory=list)
    sources: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    given_splits: tuple[str, ...] = ()
    split_source: str = ""

    def __post_init__(self) -> None:
        if len(self.pixels) != len(self.masks) or len(self.source_masks) != len(self.pixels):
            raise DatasetError(f"{len(self.pixels)} images but {len(self.masks)} masks")
        if not self.sources:
            self.sources = tuple(f"array[{i}]" for i in range(len(self.pixels)))

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def targets(self) -> np.ndarray:  # type: ignore[override]
        """Each image's largest class other than class 0 (0 when it has none): what splits stratify by."""
        return np.asarray([main_class(mask, len(self.labels)) for mask in self.masks], np.int64)

    @property
    def source_sizes(self) -> np.ndarray:
        return np.asarray([mask.shape for mask in self.source_masks], np.int64).reshape(-1, 2)

    def class_counts(self) -> dict[str, int]:
        """Images holding each class."""
        counts = np.zeros(len(self.labels), np.int64)
        for mask in self.masks:
            present = np.unique(mask)
            counts[present[present < len(self.labels)]] += 1
        return {label: int(n) for label, n in zip(self.labels, counts)}

    def mapping(self, index: int) -> BoxMapping:
        """Where the contract's resize put image `index`'s source pixels."""
        return box_mapping(tuple(int(v) for v in self.source_masks[index].shape), self.geometry)

    def tensors(self, preprocessing: Preprocessing, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        check_geometry(self.geometry, preprocessing)
        return normalize(self.pixels[indices], preprocessing)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "SegmentationDataset":
        chosen = np.asarray(indices, dtype=np.int64)
        return SegmentationDataset(
            self.pixels[chosen],
            self.masks[chosen],
            self.labels,
            self.geometry,
            [self.source_masks[i] for i in chosen],
            tuple(self.sources[i] for i in chosen),
            self.skipped,
            tuple(self.given_splits[i] for i in chosen) if self.given_splits else (),
            self.split_source,
        )

    def skip_counts(self) -> dict[str, int]:
        """How many files were left out, per reason."""
        return skip_counts(self.skipped)


def skip_counts(skipped: Sequence[SkippedFile]) -> dict[str, int]:
    """How many files were left out, per reason (the reason's words before its detail)."""
    counts: dict[str, int] = {}
    for entry in skipped:
        reason = entry.reason.split(":")[0]
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def mask_to_input(mask: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """A source-size class mask at the model input: the image's resize as an affine map, by nearest pixel (pixel
    centres map to pixel centres), 255 where the input shows no source pixel."""
    mapping = box_mapping(tuple(int(v) for v in mask.shape[:2]), spec)
    height, width = spec.input_size
    forward = np.array(
        [
            [mapping.scale_x, 0.0, mapping.offset_x + 0.5 * mapping.scale_x - 0.5],
            [0.0, mapping.scale_y, mapping.offset_y + 0.5 * mapping.scale_y - 0.5],
        ]
    )
    return cv2.warpAffine(mask, forward, (width, height), flags=cv2.INTER_NEAREST, borderValue=IGNORE)


def read_mask(path: Path) -> np.ndarray | None:
    """A PNG of class ids (a palette PNG's indices, not its colours), or None when missing."""
    if not path.is_file():
        return None
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in ("P", "L", "I;16", "I"):
            raise InputError(f"{path.name} is a {image.mode} image, not one class id per pixel")
        return np.asarray(image).astype(np.uint8 if image.mode in ("P", "L") else np.uint16)


def mask_of(source: Any) -> np.ndarray | None:
    """A pair's mask: a PNG read (None when missing), or a COCO image's rasterized annotations."""
    return read_mask(source) if isinstance(source, Path) else source()


def mask_problem(mask: np.ndarray | None, size: tuple[int, int] | None, names: Sequence[str]) -> str | None:
    """Why an image's mask cannot be used (its reason and detail), or None."""
    if mask is None:
        return NO_MASK
    if size is not None and mask.shape[:2] != size:
        return f"{MASK_SIZE}: {mask.shape[1]}x{mask.shape[0]} mask for a {size[1]}x{size[0]} image"
    values = np.unique(mask)
    outside = values[(values >= len(names)) & (values != IGNORE)]
    if len(outside):
        return f"{MASK_IDS}: {outside.tolist()[:5]} with {len(names)} labels"
    return None


def main_class(mask: np.ndarray, classes: int) -> int:
    """A mask's largest class other than class 0 (0 when it has none): what splits stratify by."""
    counts = np.bincount(mask.reshape(-1), minlength=classes)[:classes]
    counts[0] = 0
    return int(counts.argmax()) if counts.any() else 0
