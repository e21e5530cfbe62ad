"""The embedded default dataset: coloured shapes drawn on the fly, no download needed."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

SHAPE_CLASSES = ("circle", "square", "triangle")


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A flat or gradient background."""
    a, b = _random_colour(rng), _random_colour(rng)
    if rng.random() < 0.5:
        return np.broadcast_to(a, (size, size, 3)).copy()
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    ramp = t[None, :, None] if rng.random() < 0.5 else t[:, None, None]
    return (a * (1 - ramp) + b * ramp) * np.ones((size, size, 3), np.float32)


_LUMA = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # BGR weights


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray, min_contrast: float) -> np.ndarray:
    """A random colour whose brightness differs from the background's by at least `min_contrast`."""
    luma = float(background.reshape(-1, 3).mean(axis=0) @ _LUMA)
    for _ in range(100):
        colour = _random_colour(rng)
        if abs(float(colour @ _LUMA) - luma) >= min_contrast:
            return colour
    return np.full(3, 255.0 if luma < 128 else 0.0, dtype=np.float32)


def _polygon(kind: str, centre: np.ndarray, radius: float, angle: float) -> np.ndarray:
    corners = 4 if kind == "square" else 3
    angles = angle + np.arange(corners) * 2 * math.pi / corners
    return (centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).round().astype(np.int32)


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One BGR uint8 image of `kind` with random colours, size, position, rotation and noise."""
    image = _background(rng, size)
    colour = _contrasting_colour(rng, image, min_contrast=rng.uniform(40, 100))
    radius = rng.uniform(0.18, 0.36) * size
    centre = rng.uniform(radius * 0.9, size - radius * 0.9, size=2)
    canvas = np.ascontiguousarray(image)
    if rng.random() < 0.3:  # distractor line across the image
        p1, p2 = rng.integers(0, size, size=(2, 2))
        cv2.line(canvas, tuple(int(v) for v in p1), tuple(int(v) for v in p2), _random_colour(rng).tolist(), 1)
    filled = rng.random() < 0.85
    thickness = -1 if filled else max(1, int(size / 32))
    if kind == "circle":
        cv2.circle(
            canvas, tuple(int(v) for v in centre.round()), int(round(radius)), colour.tolist(), thickness, cv2.LINE_AA
        )
    else:
        points = _polygon(kind, centre, radius * (1.15 if kind == "triangle" else 1.0), rng.uniform(0, 2 * math.pi))
        if filled:
            cv2.fillPoly(canvas, [points], colour.tolist(), cv2.LINE_AA)
        else:
            cv2.polylines(canvas, [points], True, colour.tolist(), thickness, cv2.LINE_AA)
    if rng.random() < 0.3:
        canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
    canvas = canvas + rng.normal(0.0, rng.uniform(2, 20), size=canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def make_shapes(
    out_dir: str | Path,
    n_per_class: int = 200,
    image_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``out_dir/<circle|square|triangle>/NNNN.png`` and return `out_dir`.

    Random colours, sizes, positions, rotations, backgrounds, outlines, blur and noise
    make it hard enough that a small model does not reach 100%.

    Examples:
        >>> root = make_shapes("data/shapes", n_per_class=100, image_size=64, seed=0)
    """
    if n_per_class < 1 or image_size < 16:
        raise ValueError(f"need n_per_class >= 1 and image_size >= 16, got {n_per_class} and {image_size}")
    root = Path(out_dir)
    rng = np.random.default_rng(seed)
    for kind in SHAPE_CLASSES:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(n_per_class):
            cv2.imwrite(str(folder / f"{index:04d}.png"), draw_shape(kind, image_size, rng))
    log.debug("wrote %d shape images to %s", n_per_class * len(SHAPE_CLASSES), root)
    return root


# -- detection -------------------------------------------------------------------------

DETECTION_FORMATS = ("yolo", "coco", "voc")


