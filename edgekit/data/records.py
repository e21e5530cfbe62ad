"""Annotation records (an image and its boxes, as read) and the reader that turns them into a dataset, skipping
and counting with its reason every record that cannot be used. Each format's reader (yolo, coco, voc) makes the
records."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from edgekit.data.detection import (
    BOX_EMPTY,
    BOX_OUTSIDE,
    EDGE_TOLERANCE,
    MALFORMED_LINE,
    MIN_BOX_SIDE,
    MISSING_IMAGE,
    UNKNOWN_CLASS,
    UNREADABLE_IMAGE,
    DetectionData,
    DetectionDataset,
)
from edgekit.data.detection_streaming import StreamingDetectionDataset
from edgekit.data.image_streaming import should_stream
from edgekit.data.images import IMAGE_SUFFIXES, SkippedFile
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.preprocess import image_array, prepare_pixels

log = logging.getLogger("edgekit.data.annotations")  # the name users filter on, whichever format read the records


@dataclass
class Record:
    """One image's annotations as read, before the image itself is."""

    image: Path
    boxes: list[list[float]] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # file:line of each box, for skip messages
    size: tuple[int, int] | None = None  # (height, width) when the annotation states it
    split: str = ""  # the split the data puts it in (train, val, test), "" when it says none
    keypoints: list[np.ndarray] = field(default_factory=list)  # per box (K, 3) x y visibility: keypoint data only


class RecordReader:
    """Turns records into a DetectionDataset, skipping and counting what cannot be used."""

    def __init__(self, root: Path, labels: Sequence[str], geometry: Preprocessing) -> None:
        self.root, self.labels, self.geometry = root, tuple(labels), geometry
        self.skipped: list[SkippedFile] = []
        self.kept_keypoints: list[np.ndarray] = []  # after `build`: per image (n, K, 3), of the boxes kept
        self.point_check: Any = None  # keypoint data: (points, width, height, where) -> points or None (skipped)
        self.keypoint_count = 0

    def skip(self, where: str, reason: str, detail: str = "") -> None:
        self.skipped.append(SkippedFile(where, f"{reason}: {detail}" if detail else reason))

    def check_class(self, value: int, where: str) -> bool:
        if 0 <= value < len(self.labels):
            return True
        self.skip(where, UNKNOWN_CLASS, f"{value} (valid: 0..{len(self.labels) - 1})")
        return False

    def build(
        self,
        records: Iterable[Record],
        stream: bool | str = False,
        cache_dir: Path | None = None,
        split_source: str = "",
    ) -> DetectionData:
        """The dataset of `records`: decoded now, or (`stream`) listed with their sizes read from the file headers.

        `split_source` names where the records' `split`s came from; the dataset keeps them when any record has one.
        """
        records = list(records)
        stream = should_stream(stream, len(records), self.geometry, self.root)
        pixels, boxes, classes, sizes, sources, splits = [], [], [], [], [], []
        for record in records:
            read = self._read_image(record.image, stream)
            if read is None:
                continue
            (height, width), prepared = read
            if prepared is not None:
                pixels.append(prepared)
            kept_boxes, kept_classes, kept_points = [], [], []
            for number, (box, cls, where) in enumerate(zip(record.boxes, record.classes, record.where)):
                checked = self._checked_box(box, width, height, where)
                points = record.keypoints[number] if record.keypoints else None
                if checked is not None and points is not None:
                    points = self.point_check(points, width, height, where)
                    checked = None if points is None else checked
                if checked is not None:
                    kept_boxes.append(checked)
                    kept_classes.append(cls)
                    kept_points.append(points)
            if self.point_check is not None:
                shape = (len(kept_points), self.keypoint_count, 3)
                self.kept_keypoints.append(np.asarray(kept_points, np.float32).reshape(shape))
            boxes.append(np.asarray(kept_boxes, np.float32).reshape(-1, 4))
            classes.append(np.asarray(kept_classes, np.int64))
            sizes.append((height, width))
            sources.append(str(record.image))
            splits.append(record.split)
        self._report(bool(sources))
        source_sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
        given = (tuple(splits), split_source) if any(splits) else ((), "")
        if stream:
            return StreamingDetectionDataset(
                tuple(sources),
                boxes,
                classes,
                source_sizes,
                self.labels,
                self.geometry,
                tuple(self.skipped),
                cache_dir=cache_dir,
                given_splits=given[0],
                split_source=given[1],
            )
        kept = (tuple(sources), tuple(self.skipped), *given)
        return DetectionDataset(np.stack(pixels), boxes, classes, source_sizes, self.labels, self.geometry, *kept)

    def _read_image(self, image: Path, stream: bool) -> tuple[tuple[int, int], np.ndarray | None] | None:
        """((height, width), the decoded pixels or None when streaming), or None when the image is skipped."""
        if not image.is_file():
            self.skip(str(image), MISSING_IMAGE)
            return None
        if stream:
            size = image_size_of(image)
            if size is None:
                self.skip(str(image), UNREADABLE_IMAGE, "the file is corrupt or not an image")
            return None if size is None else (size, None)
        try:
            pixels, color = image_array(image, "bgr")
            prepared = prepare_pixels(pixels, self.geometry, color)
        except InputError as exc:
            self.skip(str(image), UNREADABLE_IMAGE, str(exc))
            return None
        return pixels.shape[:2], prepared

    def _report(self, any_usable: bool) -> None:
        """Log what was skipped, by reason; with nothing usable, a DatasetError that says why."""
        if self.skipped:
            counts = Counter(s.reason.split(":")[0] for s in self.skipped)
            log.warning(
                "skipped %d record(s) in %s: %s (first: %s: %s)",
                len(self.skipped),
                self.root,
                ", ".join(f"{n} {reason}" for reason, n in counts.items()),
                self.skipped[0].path,
                self.skipped[0].reason,
            )
        if not any_usable:
            raise DatasetError(
                f"no usable image in {self.root} ({len(self.skipped)} record(s) skipped"
                + (f", first: {self.skipped[0].path}: {self.skipped[0].reason}" if self.skipped else "")
                + ")"
            )

    def _checked_box(self, box: list[float], width: int, height: int, where: str) -> list[float] | None:
        x0, y0, x1, y1 = box
        if not all(np.isfinite(box)):
            self.skip(where, MALFORMED_LINE, f"non-finite coordinates {box}")
            return None
        if x1 - x0 < MIN_BOX_SIDE or y1 - y0 < MIN_BOX_SIDE:
            self.skip(where, BOX_EMPTY, f"{x1 - x0:g} x {y1 - y0:g} px")
            return None
        t = EDGE_TOLERANCE
        if x0 < -t or y0 < -t or x1 > width + t or y1 > height + t:
            self.skip(where, BOX_OUTSIDE, f"({x0:g}, {y0:g}, {x1:g}, {y1:g}) on a {width}x{height} image")
            return None
        return [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]


def image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def image_size_of(path: Path) -> tuple[int, int] | None:
    """(height, width) of an image file from its header (no decoding), or None when it is not a readable image.

    OpenCV decodes without EXIF rotation (IMREAD_UNCHANGED), and so does this: the sizes agree.
    A file whose header reads but whose pixels do not is found when it is decoded, and skipped then.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # Pillow comes with the train extra (matplotlib); without it, decode
        image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED) if path.stat().st_size else None
        return None if image is None else image.shape[:2]
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return (height, width) if width > 0 and height > 0 else None
