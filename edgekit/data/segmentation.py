"""Segmentation datasets: images and their class masks, in memory (`SegmentationDataset`).

`load_segmentation(path)` reads three layouts, told apart by what the folder holds:
- image + mask folders: ``images/`` and ``masks/`` (or ``labels/``, ``annotations/``) with one PNG of class ids per
  image (same stem; 255 is "not labelled"), class names in ``labels.txt`` or ``classes.txt``, one per line;
- Pascal VOC: ``JPEGImages/`` and ``SegmentationClass/`` palette PNGs (index = class, 255 the borders), VOC's 21
  names, the splits of ``ImageSets/Segmentation``;
- COCO: an instances JSON whose annotations have ``segmentation`` polygons or RLE, rasterized by pycocotools
  (class 0 is "background", then the categories by id; a later annotation covers an earlier one).

Each image's mask is kept at the source size (for metrics where predict() answers) and resized to the model input
by nearest pixel through the same affine map as the image (the letterbox's bands are 255: never scored). A mask
whose size differs from its image, or that holds ids outside the labels, is skipped and counted with the reason,
as a missing or unreadable file is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from edgekit.data.images import IMAGE_SUFFIXES, SkippedFile, SplitMixin, _geometry, check_geometry
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.heads.segmentation import IGNORE
from runtimes.preprocess import BoxMapping, box_mapping, normalize, prepare_pixels, read_image

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
        found = []
        for mask in self.masks:
            counts = np.bincount(mask.reshape(-1), minlength=len(self.labels))[: len(self.labels)]
            counts[0] = 0
            found.append(int(counts.argmax()) if counts.any() else 0)
        return np.asarray(found, np.int64)

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
        counts: dict[str, int] = {}
        for skipped in self.skipped:
            reason = skipped.reason.split(":")[0]
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


def load_segmentation(
    path: str | Path,
    image_size: int | Sequence[int] = 128,
    color_order: str = "rgb",
    resize: str = "letterbox",
    interpolation: str = "linear",
    labels: Sequence[str] | None = None,
) -> SegmentationDataset:
    """Read a segmentation dataset: image + mask folders, Pascal VOC or a COCO instances JSON (module docstring).

    Args:
        path: the dataset's folder (or a COCO .json).
        image_size: the model's input side, or (height, width).
        color_order: "rgb", "bgr" or "gray".
        resize: "letterbox" (default), "stretch" or "center_crop".
        interpolation: the images' resize, "linear" (default) or "area"; masks always take the nearest pixel.
        labels: the class names, in id order, where the data names none.

    Returns:
        A `SegmentationDataset`; `skip_counts()` says what was left out and why.

    Raises:
        DatasetError: a path that is none of the layouts, or no usable image.

    Examples:
        >>> data = edgekit.load_segmentation("data/shapes_seg", image_size=128)
        >>> train, val, test = data.split(seed=0)
    """
    root = Path(path)
    geometry = _geometry(image_size, color_order, resize, interpolation)
    if root.suffix == ".json" or (root.is_dir() and not (root / "images").is_dir() and list(root.glob("*.json"))):
        from edgekit.data.segmentation_coco import coco_pairs

        pairs, names, skipped = coco_pairs(root if root.suffix == ".json" else sorted(root.glob("*.json"))[0])
        return _dataset(pairs, names, geometry, skipped)
    if (root / "SegmentationClass").is_dir():
        return _dataset(*_voc_pairs(root), geometry, [])
    folder = next((root / name for name in MASK_FOLDERS if (root / name).is_dir()), None)
    if not (root / "images").is_dir() or folder is None:
        raise DatasetError(
            f"{root} is not a segmentation dataset: give a folder with images/ and masks/ (one PNG of class ids "
            "per image), a Pascal VOC root (JPEGImages/, SegmentationClass/) or a COCO instances .json"
        )
    names = _names(root, labels)
    pairs = [
        (image, lambda image=image: _read_mask(folder / image.relative_to(root / "images").with_suffix(".png")), "")
        for image in sorted(p for p in (root / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    ]
    return _dataset(pairs, names, geometry, [])


def _names(root: Path, given: Sequence[str] | None) -> tuple[str, ...]:
    if given:
        return tuple(str(n) for n in given)
    for name in ("labels.txt", "classes.txt"):
        if (root / name).is_file():
            return tuple(line.strip() for line in (root / name).read_text().splitlines() if line.strip())
    raise DatasetError(f"{root} names no classes: write labels.txt (one class name per line, in id order)")


def _read_mask(path: Path) -> np.ndarray | None:
    """A PNG of class ids (a palette PNG's indices, not its colours), or None when missing."""
    if not path.is_file():
        return None
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in ("P", "L", "I;16", "I"):
            raise InputError(f"{path.name} is a {image.mode} image, not one class id per pixel")
        return np.asarray(image).astype(np.uint8 if image.mode in ("P", "L") else np.uint16)


def _voc_pairs(root: Path) -> tuple[list[tuple[Path, Any, str]], tuple[str, ...]]:
    splits: dict[str, str] = {}
    for split, file in (("train", "train.txt"), ("val", "val.txt"), ("test", "test.txt")):
        listing = root / "ImageSets" / "Segmentation" / file
        if listing.is_file():
            splits.update({line.strip(): split for line in listing.read_text().splitlines() if line.strip()})
    stems = sorted(p.stem for p in (root / "SegmentationClass").glob("*.png"))
    pairs = [
        (
            root / "JPEGImages" / f"{stem}.jpg",
            lambda s=stem: _read_mask(root / "SegmentationClass" / f"{s}.png"),
            splits.get(stem, ""),
        )
        for stem in stems
    ]
    return pairs, VOC_CLASSES


def _dataset(
    pairs: list[tuple[Path, Any, str]], names: Sequence[str], geometry: Preprocessing, skipped: list
) -> SegmentationDataset:
    """Each (image, its mask's reader, split) decoded and checked; bad ones skipped and counted."""
    pixels, masks, sources, splits, source_masks = [], [], [], [], []
    for image_path, read_mask, split in pairs:
        try:
            image = read_image(image_path)
            mask = read_mask()
        except (InputError, OSError, ValueError) as exc:
            skipped.append(SkippedFile(str(image_path), f"{UNREADABLE}: {exc}"))
            continue
        if mask is None:
            skipped.append(SkippedFile(str(image_path), NO_MASK))
            continue
        if mask.shape[:2] != image.shape[:2]:
            detail = f"{mask.shape[1]}x{mask.shape[0]} mask for a {image.shape[1]}x{image.shape[0]} image"
            skipped.append(SkippedFile(str(image_path), f"{MASK_SIZE}: {detail}"))
            continue
        values = np.unique(mask)
        outside = values[(values >= len(names)) & (values != IGNORE)]
        if len(outside):
            detail = f"{outside.tolist()[:5]} with {len(names)} labels"
            skipped.append(SkippedFile(str(image_path), f"{MASK_IDS}: {detail}"))
            continue
        mask = mask.astype(np.uint8)
        pixels.append(prepare_pixels(image, geometry, "bgr"))
        masks.append(mask_to_input(mask, geometry))
        source_masks.append(mask)
        sources.append(str(image_path))
        splits.append(split)
    if not pixels:
        reasons = sorted({s.reason.split(":")[0] for s in skipped})
        raise DatasetError(f"no usable image and mask ({len(skipped)} skipped: {', '.join(reasons) or 'none found'})")
    given = (tuple(splits), "the data's split lists") if any(splits) else ((), "")
    return SegmentationDataset(
        np.stack(pixels), np.stack(masks), tuple(names), geometry, source_masks, tuple(sources), tuple(skipped), *given
    )