def _cluttered_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A gradient with low-contrast blobs and distractor strokes (lines and arcs): float32 BGR."""
    a, b = _random_colour(rng), _random_colour(rng)
    t = np.linspace(0.0, 1.0, width if rng.random() < 0.5 else height, dtype=np.float32)
    ramp = t[None, :, None] if len(t) == width else t[:, None, None]
    canvas = np.ascontiguousarray((a * (1 - ramp) + b * ramp) * np.ones((height, width, 3), np.float32))
    side = min(height, width)
    for _ in range(rng.integers(2, 7)):  # soft blobs a little off the background colour
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        long = rng.uniform(0.1, 0.35) * side
        axes = (int(long), int(long / rng.uniform(1.8, 3.5)))  # elongated: texture, not a circle
        shade = canvas[centre[1], centre[0]] + rng.normal(0, 14, 3)
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, shade.tolist(), -1, cv2.LINE_AA)
    for _ in range(rng.integers(1, 5)):  # strokes: edges that are not objects
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.6:
            p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, p1, p2, _random_colour(rng).tolist(), int(rng.integers(1, 3)), cv2.LINE_AA)
        else:
            radius = int(rng.uniform(0.1, 0.4) * side)
            start = float(rng.uniform(0, 360))
            cv2.ellipse(
                canvas,
                p1,
                (radius, radius),
                0,
                start,
                start + float(rng.uniform(40, 120)),
                _random_colour(rng).tolist(),
                int(rng.integers(1, 3)),
                cv2.LINE_AA,
            )
    return canvas


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area: how much of the smaller object another one may hide."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def _place_object(
    kind: str,
    height: int,
    width: int,
    rng: np.random.Generator,
    taken: list[np.ndarray],
    sizes: tuple[float, float] = (0.08, 0.6),
    upright: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Outline points and tight box of one object that overlaps the others only partly, or None. `sizes`: the box
    side's range as fractions of the image side; `upright`: squares level and triangles pointing up, within 10
    degrees, instead of any rotation."""
    side = min(height, width)
    level = {"square": math.pi / 4, "triangle": -math.pi / 2}.get(kind, 0.0)
    for _ in range(30):
        extent = rng.uniform(*sizes) * side  # the object's box side, 8% to 60% of the image side by default
        angle = rng.uniform(0, 2 * math.pi)
        if upright:
            angle = level + (angle / math.pi - 1) * math.radians(10)
        if kind == "circle":
            radius = extent / 2
            centre = rng.uniform([radius, radius], [width - radius, height - radius])
            angles = np.linspace(0, 2 * math.pi, 64, endpoint=False)
            points = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        else:
            corners = 4 if kind == "square" else 3
            angles = angle + np.arange(corners) * 2 * math.pi / corners
            unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
            span = (unit.max(axis=0) - unit.min(axis=0)).max()
            radius = extent / span
            low, high = -unit.min(axis=0) * radius, np.array([width, height]) - unit.max(axis=0) * radius
            if np.any(high <= low):
                continue
            points = rng.uniform(low, high) + radius * unit
        box = np.concatenate([points.min(axis=0), points.max(axis=0)])
        box = np.clip(box, 0, [width, height, width, height])
        if all(_overlap(box, other) < 0.25 for other in taken):  # overlaps stay partial: every object stays visible
            return points, box
    return None


