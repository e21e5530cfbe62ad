"""COCO instances JSON as segmentation pairs: each image's annotations (``segmentation`` polygons or RLE)
rasterized by pycocotools into one class mask (0 background, then the categories by id; later annotations cover
earlier ones, crowd regions are 255: not scored)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data.images import SkippedFile
from edgekit.errors import DatasetError
from runtimes.deps import require
from runtimes.heads.segmentation import IGNORE

BAD_POLYGON = "annotation without a usable segmentation"


def coco_pairs(file: Path) -> tuple[list[tuple[Path, Any, str]], tuple[str, ...], list[SkippedFile]]:
    """(image path, its mask's reader, "") per image, the labels, and the annotations skipped."""
    require("pycocotools", extra="train")
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # COCO prints its progress
            coco = COCO(str(file))
        categories = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: int(c["id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{file} is not a COCO instances file ({type(exc).__name__}: {exc})") from None
    index_of = {int(c["id"]): i + 1 for i, c in enumerate(categories)}
    names = ("background", *(str(c["name"]) for c in categories))
    folder = next(d for d in (file.parent / "images", file.parent) if d.is_dir())
    skipped: list[SkippedFile] = []

    def reader(image: dict) -> Any:
        def read() -> np.ndarray:
            mask = np.zeros((int(image["height"]), int(image["width"])), np.uint8)
            for ann in sorted(coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])), key=lambda a: int(a["id"])):
                try:
                    region = coco.annToMask(ann).astype(bool)
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    skipped.append(SkippedFile(f"{file}:annotation {ann.get('id')}", f"{BAD_POLYGON}: {exc}"))
                    continue
                mask[region] = IGNORE if ann.get("iscrowd") else index_of.get(int(ann["category_id"]), IGNORE)
            return mask

        return read

    pairs = [(folder / str(image["file_name"]), reader(image), "") for image in coco.loadImgs(coco.getImgIds())]
    return pairs, names, skipped
