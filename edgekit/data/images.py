"""Image datasets held as contract-ready pixels: from class folders or from arrays.

Images are decoded, colour-converted and resized once with the runtime's own
preprocessing code, and kept as uint8. Scaling to float happens per batch with the same
`normalize` the device uses, so training sees exactly what inference will.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from edgekit.data.splits import check_fractions, drawn_origin, given_parts, with_origin
from edgekit.errors import DatasetError
from runtimes.contract import ColorOrder, Interpolation, Preprocessing, ResizeMode
from runtimes.errors import InputError
from runtimes.preprocess import ColorName, normalize, prepare_pixels

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of a dataset, and why (unreadable, a bad annotation)."""

    path: str
    reason: str


class SplitMixin:
    """Stratified splits and samples for a dataset with `targets`, `labels` and `subset` (in memory or streamed)."""

    targets: np.ndarray
    labels: tuple[str, ...]
    counts_instances = False  # one label per image: images and instances are the same count

    def images_per_class(self) -> dict[str, int]:
        """Images per class (`class_counts`: a classification image is one instance)."""
        return self.class_counts()  # type: ignore[attr-defined]

    def split(
        self, val: float = 0.15, test: float = 0.15, seed: int = 0, resplit: bool = False
    ) -> tuple[Any, Any, Any]:
        """(train, val, test): the data's own splits when it has them (``train/``, ``val/`` and ``test/`` folders of
        class folders), else drawn at random, stratified: every class keeps its share in every part.

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
        given: tuple[str, ...] = getattr(self, "given_splits", ())
        source: str = getattr(self, "split_source", "")
        if given and not resplit:
            parts, origin = given_parts(given, source, val, seed, self._drawn)
            return with_origin(tuple(self.subset(part) for part in parts), origin)
        parts = tuple(self.subset(part) for part in self._drawn(np.arange(len(self.targets)), val, test, seed))
        return with_origin(parts, drawn_origin(val, test, seed, source if given else ""))

    def _drawn(
        self, among: np.ndarray, val: float, test: float, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`among`'s indices split at random into (train, val, test), every class keeping its share."""
        rng = np.random.default_rng(seed)
        parts: tuple[list[int], list[int], list[int]] = ([], [], [])
        for cls in range(len(self.labels)):
            members = rng.permutation(among[self.targets[among] == cls])
            if not len(members):
                continue
            n_test = int(round(test * len(members)))
            n_val = int(round(val * len(members)))
            if len(members) - n_test - n_val < 1:
                raise DatasetError(
                    f"class {self.labels[cls]!r} has only {len(members)} image(s): too few to split "
                    f"with val={val}, test={test}; add images or lower the fractions"
                )
            parts[2].extend(members[:n_test])
            parts[1].extend(members[n_test : n_test + n_val])
            parts[0].extend(members[n_test + n_val :])
        return tuple(np.sort(np.asarray(p, np.int64)) for p in parts)  # type: ignore[return-value]

    def sample(self, count: int, seed: int = 0) -> Any:
        """Up to `count` images drawn without replacement (e.g. for calibration)."""
        rng = np.random.default_rng(seed)
        chosen = rng.permutation(len(self))[: min(count, len(self))]
        return self.subset(np.sort(chosen))


@dataclass
class ImageDataset(SplitMixin):
    """Labelled uint8 images at one size and colour order (the contract's geometry).

    Attributes:
        pixels: (N, H, W, C) uint8 images in `geometry`'s colour order.
        targets: (N,) int class indices.
        labels: The class names, in index order.
        geometry: The input size, colour order and resize mode the pixels were made with.
        sources: Each image's file path.
        skipped: Files left out, each with its reason.
        given_splits: Per image, the split the data put it in ("" for none); () when the data has none.
        split_source: Where the given splits came from (train/, val/, test/ folders).
    """

    pixels: np.ndarray  # (N, H, W, C) uint8, in geometry.color_order
    targets: np.ndarray  # (N,) int class indices
    labels: tuple[str, ...]
    geometry: Preprocessing  # size, colour order and resize mode the pixels were made with
    sources: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = field(default=())
    given_splits: tuple[str, ...] = ()  # per image: the split the data put it in ("" for none); () when it has none
    split_source: str = ""  # where the splits came from (train/, val/, test/ folders)

    def __post_init__(self) -> None:
        if len(self.pixels) != len(self.targets):
            raise DatasetError(f"{len(self.pixels)} images but {len(self.targets)} targets")
        if not self.sources:
            self.sources = tuple(f"array[{i}]" for i in range(len(self.pixels)))

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every image: the model's input size."""
        return self.geometry.input_size

    def class_counts(self) -> dict[str, int]:
        """Images per class, by label."""
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {label: int(n) for label, n in zip(self.labels, counts)}

    def tensors(self, preprocessing: Preprocessing, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Float model inputs for (some of) the images, through the runtime's `normalize`."""
        self._check_compatible(preprocessing)
        return normalize(self.pixels[indices], preprocessing)

    def _check_compatible(self, preprocessing: Preprocessing) -> None:
        check_geometry(self.geometry, preprocessing)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageDataset":
        """The images at `indices`, in that order, with their labels, sources and splits."""
        indices = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            self.pixels[indices],
            self.targets[indices],
            self.labels,
            self.geometry,
            tuple(self.sources[i] for i in indices),
            self.skipped,
            tuple(self.given_splits[i] for i in indices) if self.given_splits else (),
            self.split_source,
        )