def draw_detection_scene(
    height: int, width: int, rng: np.random.Generator, max_objects: int = 6
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One BGR scene with 0..max_objects shapes and their (class index, x0 y0 x1 y1 box) in pixels."""
    canvas = _cluttered_background(rng, height, width)
    objects: list[tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(0, max_objects + 1))):
        cls = int(rng.integers(0, len(SHAPE_CLASSES)))
        placed = _place_object(SHAPE_CLASSES[cls], height, width, rng, [box for _, box in objects])
        if placed is None:
            continue
        points, box = placed
        region = canvas[int(box[1]) : int(np.ceil(box[3])), int(box[0]) : int(np.ceil(box[2]))]
        colour = _contrasting_colour(rng, region if region.size else canvas, min_contrast=rng.uniform(45, 110))
        cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], colour.tolist(), cv2.LINE_AA, shift=4)
        objects.append((cls, box))
    if rng.random() < 0.3:
        canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
    canvas = canvas + rng.normal(0.0, rng.uniform(2, 14), size=canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8), objects


def make_shapes_detection(
    out_dir: str | Path,
    n_images: int = 600,
    image_size: int | tuple[int, int] = 128,
    seed: int = 0,
    format: str = "yolo",  # noqa: A002  (the word users know)
) -> Path:
    """Write a detection dataset of shape scenes (0 to 6 circles, squares, triangles each) and return `out_dir`.

    Objects take 8% to 60% of the image side, in any colour, on cluttered, noisy
    backgrounds with distractor strokes, overlapping only partly. `format` is the layout
    written: "yolo" (images/, labels/, data.yaml), "coco" (images/, annotations.json) or
    "voc" (JPEGImages/, Annotations/). `image_size` is a side or (height, width).

    Examples:
        >>> root = make_shapes_detection("data/shapes_det", n_images=600, image_size=128, seed=0)
        >>> train, val, test = edgekit.load_detection(root, image_size=128).split(seed=0)
    """
    if format not in DETECTION_FORMATS:
        raise ValueError(f"unknown detection format {format!r}; valid formats: {', '.join(DETECTION_FORMATS)}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if n_images < 1 or min(height, width) < 32:
        raise ValueError(f"need n_images >= 1 and an image side >= 32, got {n_images} and {image_size}")
    from edgekit.data.annotations import write_annotations

    rng = np.random.default_rng(seed)
    scenes = []
    for index in range(n_images):
        image, objects = draw_detection_scene(height, width, rng)
        scenes.append((f"{index:05d}.png", image, objects))
    write_annotations(Path(out_dir), scenes, SHAPE_CLASSES, format)
    log.debug("wrote %d detection scenes to %s (%s)", n_images, out_dir, format)
    return Path(out_dir)


# -- a video with objects on known paths (tracking and counting) ------------------------------


@dataclass(frozen=True)
class TrackingClip:
    """A generated video and its truth: every object's box on every frame, and the line it may cross."""

    path: Path
    classes: tuple[int, ...]  # per object (indices into SHAPE_CLASSES)
    boxes: np.ndarray  # (frames, objects, 4) x0 y0 x1 y1 in pixels
    count_line: tuple[float, float, float, float]  # x0, y0, x1, y1
    crossings: tuple[str | None, ...]  # per object: "in", "out" (the LineCounter's sides) or None

    @property
    def expected_counts(self) -> dict[str, int]:
        return {"in": self.crossings.count("in"), "out": self.crossings.count("out")}


def make_tracking_video(
    path: str | Path, frames: int = 48, size: tuple[int, int] = (144, 192), seed: int = 0, fps: float = 15.0
) -> TrackingClip:
    """Write a lossless video (FFV1 .avi) of three shapes moving in lanes over a fixed cluttered background.

    A circle crosses the vertical centre line left to right, a square right to left, a triangle
    moves right but stops short of it; frames carry fresh sensor noise, as a camera's do. The
    clip is the test bed for tracking (ids must stay stable) and line counting (exactly two
    crossings: one "in", one "out").

    Examples:
        >>> clip = make_tracking_video("clip.avi")
        >>> clip.expected_counts
        {'in': 1, 'out': 1}
    """
    height, width = size
    rng = np.random.default_rng(seed)
    background = _cluttered_background(rng, height, width)
    extent = 0.28 * height  # object side: lanes of a third of the height leave a gap between objects
    lanes = (height / 6, height / 2, 5 * height / 6)
    margin = extent / 2 + 2
    line_x = width / 2
    # (class, lane, x at the first frame, x at the last frame)
    paths = (
        (0, lanes[0], margin, width - margin),
        (1, lanes[1], width - margin, margin),
        (2, lanes[2], margin, line_x - extent),
    )
    colours = [_contrasting_colour(rng, background, 90.0) for _ in paths]
    angles = [float(rng.uniform(0, 2 * math.pi)) for _ in paths]
    boxes = np.zeros((frames, len(paths), 4), np.float32)
    path = Path(path).with_suffix(".avi")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    try:
        for f in range(frames):
            canvas = background.copy()
            t = f / max(frames - 1, 1)
            for i, (cls, y, x_start, x_end) in enumerate(paths):
                centre = np.array([x_start + (x_end - x_start) * t, y])
                points = _outline(SHAPE_CLASSES[cls], centre, extent, angles[i] + 0.5 * t)
                cv2.fillPoly(
                    canvas, [np.round(points * 16).astype(np.int32)], colours[i].tolist(), cv2.LINE_AA, shift=4
                )
                boxes[f, i] = np.concatenate([points.min(axis=0), points.max(axis=0)])
            noisy = canvas + rng.normal(0.0, 4.0, size=canvas.shape).astype(np.float32)
            writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    # the LineCounter's "in" is the right-hand side of the line walking from its first point to its
    # second: for this line drawn top to bottom, that is the left half of the frame
    crossings = tuple(
        None if (a - line_x) * (b - line_x) > 0 else ("in" if b < line_x else "out") for _, _, a, b in paths
    )
    return TrackingClip(path, tuple(p[0] for p in paths), boxes, (line_x, 0.0, line_x, float(height)), crossings)


def _outline(kind: str, centre: np.ndarray, extent: float, angle: float) -> np.ndarray:
    """Float outline points of a shape whose box side is about `extent`."""
    if kind == "circle":
        angles = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        return centre + extent / 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    corners = 4 if kind == "square" else 3
    angles = angle + np.arange(corners) * 2 * math.pi / corners
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    radius = extent / (unit.max(axis=0) - unit.min(axis=0)).max()
    return centre - (unit.max(axis=0) + unit.min(axis=0)) / 2 * radius + radius * unit


# -- scenes of objects with named points (keypoints) ------------------------------------------

KEYPOINT_CLASSES = ("triangle", "arrow", "cross")
KEYPOINT_NAMES = ("tip", "left", "right", "tail")  # left and right as seen facing along the object's tip
KEYPOINT_FLIP = (0, 2, 1, 3)  # a mirrored image swaps its objects' left and right
KEYPOINT_SKELETON = ((0, 1), (0, 2), (1, 3), (2, 3))
# each class's outline and its 4 points, in a unit frame facing +x (y down: "left" is -y); the right-hand side is
# shorter, so a mirrored object is told apart from a turned one only through left and right
_KEYPOINT_SHAPES = {
    "triangle": ([(1, 0), (-0.6, -0.8), (-0.6, 0.5)], [(1, 0), (-0.6, -0.8), (-0.6, 0.5), (-0.6, -0.15)]),
    "arrow": (
        [(1, 0), (0.1, -0.7), (0.1, -0.2), (-1, -0.2), (-1, 0.2), (0.1, 0.2), (0.1, 0.45)],
        [(1, 0), (0.1, -0.7), (0.1, 0.45), (-1, 0)],
    ),
    "cross": (
        [(1, -0.15), (1, 0.15), (-1, 0.15), (-1, -0.15), (-0.15, -0.15), (-0.15, -0.9), (0.15, -0.9), (0.15, -0.15)]
        + [(0.15, 0.15), (0.15, 0.55), (-0.15, 0.55), (-0.15, 0.15)],
        [(1, 0), (0, -0.9), (0, 0.55), (-1, 0)],
    ),
}


def draw_keypoint_scene(
    height: int, width: int, rng: np.random.Generator, max_objects: int = 3
) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
    """One BGR scene with 1..max_objects shapes and their (class, box, (4, 3) points x y visibility): some shapes
    mirrored, and now and then a patch of clutter over one point, which is then labelled hidden (visibility 1)."""
    canvas = _cluttered_background(rng, height, width)
    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(0, len(KEYPOINT_CLASSES)))
        outline, named = (np.asarray(v, np.float64) for v in _KEYPOINT_SHAPES[KEYPOINT_CLASSES[cls]])
        if rng.random() < 0.5:  # mirrored: the long side on the right
            outline, named = outline * [1, -1], (named * [1, -1])[list(KEYPOINT_FLIP)]
        # upright within 30 degrees, as people and faces mostly are: a flip keeps them upright and mirrors them
        angle = -math.pi / 2 + rng.uniform(-math.pi / 6, math.pi / 6)
        radius = rng.uniform(0.1, 0.3) * min(height, width)
        turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        outline, named = outline @ turn.T * radius, named @ turn.T * radius
        low, high = -outline.min(axis=0), np.array([width, height]) - outline.max(axis=0)
        centre = rng.uniform(low, high) if np.all(high > low) else None
        box = None if centre is None else np.concatenate([(outline + centre).min(0), (outline + centre).max(0)])
        if box is None or any(_overlap(box, other[1]) >= 0.1 for other in found):
            continue
        colour = _contrasting_colour(rng, canvas, min_contrast=rng.uniform(60, 120))
        cv2.fillPoly(canvas, [np.round((outline + centre) * 16).astype(np.int32)], colour.tolist(), cv2.LINE_AA, 4)
        points = np.concatenate([named + centre, np.full((4, 1), 2.0)], axis=1)
        if rng.random() < 0.25:  # a patch of background over one point: labelled but hidden
            hidden = int(rng.integers(0, 4))
            x, y = points[hidden, :2]
            cv2.circle(canvas, (int(x), int(y)), max(3, int(radius * 0.25)), _random_colour(rng).tolist(), -1)
            points[hidden, 2] = 1.0
        found.append((cls, box, points))
    canvas = canvas + rng.normal(0.0, rng.uniform(2, 10), size=canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8), found


