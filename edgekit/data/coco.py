"""COCO instances JSON: `images`, `annotations` (bbox x, y, w, h) and `categories`."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.data.detection import MALFORMED_FILE, MALFORMED_LINE, MISSING_IMAGE, UNKNOWN_CLASS, DetectionData
from edgekit.data.records import Record, RecordReader
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing


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
    reader = RecordReader(annotations.parent, names, geometry)
    records: dict[int, Record] = {}
    for entry in images:
        try:
            records[int(entry["id"])] = Record(folder / str(entry["file_name"]))
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
