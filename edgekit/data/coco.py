"""COCO instances JSON: `images`, `annotations` (bbox x, y, w, h) and `categories`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.data.detection import MALFORMED_FILE, MALFORMED_LINE, MISSING_IMAGE, UNKNOWN_CLASS, DetectionData
from edgekit.data.records import Record, RecordReader
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing


def read_coco(
    annotations: Path | dict[str, Path],
    geometry: Preprocessing,
    images_dir: Path | None = None,
    stream: bool | str = False,
    cache_dir: Path | None = None,
) -> DetectionData:
    """COCO instances JSON: images, annotations (bbox x y w h in pixels) and categories; `annotations` one file or
    one per split ({"train": ..., "val": ..., "test": ...}, the same categories in each), whose splits are kept."""
    files = annotations if isinstance(annotations, dict) else {"": annotations}
    first = next(iter(files.values()))
    names, index_of = None, None
    reader: RecordReader | None = None
    records: list[Record] = []
    for split, file in files.items():
        images, anns, categories = _load(file)
        file_names, file_index = _categories(categories, file)
        if reader is None:
            names, index_of = file_names, file_index
            reader = RecordReader(first.parent, names, geometry)
        elif (file_names, file_index) != (names, index_of):
            raise DatasetError(f"{file}'s categories differ from {first}'s; every split needs the same categories")
        folder = images_dir or next(d for d in (file.parent / "images", file.parent) if d.is_dir())
        records.extend(coco_records(file, images, anns, index_of, folder, split, reader))
    assert reader is not None
    source = ", ".join(f"{split} {file.name}" for split, file in files.items()) if len(files) > 1 else ""
    return reader.build(records, stream, cache_dir, split_source=source and f"COCO files per split: {source}")


def _load(annotations: Path) -> tuple[list, list, list]:
    try:
        data = json.loads(annotations.read_text())
        return data["images"], data.get("annotations", []), data["categories"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{annotations} is not a COCO instances file ({type(exc).__name__}: {exc}); "
            "it needs 'images', 'annotations' and 'categories'"
        ) from None


def _categories(categories: list, annotations: Path) -> tuple[list[str], dict[int, int]]:
    try:
        ordered = sorted(categories, key=lambda c: int(c["id"]))
        return [str(c["name"]) for c in ordered], {int(c["id"]): i for i, c in enumerate(ordered)}
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{annotations}: categories need an id and a name ({exc})") from None


def coco_records(
    annotations: Path,
    images: list,
    anns: list,
    index_of: dict[int, int],
    folder: Path,
    split: str,
    reader: RecordReader,
    points: Callable[[dict, str], np.ndarray | None] | None = None,
) -> list[Record]:
    """One file's records, bad entries skipped and counted by `reader`; with `points`, each annotation's keypoints
    as `points(annotation, where)` reads them (None: skipped, and counted by it)."""
    records: dict[int, Record] = {}
    for entry in images:
        try:
            records[int(entry["id"])] = Record(folder / str(entry["file_name"]), split=split)
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
        parsed = points(ann, where) if points is not None else None
        if points is not None and parsed is None:
            continue
        record = records[image_id]
        if parsed is not None:
            record.keypoints.append(parsed)
        record.boxes.append([x, y, x + w, y + h])
        record.classes.append(index_of[category])
        record.where.append(where)
    return list(records.values())


SPLIT_WORDS = (("train", "train"), ("val", "val"), ("valid", "val"), ("test", "test"))


def coco_split_files(root: Path) -> dict[str, Path]:
    """{split: instances file} for a folder holding one COCO file per split: names such as instances_train2017.json,
    val.json (in the folder or its annotations/), or Roboflow's train/_annotations.coco.json; {} when none."""
    candidates = [*root.glob("*.json"), *root.glob("annotations/*.json"), *root.glob("*/_annotations.coco.json")]
    found: dict[str, Path] = {}
    for file in sorted(candidates):
        words = re.split(r"[^a-z]+", str(file.relative_to(root)).lower())
        for word, split in SPLIT_WORDS:
            if word in words and split not in found:
                found[split] = file
                break
    return {split: found[split] for split in ("train", "val", "test") if split in found} if "train" in found else {}