def make_shapes_keypoints(
    out_dir: str | Path, n_images: int = 400, image_size: int | tuple[int, int] = 128, seed: int = 0
) -> Path:
    """Write a keypoint dataset of shape scenes (COCO keypoints: images/ and annotations.json) and return its JSON.

    Triangles, arrows and crosses, each with the points tip, left, right and tail, pointing up within 30 degrees;
    half of them mirrored (so a horizontal flip must swap left and right: the flip map is (0, 2, 1, 3)), some
    points hidden under clutter.

    Examples:
        >>> annotations = edgekit.datasets.make_shapes_keypoints("data/shapes_kp", n_images=400)
        >>> train, val, test = edgekit.load_keypoints(annotations, image_size=128).split(seed=0)
    """
    import json

    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if n_images < 1 or min(height, width) < 32:
        raise ValueError(f"need n_images >= 1 and an image side >= 32, got {n_images} and {image_size}")
    rng, root = np.random.default_rng(seed), Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(n_images):
        image, objects = draw_keypoint_scene(height, width, rng)
        name = f"{index:05d}.png"
        cv2.imwrite(str(root / "images" / name), image)
        images.append({"id": index, "file_name": name, "height": height, "width": width})
        for cls, box, points in objects:
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index,
                    "category_id": cls + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "num_keypoints": int((points[:, 2] > 0).sum()),
                    "keypoints": [round(float(v), 2) for v in points.reshape(-1)],
                }
            )
    skeleton = [[a + 1, b + 1] for a, b in KEYPOINT_SKELETON]  # COCO counts points from 1
    flip = list(KEYPOINT_FLIP)  # not COCO's: edgekit's (and Ultralytics') flip map, which load_keypoints reads
    categories = [
        {"id": i + 1, "name": name, "keypoints": list(KEYPOINT_NAMES), "skeleton": skeleton, "flip_idx": flip}
        for i, name in enumerate(KEYPOINT_CLASSES)
    ]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path