def check_geometry(dataset: Preprocessing, preprocessing: Preprocessing) -> None:
    """Raise unless a dataset's pixels were made as `preprocessing` makes them (size, colours, resize)."""
    if dataset.geometry() != preprocessing.geometry():
        raise DatasetError(
            f"dataset images are {dataset.describe_geometry()} but the preprocessing wants "
            f"{preprocessing.describe_geometry()}; load the dataset with the model's image_size, color_order, resize "
            "and interpolation"
        )


def _geometry(
    image_size: int | Sequence[int],
    color_order: str | ColorOrder,
    resize: str | ResizeMode,
    interpolation: str | Interpolation = Interpolation.AREA,
) -> Preprocessing:
    return Preprocessing(input_size=image_size, color_order=color_order, resize=resize, interpolation=interpolation)


def ArrayDataset(  # noqa: N802
    x: np.ndarray,
    y: Sequence[int] | np.ndarray,
    labels: Sequence[str],
    image_size: int | Sequence[int] | None = None,
    color: ColorName = "rgb",
    color_order: str | ColorOrder = "rgb",
    resize: str | ResizeMode = "stretch",
    interpolation: str | Interpolation = "area",
) -> ImageDataset:
    """Images from arrays: `x` is (N, H, W) or (N, H, W, C) uint8 pixels in colour order `color`.

    Args:
        x: (N, H, W) or (N, H, W, C) uint8 pixels, 0..255.
        y: one class index per image.
        labels: the class names, by index.
        image_size: the model's input side or (height, width); None: the arrays' own size.
        color: the arrays' colour order, "rgb" or "bgr".
        color_order: what the model takes: "rgb", "bgr" or "gray".
        resize: "stretch" (default), "letterbox" or "center_crop".
        interpolation: "area" (default) or "linear".

    Returns:
        An `ImageDataset` at the contract's geometry (sources named ``array[i]``).

    Raises:
        DatasetError: pixels that are not uint8, shapes that do not match, fewer than two labels, or an index
            outside them.

    Examples:
        scikit-learn's digits, 0..16 greyscale:

        >>> d = sklearn.datasets.load_digits()
        >>> ds = ArrayDataset(
        ...     (d.images * 255 / 16).astype("uint8"), d.target, [str(i) for i in range(10)], image_size=32
        ... )
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype != np.uint8:
        raise DatasetError(
            f"x must hold uint8 pixels 0..255, got dtype {x.dtype}; rescale it first, "
            "e.g. (x * 255 / x.max()).astype('uint8')"
        )
    if x.ndim not in (3, 4) or len(x) == 0:
        raise DatasetError(f"x must be a non-empty (N, H, W) or (N, H, W, C) array, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(f"y must be a 1-D array with one label index per image ({len(x)}), got shape {y.shape}")
    labels = tuple(str(label) for label in labels)
    if len(labels) < 2:
        raise DatasetError(f"classification needs at least two labels, got {list(labels)}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= len(labels):
        raise DatasetError(f"y must hold integer class indices in [0, {len(labels) - 1}] (one per label)")
    geometry = _geometry(image_size or x.shape[1:3], color_order, resize, interpolation)
    try:
        pixels = np.stack([prepare_pixels(image, geometry, color) for image in x])
    except InputError as exc:
        raise DatasetError(f"x cannot be used as images: {exc}") from None
    return ImageDataset(pixels, y.astype(np.int64), labels, geometry)


def is_streaming(dataset: Any) -> bool:
    """Whether `dataset` reads its images per epoch (an image folder or a detection dataset with stream=True)."""
    return bool(getattr(dataset, "streams", False))


def in_memory(dataset: Any) -> Any:
    """`dataset` decoded into memory when it streams (for random access: checks, evaluation), else itself."""
    return dataset.load() if is_streaming(dataset) else dataset
