"""Detection annotations read into one form: YOLO (Ultralytics folders and data.yaml), COCO JSON and Pascal VOC
XML, and written back (`write_annotations`, for generated scenes).

A bad annotation or image is skipped and counted with its reason (`edgekit.data.detection`'s reasons),
never fatal; the records become a `DetectionDataset` in memory or a `StreamingDetectionDataset`.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from edgekit.data.detection import (
    BOX_EMPTY,
    BOX_OUTSIDE,
    EDGE_TOLERANCE,
    MALFORMED_FILE,
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
from edgekit.data.images import IMAGE_SUFFIXES, SkippedFile, _geometry
from edgekit.errors import DatasetError
from runtimes.contract import ColorOrder, Interpolation, Preprocessing, ResizeMode
from runtimes.errors import InputError
from runtimes.preprocess import image_array, prepare_pixels

log = logging.getLogger(__name__)


# -- reading ----------------------------------------------------------------------------------


@dataclass
class _Record:
    """One image's annotations as read, before the image itself is."""

    image: Path
    boxes: list[list[float]] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # file:line of each box, for skip messages
    size: tuple[int, int] | None = None  # (height, width) when the annotation states it


class _Reader:
    """Turns records into a DetectionDataset, skipping and counting what cannot be used."""

    def __init__(self, root: Path, labels: Sequence[str], geometry: Preprocessing) -> None:
        self.root, self.labels, self.geometry = root, tuple(labels), geometry
        self.skipped: list[SkippedFile] = []

    def skip(self, where: str, reason: str, detail: str = "") -> None:
        self.skipped.append(SkippedFile(where, f"{reason}: {detail}" if detail else reason))

    def check_class(self, value: int, where: str) -> bool:
        if 0 <= value < len(self.labels):
            return True
        self.skip(where, UNKNOWN_CLASS, f"{value} (valid: 0..{len(self.labels) - 1})")
        return False

    def build(
        self, records: Iterable[_Record], stream: bool | str = False, cache_dir: Path | None = None
    ) -> DetectionData:
        """The dataset of `records`: decoded now, or (`stream`) listed with their sizes read from the file headers."""
        records = list(records)
        stream = should_stream(stream, len(records), self.geometry, self.root)
        pixels, boxes, classes, sizes, sources = [], [], [], [], []
        for record in records:
            if not record.image.is_file():
                self.skip(str(record.image), MISSING_IMAGE)
                continue
            if stream:
                size = _image_size(record.image)
                if size is None:
                    self.skip(str(record.image), UNREADABLE_IMAGE, "the file is corrupt or not an image")
                    continue
                height, width = size
            else:
                try:
                    image, color = image_array(record.image, "bgr")
                    prepared = prepare_pixels(image, self.geometry, color)
                except InputError as exc:
                    self.skip(str(record.image), UNREADABLE_IMAGE, str(exc))
                    continue
                height, width = image.shape[:2]
                pixels.append(prepared)
            kept_boxes, kept_classes = [], []
            for box, cls, where in zip(record.boxes, record.classes, record.where):
                checked = self._checked_box(box, width, height, where)
                if checked is not None:
                    kept_boxes.append(checked)
                    kept_classes.append(cls)
            boxes.append(np.asarray(kept_boxes, np.float32).reshape(-1, 4))
            classes.append(np.asarray(kept_classes, np.int64))
            sizes.append((height, width))
            sources.append(str(record.image))
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
        if not sources:
            raise DatasetError(
                f"no usable image in {self.root} ({len(self.skipped)} record(s) skipped"
                + (f", first: {self.skipped[0].path}: {self.skipped[0].reason}" if self.skipped else "")
                + ")"
            )
        source_sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
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
            )
        return DetectionDataset(
            np.stack(pixels),
            boxes,
            classes,
            source_sizes,
            self.labels,
            self.geometry,
            tuple(sources),
            tuple(self.skipped),
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


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _yolo_names(root: Path) -> list[str] | None:
    """Class names from data.yaml (`names:` as a list or an index map) or classes.txt."""
    for candidate in (root / "data.yaml", root / "dataset.yaml"):
        if candidate.is_file():
            return _names_from_yaml(candidate)
    for candidate in (root / "classes.txt", root / "obj.names"):
        if candidate.is_file():
            return [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
    return None


def _names_from_yaml(path: Path) -> list[str]:
    """`names` of a YOLO data.yaml: inline list, block list or index map (no YAML dependency needed)."""
    text = path.read_text()
    try:
        import yaml  # type: ignore[import-untyped]

        data = yaml.safe_load(text)
        names = data.get("names") if isinstance(data, dict) else None
    except ImportError:
        names = _names_without_yaml(text)
    except Exception as exc:  # yaml's errors: a malformed file is the user's to fix
        raise DatasetError(f"{path} is not valid YAML ({exc}); fix it or give classes.txt") from None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{path} has no `names:` list of class names; add one (names: [cat, dog])")
    return [str(n) for n in names]


def _names_without_yaml(text: str) -> list[str] | dict[int, str] | None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^names\s*:\s*(.*)$", line)
        if not match:
            continue
        inline = match.group(1).strip()
        if inline.startswith("["):
            return [item.strip().strip("'\"") for item in inline.strip("[]").split(",") if item.strip()]
        items: dict[int, str] = {}
        listed: list[str] = []
        for follow in lines[i + 1 :]:
            if follow and not follow[0].isspace():
                break
            entry = follow.strip()
            if entry.startswith("- "):
                listed.append(entry[2:].strip().strip("'\""))
            elif re.match(r"^\d+\s*:", entry):
                key, value = entry.split(":", 1)
                items[int(key)] = value.strip().strip("'\"")
        return listed or items or None
    return None


def read_yolo(
    root: Path,
    geometry: Preprocessing,
    labels: Sequence[str] | None = None,
    stream: bool | str = False,
    cache_dir: Path | None = None,
) -> DetectionData:
    """`root/images/**` with `root/labels/**` .txt files of `class cx cy w h` (normalized) lines."""
    names = list(labels) if labels is not None else _yolo_names(root)
    if names is None:
        raise DatasetError(
            f"no class names for {root}: add data.yaml with `names:` or classes.txt, or pass labels=[...]"
        )
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir():
        raise DatasetError(f"{root} has no images/ folder: a YOLO dataset is images/ plus labels/ (one .txt per image)")
    reader = _Reader(root, names, geometry)
    records = []
    for image in _image_files(images_dir):
        record = _Record(image)
        label_file = labels_dir / image.relative_to(images_dir).with_suffix(".txt")
        if label_file.is_file():  # no file: an image with no objects, as in YOLO
            sizes = _image_size(image)
            if sizes is None:
                reader.skip(str(image), UNREADABLE_IMAGE, "the file is corrupt or not an image")
                continue
            height, width = sizes
            for number, line in enumerate(label_file.read_text(errors="replace").splitlines(), 1):
                where = f"{label_file}:{number}"
                fields = line.split()
                if not fields:
                    continue
                try:
                    cls = int(fields[0])
                    cx, cy, w, h = (float(v) for v in fields[1:5])
                    if len(fields) != 5:
                        raise ValueError
                except ValueError:
                    reader.skip(where, MALFORMED_LINE, f"{line.strip()[:60]!r} (want: class cx cy w h)")
                    continue
                if reader.check_class(cls, where):
                    record.boxes.append(
                        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
                    )
                    record.classes.append(cls)
                    record.where.append(where)
        records.append(record)
    stems = {f.relative_to(images_dir).with_suffix("") for f in _image_files(images_dir)}
    if labels_dir.is_dir():
        for orphan in sorted(labels_dir.rglob("*.txt")):
            if orphan.relative_to(labels_dir).with_suffix("") not in stems:
                reader.skip(str(orphan), MISSING_IMAGE, "a label file without its image")
    return reader.build(records, stream, cache_dir)


def _image_size(path: Path) -> tuple[int, int] | None:
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


def read_coco(
    annotations: Path,
    geometry: Preprocessing,
    images_dir: Path | None = None,
    stream: bool | str = False,
    cache_dir: Path | None = None,
) -> DetectionData:
    """A COCO instances JSON: images, annotations (bbox x y w h in pixels) and categories."""
    try:
        data = json.loads(annotations.read_text())
        images, anns, categories = data["images"], data.get("annotations", []), data["categories"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{annotations} is not a COCO instances file ({type(exc).__name__}: {exc}); "
            "it needs 'images', 'annotations' and 'categories'"
        ) from None
    try:
        ordered = sorted(categories, key=lambda c: int(c["id"]))
        index_of = {int(c["id"]): i for i, c in enumerate(ordered)}
        names = [str(c["name"]) for c in ordered]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{annotations}: categories need an id and a name ({exc})") from None
    folder = images_dir or next((d for d in (annotations.parent / "images", annotations.parent) if d.is_dir()))
    reader = _Reader(annotations.parent, names, geometry)
    records: dict[int, _Record] = {}
    for entry in images:
        try:
            records[int(entry["id"])] = _Record(folder / str(entry["file_name"]))
        except (KeyError, TypeError, ValueError):
            reader.skip(f"{annotations}:images", MALFORMED_FILE, f"image entry {str(entry)[:60]}")
    for number, ann in enumerate(anns):
        where = f"{annotations}:annotations[{number}]"
        try:
            image_id, category = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            reader.skip(where, MALFORMED_LINE, f"{str(ann)[:60]} (want image_id, category_id, bbox [x, y, w, h])")
            continue
        if image_id not in records:
            reader.skip(where, MISSING_IMAGE, f"image_id {image_id} is not in 'images'")
            continue
        if category not in index_of:
            reader.skip(where, UNKNOWN_CLASS, f"category_id {category} (valid: {sorted(index_of)})")
            continue
        record = records[image_id]
        record.boxes.append([x, y, x + w, y + h])
        record.classes.append(index_of[category])
        record.where.append(where)
    return reader.build(records.values(), stream, cache_dir)


def read_voc(
    root: Path,
    geometry: Preprocessing,
    labels: Sequence[str] | None = None,
    stream: bool | str = False,
    cache_dir: Path | None = None,
) -> DetectionData:
    """Pascal VOC: `root/Annotations/*.xml` naming images in `root/JPEGImages/`."""
    xml_files = sorted((root / "Annotations").glob("*.xml"))
    if not xml_files:
        raise DatasetError(f"{root} has no Annotations/*.xml: a VOC dataset is Annotations/ plus JPEGImages/")
    parsed: list[tuple[Path, ElementTree.Element]] = []
    problems: list[tuple[str, str]] = []
    for file in xml_files:
        try:
            parsed.append((file, ElementTree.parse(file).getroot()))
        except ElementTree.ParseError as exc:
            problems.append((str(file), f"{MALFORMED_FILE}: {exc}"))
    names = (
        list(labels)
        if labels is not None
        else sorted({(o.findtext("name") or "").strip() for _, r in parsed for o in r.iter("object")} - {""})
    )
    if not names:
        raise DatasetError(f"no object names in {root}/Annotations; pass labels=[...]")
    reader = _Reader(root, names, geometry)
    reader.skipped.extend(SkippedFile(path, reason) for path, reason in problems)
    index_of = {name: i for i, name in enumerate(names)}
    records = []
    for file, xml in parsed:
        record = _Record(root / "JPEGImages" / (xml.findtext("filename") or file.with_suffix(".jpg").name).strip())
        for number, obj in enumerate(xml.iter("object")):
            where = f"{file}:object[{number}]"
            name = (obj.findtext("name") or "").strip()
            if name not in index_of:
                reader.skip(where, UNKNOWN_CLASS, f"{name!r} (valid: {', '.join(names)})")
                continue
            box = obj.find("bndbox")
            try:
                coords = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr,arg-type]
            except (AttributeError, TypeError, ValueError):
                reader.skip(where, MALFORMED_LINE, "bndbox needs xmin, ymin, xmax, ymax numbers")
                continue
            record.boxes.append(coords)
            record.classes.append(index_of[name])
            record.where.append(where)
        records.append(record)
    return reader.build(records, stream, cache_dir)


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
    instances .json (images beside it or in `images_dir`), a folder holding one, or a VOC
    root (Annotations/ + JPEGImages/). Letterbox keeps objects' proportions. Larger images
    are shrunk with one bilinear pass by default ("linear", as Ultralytics, TensorFlow's
    detection API and MediaPipe do): the contract carries it, and a camera frame then costs
    a quarter of the antialiased "area" path beside a sub-millisecond detector.

    `stream=False` decodes every image now (a `DetectionDataset`); `stream=True` reads the
    annotations and the image headers only (a `StreamingDetectionDataset`, decoded per epoch
    by tf.data, pixels optionally cached in `cache_dir`); "auto" streams when the decoded
    pixels would pass 2 GiB, and says so.

    Example:
        >>> ds = edgekit.load_detection("data/shapes_det", image_size=128)
        >>> ds.skip_counts()
        {}
    """
    root = Path(path)
    geometry = _geometry(image_size, color_order, resize, interpolation)
    if not root.exists():
        raise DatasetError(f"detection dataset not found: {root}")
    lazy = {"stream": stream, "cache_dir": Path(cache_dir) if cache_dir else None}
    if root.is_file() and root.suffix == ".json":
        return read_coco(root, geometry, Path(images_dir) if images_dir else None, **lazy)
    if (root / "Annotations").is_dir():
        return read_voc(root, geometry, labels, **lazy)
    if (
        (root / "images").is_dir()
        and (root / "labels").is_dir()
        or any((root / n).is_file() for n in ("data.yaml", "classes.txt"))
    ):
        return read_yolo(root, geometry, labels, **lazy)
    jsons = sorted(root.glob("*.json")) if root.is_dir() else []
    if len(jsons) == 1:
        return read_coco(jsons[0], geometry, Path(images_dir) if images_dir else None, **lazy)
    raise DatasetError(
        f"cannot tell the annotation format of {root}: expected YOLO (images/ + labels/ + data.yaml), "
        "a COCO instances .json, or Pascal VOC (Annotations/ + JPEGImages/)"
    )


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
