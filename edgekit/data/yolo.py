"""Ultralytics YOLO datasets: images/ and labels/ (one `class cx cy w h` line per box) with data.yaml or
classes.txt for the names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from edgekit.data.detection import MALFORMED_LINE, MISSING_IMAGE, UNREADABLE_IMAGE, DetectionData
from edgekit.data.records import Record, RecordReader, image_files, image_size_of
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing


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
    reader = RecordReader(root, names, geometry)
    records = []
    for image in image_files(images_dir):
        record = Record(image)
        label_file = labels_dir / image.relative_to(images_dir).with_suffix(".txt")
        if label_file.is_file():  # no file: an image with no objects, as in YOLO
            sizes = image_size_of(image)
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
    stems = {f.relative_to(images_dir).with_suffix("") for f in image_files(images_dir)}
    if labels_dir.is_dir():
        for orphan in sorted(labels_dir.rglob("*.txt")):
            if orphan.relative_to(labels_dir).with_suffix("") not in stems:
                reader.skip(str(orphan), MISSING_IMAGE, "a label file without its image")
    return reader.build(records, stream, cache_dir)
