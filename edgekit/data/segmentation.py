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

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgekit.data.images import IMAGE_SUFFIXES, SkippedFile, _geometry
from edgekit.data.segmentation_datasets import (
    MASK_FOLDERS,
    NO_MASK,
    UNREADABLE,
    VOC_CLASSES,
    SegmentationDataset,
    mask_of,
    mask_problem,
    mask_to_input,
)
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.preprocess import prepare_pixels, read_image

__all__ = ["VOC_CLASSES", "SegmentationDataset", "load_segmentation", "mask_to_input"]


def load_segmentation(
    path: str | Path,
    image_size: int | Sequence[int] = 128,
    color_order: str = "rgb",
    resize: str = "letterbox",
    interpolation: str = "linear",
    labels: Sequence[str] | None = None,
    stream: bool | str = False,
    cache_dir: str | Path | None = None,
) -> Any:
    """Read a segmentation dataset: image + mask folders, Pascal VOC or a COCO instances JSON (module docstring).

    Args:
        path: the dataset's folder (or a COCO .json).
        image_size: the model's input side, or (height, width).
        color_order: "rgb", "bgr" or "gray".
        resize: "letterbox" (default), "stretch" or "center_crop".
        interpolation: the images' resize, "linear" (default) or "area"; masks always take the nearest pixel.
        labels: the class names, in id order, where the data names none.
        stream: False (decode every image now), True (decode images and masks per epoch while training: a
            `StreamingSegmentationDataset`) or "auto" (stream past 2 GiB of decoded pixels).
        cache_dir: where a streamed dataset keeps its decoded pixels after the first epoch.

    Returns:
        A `SegmentationDataset` in memory, or a streamed one; both `split()`, and `skip_counts()` says what was left
        out and why.

    Raises:
        DatasetError: a path that is none of the layouts, or no usable image.

    Examples:
        >>> data = edgekit.load_segmentation("data/shapes_seg", image_size=128)
        >>> train, val, test = data.split(seed=0)
    """
    root = Path(path)
    geometry = _geometry(image_size, color_order, resize, interpolation)
    lazy = {"stream": stream, "cache_dir": Path(cache_dir) if cache_dir else None, "root": root}
    if root.suffix == ".json" or (root.is_dir() and not (root / "images").is_dir() and list(root.glob("*.json"))):
        from edgekit.data.segmentation_coco import coco_pairs

        pairs, names, skipped = coco_pairs(root if root.suffix == ".json" else sorted(root.glob("*.json"))[0])
        return _dataset(pairs, names, geometry, skipped, lazy)
    if (root / "SegmentationClass").is_dir():
        return _dataset(*_voc_pairs(root), geometry, [], lazy)
    folder = next((root / name for name in MASK_FOLDERS if (root / name).is_dir()), None)
    if not (root / "images").is_dir() or folder is None:
        raise DatasetError(
            f"{root} is not a segmentation dataset: give a folder with images/ and masks/ (one PNG of class ids "
            "per image), a Pascal VOC root (JPEGImages/, SegmentationClass/) or a COCO instances .json"
        )
    names = _names(root, labels)
    pairs = [
        (image, folder / image.relative_to(root / "images").with_suffix(".png"), "")
        for image in sorted(p for p in (root / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    ]
    return _dataset(pairs, names, geometry, [], lazy)


def _names(root: Path, given: Sequence[str] | None) -> tuple[str, ...]:
    if given:
        return tuple(str(n) for n in given)
    for name in ("labels.txt", "classes.txt"):
        if (root / name).is_file():
            return tuple(line.strip() for line in (root / name).read_text().splitlines() if line.strip())
    raise DatasetError(f"{root} names no classes: write labels.txt (one class name per line, in id order)")


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
            root / "SegmentationClass" / f"{stem}.png",
            splits.get(stem, ""),
        )
        for stem in stems
    ]
    return pairs, VOC_CLASSES


def _dataset(
    pairs: list[tuple[Path, Any, str]],
    names: Sequence[str],
    geometry: Preprocessing,
    skipped: list[SkippedFile],
    lazy: dict[str, Any],
) -> Any:
    """Each (image, its mask's file or reader, split) checked; bad ones added to `skipped` (which a reader may also
    add to) with their reasons. Decoded now, or listed for streaming (`lazy`: stream, cache_dir, root)."""
    from edgekit.data.image_streaming import should_stream

    if should_stream(lazy["stream"], len(pairs), geometry, lazy["root"]):
        from edgekit.data.segmentation_streaming import listed

        return listed(pairs, names, geometry, skipped, lazy["cache_dir"])
    pixels, masks, sources, splits, source_masks = [], [], [], [], []
    for image_path, mask_source, split in pairs:
        try:
            image = read_image(image_path)
            mask = mask_of(mask_source)
        except (InputError, OSError, ValueError) as exc:
            skipped.append(SkippedFile(str(image_path), f"{UNREADABLE}: {exc}"))
            continue
        problem = mask_problem(mask, image.shape[:2], names)
        if problem is not None or mask is None:
            skipped.append(SkippedFile(str(image_path), problem or NO_MASK))
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
