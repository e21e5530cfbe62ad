"""Detection datasets: boxes and classes per image, in memory (`DetectionDataset`), with splits and samples.

Boxes stay in source pixels (x0, y0, x1, y1, continuous coordinates); images are
decoded and resized once to the contract's geometry (letterbox by default) with the
runtime's own code, and `input_boxes` maps boxes the same way the resize moved the pixels.
A bad annotation or image is skipped and counted with its reason, never fatal.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from edgekit.data.images import SkippedFile, check_geometry
from edgekit.data.splits import check_fractions, drawn_origin, given_parts, with_origin
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.preprocess import BoxMapping, box_mapping, normalize

log = logging.getLogger(__name__)

EDGE_TOLERANCE = 1.0  # pixels a box may pass the image edge (rounding in the tool that wrote it); clipped
MIN_BOX_SIDE = 1.0  # pixels: a thinner box is not an object

# the reasons a record is skipped, as counted in `skip_counts`
BOX_OUTSIDE = "box outside the image"
BOX_EMPTY = "box of zero or negative size"
UNKNOWN_CLASS = "unknown class id"
MISSING_IMAGE = "image missing"
UNREADABLE_IMAGE = "image unreadable"
MALFORMED_LINE = "malformed line"
MALFORMED_FILE = "malformed file"


class DetectionData:
    """What every detection dataset has, in memory or streamed: boxes, classes, splits and samples.

    Subclasses hold `boxes`, `classes`, `source_sizes`, `labels`, `geometry`, `sources` and
    `skipped`, and implement `__len__` and `subset`.
    """

    boxes: list[np.ndarray]
    classes: list[np.ndarray]
    source_sizes: np.ndarray
    labels: tuple[str, ...]
    geometry: Preprocessing

    def __len__(self) -> int:
        raise NotImplementedError

    def subset(self, indices: Sequence[int] | np.ndarray) -> Any:
        raise NotImplementedError

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        raise NotImplementedError

    @property
    def image_size(self) -> tuple[int, int]:
        return self.geometry.input_size

    @property
    def object_count(self) -> int:
        return int(sum(len(c) for c in self.classes))

    counts_instances = True  # `class_counts` counts objects; `images_per_class` the images holding one

    def images_per_class(self) -> dict[str, int]:
        """Images holding at least one object of each class."""
        counts = np.zeros(len(self.labels), np.int64)
        for classes in self.classes:
            counts[np.unique(classes)] += 1
        return {label: int(n) for label, n in zip(self.labels, counts)}

    def class_counts(self) -> dict[str, int]:
        """Objects per class."""
        counts = np.bincount(np.concatenate([*self.classes, np.zeros(0, np.int64)]), minlength=len(self.labels))
        return {label: int(n) for label, n in zip(self.labels, counts)}

    def skip_counts(self) -> dict[str, int]:
        """How many records were skipped for each reason."""
        return dict(Counter(skip.reason.split(":")[0] for skip in self.skipped))

    def mapping(self, index: int) -> BoxMapping:
        return box_mapping(tuple(int(v) for v in self.source_sizes[index]), self.geometry)

    def input_boxes(self, index: int) -> np.ndarray:
        """Image `index`'s boxes in model-input pixels (where the resize put them)."""
        return self.mapping(index).to_input(self.boxes[index])

    given_splits: tuple[str, ...]
    split_source: str

    def split(
        self, val: float = 0.15, test: float = 0.15, seed: int = 0, resplit: bool = False
    ) -> tuple[Any, Any, Any]:
        """(train, val, test): the data's own splits when it has them (YOLO data.yaml, COCO files per split, VOC
        ImageSets), else drawn at random, stratified by each image's most frequent class (empty images a group).

        With the data's splits, `val` and `test` are used only where the data lacks one: no val split takes `val`
        of the training images; no test split leaves test empty (the final metrics are then on val). What was
        done is kept in each part's `split_origin` (the training summary prints it).

        Args:
            val: the validation fraction of a random split.
            test: the test fraction of a random split.
            seed: the random split's seed.
            resplit: draw a random split even where the data has its own.
        """
        check_fractions(val, test)
        if self.given_splits and not resplit:
            parts, origin = given_parts(self.given_splits, self.split_source, val, seed, self._drawn)
            return with_origin(tuple(self.subset(part) for part in parts), origin)
        parts = tuple(self.subset(part) for part in self._drawn(np.arange(len(self)), val, test, seed))
        return with_origin(parts, drawn_origin(val, test, seed, self.split_source if self.given_splits else ""))

    def _drawn(
        self, among: np.ndarray, val: float, test: float, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`among`'s indices split at random into (train, val, test), stratified by each image's main class."""
        if len(among) < 3:
            raise DatasetError(f"{len(among)} image(s) are too few to split into train, val and test")
        rng = np.random.default_rng(seed)
        groups = np.array([np.bincount(self.classes[i]).argmax() if len(self.classes[i]) else -1 for i in among])
        parts: tuple[list[int], list[int], list[int]] = ([], [], [])
        carry_val = carry_test = 0.0  # fractional shares carried between groups keep small groups from rounding to zero
        for group in np.unique(groups):
            members = rng.permutation(among[groups == group])
            carry_test += test * len(members)
            carry_val += val * len(members)
            n_test, n_val = min(int(carry_test), len(members)), 0
            n_val = min(int(carry_val), len(members) - n_test)
            carry_test -= n_test
            carry_val -= n_val
            parts[2].extend(members[:n_test])
            parts[1].extend(members[n_test : n_test + n_val])
            parts[0].extend(members[n_test + n_val :])
        if not parts[0]:
            raise DatasetError(
                f"the split leaves no training image ({len(among)} images); add images or lower the fractions"
            )
        return tuple(np.sort(np.asarray(p, np.int64)) for p in parts)  # type: ignore[return-value]

    def sample(self, count: int, seed: int = 0) -> "DetectionDataset":
        """Up to `count` images drawn without replacement (calibration, quick checks), in memory."""
        chosen = np.random.default_rng(seed).permutation(len(self))[: min(count, len(self))]
        return _decoded(self.subset(np.sort(chosen)))


@dataclass
class DetectionDataset(DetectionData):
    """Images at the contract's geometry, decoded into memory, with their boxes in source pixels.

    Attributes:
        pixels: (N, H, W, C) uint8 images in `geometry`'s colour order and resize mode.
        boxes: Per image, an (n, 4) float32 array of x0, y0, x1, y1 in source pixels.
        classes: Per image, an (n,) int64 array of class indices.
        source_sizes: (N, 2) source (height, width) of each image.
        labels: The class names, in index order.
        geometry: The input size, colour order and resize the pixels were made with.
        sources: Each image's file path.
        skipped: Files and annotations left out, each with its reason.
        given_splits: Per image, the split the data put it in ("" for none); () when the data has none.
        split_source: Where the given splits came from (data.yaml, ImageSets/Main, one COCO file per split).
    """

    pixels: np.ndarray  # (N, H, W, C) uint8, in geometry.color_order, resized with geometry.resize
    boxes: list[np.ndarray]  # per image (n, 4) float32 x0 y0 x1 y1 in source pixels
    classes: list[np.ndarray]  # per image (n,) int64 class indices
    source_sizes: np.ndarray  # (N, 2) source (height, width)
    labels: tuple[str, ...]
    geometry: Preprocessing
    sources: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = field(default=())  # type: ignore[assignment]
    given_splits: tuple[str, ...] = ()  # per image: the split the data put it in ("" for none); () when it has none
    split_source: str = ""  # where the splits came from (data.yaml, ImageSets/Main, one COCO file per split)

    def __post_init__(self) -> None:
        if not (len(self.pixels) == len(self.boxes) == len(self.classes) == len(self.source_sizes)):
            raise DatasetError("pixels, boxes, classes and source_sizes need one entry per image")
        if not self.sources:
            self.sources = tuple(f"array[{i}]" for i in range(len(self.pixels)))

    def __len__(self) -> int:
        return len(self.pixels)

    def tensors(self, preprocessing: Preprocessing, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Float model inputs, through the runtime's `normalize`."""
        check_geometry(self.geometry, preprocessing)
        return normalize(self.pixels[indices], preprocessing)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "DetectionDataset":
        indices = np.asarray(indices, dtype=np.int64)
        return DetectionDataset(
            self.pixels[indices],
            [self.boxes[i] for i in indices],
            [self.classes[i] for i in indices],
            self.source_sizes[indices],
            self.labels,
            self.geometry,
            tuple(self.sources[i] for i in indices),
            self.skipped,
            tuple(self.given_splits[i] for i in indices) if self.given_splits else (),
            self.split_source,
        )


def _decoded(dataset: DetectionData) -> DetectionDataset:
    """`dataset` with its pixels decoded (a streamed one is read now, unreadable images skipped and counted)."""
    return dataset if isinstance(dataset, DetectionDataset) else dataset.load()  # type: ignore[attr-defined]
