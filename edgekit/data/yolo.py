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

SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}  # folder -> split


def _yolo_config(root: Path) -> tuple[list[str] | None, dict[str, list[Path]], str]:
    """(class names, {split: image files} as data.yaml lists them, the yaml's name) from data.yaml, or names from
    classes.txt (no splits)."""
    for candidate in (root / "data.yaml", root / "dataset.yaml"):
        if candidate.is_file():
            data = _read_yaml(candidate)
            return _names_of(data, candidate), _split_files(data, candidate), candidate.name
    for candidate in (root / "classes.txt", root / "obj.names"):
        if candidate.is_file():
            return [line.strip() for line in candidate.read_text().splitlines() if line.strip()], {}, ""
    return None, {}, ""


def _read_yaml(path: Path) -> dict:
    text = path.read_text()
    try:
        import yaml  # type: ignore[import-untyped]

        data = yaml.safe_load(text)
    except ImportError:
        data = _yaml_without_yaml(text)
    except Exception as exc:  # yaml's errors: a malformed file is the user's to fix
        raise DatasetError(f"{path} is not valid YAML ({exc}); fix it or give classes.txt") from None
    return data if isinstance(data, dict) else {}


def _names_of(data: dict, path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{path} has no `names:` list of class names; add one (names: [cat, dog])")
    return [str(n) for n in names]


def _split_files(data: dict, path: Path) -> dict[str, list[Path]]:
    """Ultralytics' `train`/`val`/`test` entries: folders of images or .txt lists of them (one or a list each),
    relative to `path:` (itself relative to the yaml's folder) or to the yaml's folder."""
    base = Path(str(data.get("path") or "."))
    base = base if base.is_absolute() else path.parent / base
    files: dict[str, list[Path]] = {}
    for split in ("train", "val", "test"):
        entries = data.get(split)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            where = Path(str(entry)) if Path(str(entry)).is_absolute() else base / str(entry)
            if where.is_dir():
                files.setdefault(split, []).extend(image_files(where))
            elif where.is_file() and where.suffix == ".txt":
                listed = [line.strip() for line in where.read_text().splitlines() if line.strip()]
                files.setdefault(split, []).extend(
                    Path(line) if Path(line).is_absolute() else (where.parent / line).resolve() for line in listed
                )
            else:
                raise DatasetError(
                    f"{path}: {split}: {entry} is neither a folder of images nor a .txt list of them "
                    f"(looked for {where}); fix the path or remove the entry"
                )
    return files


def _yaml_without_yaml(text: str) -> dict:
    """What edgekit reads of a data.yaml without PyYAML: `names` (see `_names_without_yaml`) and one-line
    `path`, `train`, `val`, `test` values (a string or an inline [list])."""
    data: dict = {"names": _names_without_yaml(text)}
    for line in text.splitlines():
        match = re.match(r"^(path|train|val|test)\s*:\s*(.+?)\s*(#.*)?$", line)
        if match:
            value = match.group(2).strip().strip("'\"")
            items = [v.strip().strip("'\"") for v in value.strip("[]").split(",")] if value.startswith("[") else None
            data[match.group(1)] = items or value
    return data


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
    """A YOLO dataset: images with `class cx cy w h` (normalized) label files where Ultralytics looks for them (the
    last images/ in the path made labels/, .txt), the splits data.yaml names (or images/train, images/val,
    images/test), else every image under `root/images`."""
    names, split_files, config_name = _yolo_config(root)
    names = list(labels) if labels is not None else names
    if names is None:
        raise DatasetError(
            f"no class names for {root}: add data.yaml with `names:` or classes.txt, or pass labels=[...]"
        )
    if split_files:
        listed = [(image, split) for split, images in split_files.items() for image in images]
        source = config_name
    else:
        images_dir = root / "images"
        if not images_dir.is_dir():
            raise DatasetError(
                f"{root} has no images/ folder: a YOLO dataset is images/ plus labels/ (one .txt per image), or a "
                "data.yaml naming its train and val folders"
            )
        listed = [(image, _folder_split(image.relative_to(images_dir))) for image in image_files(images_dir)]
        source = "images/train, images/val, images/test"
    reader = RecordReader(root, names, geometry)
    records = [_record(image, split, reader) for image, split in listed]
    _count_orphans(root, [image for image, _ in listed], reader)
    return reader.build([r for r in records if r is not None], stream, cache_dir, split_source=source)


def _folder_split(relative: Path) -> str:
    """The split an image's first folder under images/ names (train, val/valid, test), or ""."""
    return SPLITS.get(relative.parts[0], "") if len(relative.parts) > 1 else ""


def label_file(image: Path) -> Path:
    """Where Ultralytics looks for an image's labels: the last `images` folder in its path made `labels`, .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _record(image: Path, split: str, reader: RecordReader) -> Record | None:
    """One image's boxes from its label file (no file: an image with no objects, as in YOLO); None if skipped."""
    record = Record(image, split=split)
    labels = label_file(image)
    if not labels.is_file():
        return record
    sizes = image_size_of(image) if image.is_file() else None
    if sizes is None:
        reason = UNREADABLE_IMAGE if image.is_file() else MISSING_IMAGE
        reader.skip(str(image), reason, "the file is corrupt or missing")
        return None
    height, width = sizes
    for number, line in enumerate(labels.read_text(errors="replace").splitlines(), 1):
        where = f"{labels}:{number}"
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
    return record


def _count_orphans(root: Path, images: list[Path], reader: RecordReader) -> None:
    """Label files under root/labels whose image is not among `images`: skipped and counted."""
    labels_dir = root / "labels"
    if not labels_dir.is_dir():
        return
    expected = {label_file(image).resolve() for image in images}
    for orphan in sorted(labels_dir.rglob("*.txt")):
        if orphan.resolve() not in expected:
            reader.skip(str(orphan), MISSING_IMAGE, "a label file without its image")
