"""Detection annotations read into one form: YOLO (Ultralytics folders and data.yaml), COCO JSON and Pascal VOC
XML, and written back (`write_annotations`, for generated scenes).

A bad annotation or image is skipped and counted with its reason (`edgekit.data.detection`'s reasons),
never fatal; the records become a `DetectionDataset` in memory or a `StreamingDetectionDataset`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edgekit.data.coco import coco_split_files, read_coco
from edgekit.data.detection import (
    DetectionData,
)
from edgekit.data.images import _geometry
from edgekit.data.voc import read_voc
from edgekit.data.yolo import read_yolo
from edgekit.errors import DatasetError
from runtimes.contract import ColorOrder, Interpolation, ResizeMode

log = logging.getLogger(__name__)


# -- reading ----------------------------------------------------------------------------------


def load_detection(
    path: str | Path,
    image_size: int | Sequence[int] = 128,
    color_order: str | ColorOrder = "rgb",
    resize: str | ResizeMode = "letterbox",
    labels: Sequence[str] | None = None,
    images_dir: str | Path | None = None,
    interpolation: str | Interpolation = "linear",
    stream: bool | str = False,
    cache_dir: str | Path | None = None,
) -> DetectionData:
    """Read a detection dataset, telling the format from its layout: YOLO, COCO or Pascal VOC.

    `path` is a YOLO root (images/ + labels/ + data.yaml or classes.txt), a COCO
    instances .json (images beside it or in `images_dir`), a folder holding one (or one per
    split), or a VOC root (Annotations/ + JPEGImages/). The data's own splits (data.yaml's
    train/val/test, COCO files per split, VOC's ImageSets/Main) are kept: `split()` uses them.
    Letterbox keeps objects' proportions. Larger images are shrunk with one bilinear pass by
    default ("linear", as Ultralytics, TensorFlow's detection API and MediaPipe do): the
    contract carries it, and a camera frame then costs a quarter of the antialiased "area"
    path beside a sub-millisecond detector.

    `stream=False` decodes every image now (a `DetectionDataset`); `stream=True` reads the
    annotations and the image headers only (a `StreamingDetectionDataset`, decoded per epoch
    by tf.data, pixels optionally cached in `cache_dir`); "auto" streams when the decoded
    pixels would pass 2 GiB, and says so.

    Args:
        path: the dataset (above).
        image_size: the model's input side, or (height, width).
        color_order: "rgb", "bgr" or "gray": what the model takes.
        resize: "letterbox" (default), "stretch" or "center_crop".
        labels: the class names in order, for data that does not name them (a VOC folder).
        images_dir: where a COCO file's images are, when not beside it.
        interpolation: "linear" (default) or "area".
        stream: False, True or "auto" (above).
        cache_dir: where a streamed dataset keeps its decoded pixels after the first epoch.

    Returns:
        A `DetectionDataset` (in memory) or a streamed one; both `split()` and report `skipped` files with reasons.

    Raises:
        DatasetError: a path that is no detection dataset, a data.yaml naming missing folders, or no readable image.

    Examples:
        >>> ds = edgekit.load_detection("data/shapes_det", image_size=128)
        >>> ds.skip_counts()
        {}
    """
    root = Path(path)
    geometry = _geometry(image_size, color_order, resize, interpolation)
    if not root.exists():
        raise DatasetError(f"detection dataset not found: {root}")
    lazy = {"stream": stream, "cache_dir": Path(cache_dir) if cache_dir else None}
    found = detection_format(root)
    if found == "coco":
        annotations = root if root.is_file() else coco_split_files(root) or next(root.glob("*.json"))
        return read_coco(annotations, geometry, Path(images_dir) if images_dir else None, **lazy)
    if found == "voc":
        return read_voc(root, geometry, labels, **lazy)
    if found == "yolo":
        return read_yolo(root, geometry, labels, **lazy)
    raise DatasetError(
        f"cannot tell the annotation format of {root}: expected YOLO (images/ + labels/ + data.yaml), "
        "a COCO instances .json, or Pascal VOC (Annotations/ + JPEGImages/)"
    )


def detection_format(path: str | Path) -> str | None:
    """The detection format `path` is laid out as: "yolo", "coco" or "voc"; None for none of them.

    YOLO: images/ and labels/, or data.yaml / classes.txt; COCO: an instances .json, or a folder holding exactly one;
    VOC: Annotations/.
    """
    root = Path(path)
    if root.is_file():
        return "coco" if root.suffix == ".json" else None
    if not root.is_dir():
        return None
    if (root / "Annotations").is_dir():
        return "voc"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "yolo"
    if any((root / name).is_file() for name in ("data.yaml", "dataset.yaml", "classes.txt")):
        return "yolo"
    return "coco" if len(list(root.glob("*.json"))) == 1 or coco_split_files(root) else None


# -- writing (the generated dataset) ------------------------------------------------------

Scene = tuple[str, np.ndarray, list[tuple[int, np.ndarray]]]


def write_annotations(root: Path, scenes: Sequence[Scene], labels: Sequence[str], format: str) -> None:  # noqa: A002
    """Write (file name, BGR image, [(class, box)]) scenes in `format`: yolo, coco or voc."""
    image_dir = root / {"yolo": "images", "coco": "images", "voc": "JPEGImages"}[format]
    image_dir.mkdir(parents=True, exist_ok=True)
    for name, image, _ in scenes:
        cv2.imwrite(str(image_dir / name), image)
    if format == "yolo":
        (root / "labels").mkdir(exist_ok=True)
        (root / "data.yaml").write_text("names: [" + ", ".join(labels) + "]\n")
        for name, image, objects in scenes:
            h, w = image.shape[:2]
            lines = [
                (
                    f"{cls} {(b[0] + b[2]) / 2 / w:.6f} {(b[1] + b[3]) / 2 / h:.6f} {(b[2] - b[0]) / w:.6f} "
                    f"{(b[3] - b[1]) / h:.6f}"
                )
                for cls, b in objects
            ]
            (root / "labels" / Path(name).with_suffix(".txt")).write_text("".join(line + "\n" for line in lines))
    elif format == "coco":
        images, annotations = [], []
        for image_id, (name, image, objects) in enumerate(scenes, 1):
            images.append({"id": image_id, "file_name": name, "height": image.shape[0], "width": image.shape[1]})
            for cls, b in objects:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": cls + 1,
                        "iscrowd": 0,
                        "bbox": [
                            round(float(b[0]), 3),
                            round(float(b[1]), 3),
                            round(float(b[2] - b[0]), 3),
                            round(float(b[3] - b[1]), 3),
                        ],
                        "area": float((b[2] - b[0]) * (b[3] - b[1])),
                    }
                )
        categories = [{"id": i + 1, "name": label} for i, label in enumerate(labels)]
        (root / "annotations.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": categories})
        )
    else:
        (root / "Annotations").mkdir(exist_ok=True)
        for name, image, objects in scenes:
            objs = "".join(
                f"<object><name>{labels[cls]}</name><bndbox><xmin>{b[0]:.3f}</xmin><ymin>{b[1]:.3f}</ymin>"
                f"<xmax>{b[2]:.3f}</xmax><ymax>{b[3]:.3f}</ymax></bndbox></object>"
                for cls, b in objects
            )
            size = f"<size><width>{image.shape[1]}</width><height>{image.shape[0]}</height><depth>3</depth></size>"
            (root / "Annotations" / Path(name).with_suffix(".xml").name).write_text(
                f"<annotation><filename>{name}</filename>{size}{objs}</annotation>"
            )
