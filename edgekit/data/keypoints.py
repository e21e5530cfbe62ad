"""Keypoint datasets: COCO keypoints JSON and Ultralytics' YOLO pose folders, read into a `KeypointDataset`.

Every object has a box, a class and K points (x, y in source pixels, visibility 0: not labelled, 1: labelled but
hidden, 2: visible). The points' names, the skeleton and the flip map (which point a mirrored image turns each
into, as training's horizontal flip needs) travel with the dataset into the model's contract. A bad annotation is
skipped and counted with its reason, as detection's are: a wrong number of keypoint values, a labelled point
outside the image, a visibility outside 0..2; a skeleton edge naming a point that does not exist is dropped and
counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgekit.data.coco import coco_records
from edgekit.data.detection import EDGE_TOLERANCE, MALFORMED_LINE, DetectionDataset
from edgekit.data.images import _geometry, is_streaming
from edgekit.data.keypoint_datasets import KeypointDataset, streamed
from edgekit.data.records import Record, RecordReader, image_files
from edgekit.errors import DatasetError

WRONG_KEYPOINT_COUNT = "wrong keypoint count"
KEYPOINT_OUTSIDE = "keypoint outside the image"
BAD_VISIBILITY = "visibility outside 0..2"
BAD_SKELETON_EDGE = "skeleton edge names a missing point"


def load_keypoints(
    path: str | Path,
    image_size: int | Sequence[int] = 128,
    color_order: str = "rgb",
    resize: str = "letterbox",
    interpolation: str = "linear",
    stream: bool | str = False,
    cache_dir: str | Path | None = None,
) -> Any:
    """Read a keypoint dataset: a COCO keypoints .json (images beside it or in images/) or a YOLO pose root
    (images/ + labels/ + data.yaml with `kpt_shape` and `flip_idx`).

    Args:
        path: the dataset (above).
        image_size: the model's input side, or (height, width).
        color_order: "rgb", "bgr" or "gray".
        resize: "letterbox" (default), "stretch" or "center_crop".
        interpolation: "linear" (default) or "area".
        stream: False (decode every image now), True (decode per epoch while training: a
            `StreamingKeypointDataset`) or "auto" (stream past 2 GiB of decoded pixels).
        cache_dir: where a streamed dataset keeps its decoded pixels after the first epoch.

    Returns:
        A `KeypointDataset` in memory, or a streamed one; both `split()`, and `skip_counts()` says what was left
        out and why.

    Raises:
        DatasetError: a path that is neither, a category without keypoint names, or no usable image.

    Examples:
        >>> ds = edgekit.load_keypoints("data/shapes_kp/annotations.json", image_size=128)
        >>> ds.keypoint_names, ds.skip_counts()
    """
    path = Path(path)
    geometry = _geometry(image_size, color_order, resize, interpolation)
    lazy = {"stream": stream, "cache_dir": Path(cache_dir) if cache_dir else None}
    if path.is_dir() and (path / "data.yaml").is_file():
        return _read_yolo_pose(path, geometry, lazy)
    files = [path] if path.suffix == ".json" else sorted(path.glob("*.json")) if path.is_dir() else []
    if not files or not files[0].is_file():
        raise DatasetError(f"{path} is neither a COCO keypoints .json nor a YOLO pose folder with data.yaml")
    return _read_coco_keypoints(files[0], geometry, lazy)


def _point_checker(reader: RecordReader, count: int) -> Any:
    def check(points: np.ndarray, width: int, height: int, where: str) -> np.ndarray | None:
        visibility = points[:, 2]
        if not np.all(np.isin(visibility, (0, 1, 2))):
            reader.skip(where, BAD_VISIBILITY, f"{sorted(set(visibility.tolist()))}")
            return None
        labelled = points[visibility > 0, :2]
        t = EDGE_TOLERANCE
        outside = (labelled[:, 0] < -t) | (labelled[:, 1] < -t) | (labelled[:, 0] > width + t)
        outside |= labelled[:, 1] > height + t
        if outside.any():
            x, y = labelled[np.argmax(outside)]
            reader.skip(where, KEYPOINT_OUTSIDE, f"({x:g}, {y:g}) on a {width}x{height} image")
            return None
        return points

    reader.point_check, reader.keypoint_count = check, count
    return check


def _dataset(base: Any, reader: RecordReader, names: Sequence[str], skeleton: Any, flip: Any) -> Any:
    edges = []
    for edge in skeleton:
        if len(edge) == 2 and all(0 <= int(i) < len(names) for i in edge):
            edges.append((int(edge[0]), int(edge[1])))
        else:
            reader.skip("skeleton", BAD_SKELETON_EDGE, f"{list(edge)} (points 0..{len(names) - 1})")
    points = {
        "keypoints": reader.kept_keypoints,
        "keypoint_names": tuple(names),
        "skeleton": tuple(edges),
        "flip_idx": tuple(int(i) for i in flip) if flip else (),
    }
    if is_streaming(base):
        base.listing_skipped = tuple(reader.skipped)  # the skeleton's dropped edges too
        return streamed(base, **points)
    fields = {name: getattr(base, name) for name in DetectionDataset.__dataclass_fields__}
    fields["skipped"] = tuple(reader.skipped)
    return KeypointDataset(**fields, **points)


def _read_coco_keypoints(file: Path, geometry: Any, lazy: dict[str, Any]) -> Any:
    try:
        data = json.loads(file.read_text())
        images, anns, categories = data["images"], data.get("annotations", []), data["categories"]
        ordered = sorted(categories, key=lambda c: int(c["id"]))
        names = [str(c["name"]) for c in ordered]
        point_names = [str(n) for n in ordered[0]["keypoints"]]
        skeleton = [[int(i) - 1 for i in edge] for edge in ordered[0].get("skeleton", [])]  # COCO counts from 1
        flip = ordered[0].get("flip_idx")  # edgekit's addition (Ultralytics' data.yaml key); COCO has none
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DatasetError(
            f"{file} is not a COCO keypoints file ({type(exc).__name__}: {exc}); it needs 'images', "
            "'annotations' and 'categories' whose first names its 'keypoints'"
        ) from None
    index_of = {int(c["id"]): i for i, c in enumerate(ordered)}
    reader = RecordReader(file.parent, names, geometry)
    _point_checker(reader, len(point_names))
    folder = next(d for d in (file.parent / "images", file.parent) if d.is_dir())

    def points(ann: dict, where: str) -> np.ndarray | None:
        try:
            values = [float(v) for v in ann["keypoints"]]
        except (KeyError, TypeError, ValueError):
            reader.skip(where, MALFORMED_LINE, f"{str(ann)[:60]} (want keypoints [x, y, v, ...])")
            return None
        if len(values) != 3 * len(point_names):
            reader.skip(where, WRONG_KEYPOINT_COUNT, f"{len(values)} values for {len(point_names)} points")
            return None
        return np.asarray(values, np.float32).reshape(-1, 3)

    records = coco_records(file, images, anns, index_of, folder, "", reader, points=points)
    base = reader.build(records, **lazy)
    return _dataset(base, reader, point_names, skeleton, flip)


def _read_yolo_pose(root: Path, geometry: Any, lazy: dict[str, Any]) -> Any:
    import yaml

    config = yaml.safe_load((root / "data.yaml").read_text()) or {}
    try:
        count, dims = (int(v) for v in config["kpt_shape"])
        raw_names = config["names"]
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{root / 'data.yaml'} needs kpt_shape [K, 2 or 3] and names for a pose dataset") from None
    names = [raw_names[k] for k in sorted(raw_names)] if isinstance(raw_names, dict) else list(raw_names)
    point_names = [str(n) for n in config.get("kpt_names", [f"point_{i}" for i in range(count)])]
    reader = RecordReader(root, names, geometry)
    _point_checker(reader, count)
    records = []
    for image in image_files(root / "images"):
        record = Record(image)
        label = root / "labels" / image.relative_to(root / "images").with_suffix(".txt")
        size = _image_size(image)
        lines = label.read_text().splitlines() if label.is_file() and size is not None else []
        for number, line in enumerate(lines, 1):
            _yolo_pose_line(line, f"{label}:{number}", record, reader, size, count, dims)
        records.append(record)
    base = reader.build(records, **lazy)
    return _dataset(base, reader, point_names, config.get("skeleton", []), config.get("flip_idx"))


def _image_size(image: Path) -> tuple[int, int] | None:
    from edgekit.data.records import image_size_of

    return image_size_of(image)


def _yolo_pose_line(
    line: str, where: str, record: Record, reader: RecordReader, size: Any, count: int, dims: int
) -> None:
    """One label line, `class cx cy w h` then K points (x y [visibility]), all normalized, into `record`."""
    parts = line.split()
    if not parts:
        return
    if len(parts) != 5 + count * dims:
        reader.skip(where, WRONG_KEYPOINT_COUNT, f"{len(parts) - 5} values for {count} points of {dims}")
        return
    try:
        values = [float(v) for v in parts]
    except ValueError:
        reader.skip(where, MALFORMED_LINE, line[:60])
        return
    if not reader.check_class(int(values[0]), where):
        return
    height, width = size
    cx, cy, w, h = values[1:5]
    points = np.asarray(values[5:], np.float32).reshape(count, dims)
    if dims == 2:  # no visibility: a point at (0, 0) is YOLO's "not labelled"
        points = np.concatenate([points, np.where(points.any(axis=1), 2.0, 0.0)[:, None]], axis=1)
    points[:, 0] *= width
    points[:, 1] *= height
    record.boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
    record.classes.append(int(values[0]))
    record.where.append(where)
    record.keypoints.append(points)
