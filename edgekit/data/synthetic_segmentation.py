"""Generated segmentation scenes: overlapping shapes on textured backgrounds, with their exact class masks."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edgekit.data.synthetic import SHAPE_CLASSES, _cluttered_background, _contrasting_colour, _place_object

log = logging.getLogger(__name__)

SEGMENTATION_CLASSES = ("background", *SHAPE_CLASSES)  # mask values 0..3


def draw_segmentation_scene(
    height: int, width: int, rng: np.random.Generator, max_objects: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """One BGR scene of 1..max_objects upright shapes, later ones drawn over earlier ones, and its (height, width) uint8
    mask of class ids (0 background, then `SHAPE_CLASSES` from 1). The mask is drawn with the same sub-pixel
    polygons as the image, without anti-aliasing: a pixel is the shape's when its centre is inside."""
    canvas = _cluttered_background(rng, height, width)
    mask = np.zeros((height, width), np.uint8)
    boxes: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(0, len(SHAPE_CLASSES)))
        # upright, 12% to 50% of the side, partly over the last one: a shape's class shows in its outline
        placed = _place_object(SHAPE_CLASSES[cls], height, width, rng, boxes[-1:], sizes=(0.12, 0.5), upright=True)
        if placed is None:
            continue
        points, box = placed
        region = canvas[int(box[1]) : int(np.ceil(box[3])), int(box[0]) : int(np.ceil(box[2]))]
        colour = _contrasting_colour(rng, region if region.size else canvas, min_contrast=rng.uniform(45, 110))
        polygon = [np.round((points - 0.5) * 16).astype(np.int32)]  # pixel centres: pixel i spans [i, i + 1]
        cv2.fillPoly(canvas, polygon, colour.tolist(), cv2.LINE_AA, shift=4)
        cv2.fillPoly(mask, polygon, cls + 1, cv2.LINE_8, shift=4)
        boxes.append(box)
    if rng.random() < 0.3:
        canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
    canvas = canvas + rng.normal(0.0, rng.uniform(2, 12), size=canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8), mask


def make_shapes_segmentation(
    out_dir: str | Path, n_images: int = 400, image_size: int | tuple[int, int] = 128, seed: int = 0
) -> Path:
    """Write a segmentation dataset of shape scenes and return `out_dir`: ``images/NNNNN.png``, their masks as
    ``masks/NNNNN.png`` (one class id per pixel: 0 background, 1 circle, 2 square, 3 triangle) and
    ``labels.txt`` (one class name per line, in id order). `image_size` is a side or (height, width).

    Examples:
        >>> root = edgekit.datasets.make_shapes_segmentation("data/shapes_seg", n_images=400, image_size=128)
        >>> train, val, test = edgekit.load_segmentation(root, image_size=128).split(seed=0)
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if n_images < 1 or min(height, width) < 32:
        raise ValueError(f"need n_images >= 1 and an image side >= 32, got {n_images} and {image_size}")
    root = Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(n_images):
        image, mask = draw_segmentation_scene(height, width, rng)
        cv2.imwrite(str(root / "images" / f"{index:05d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{index:05d}.png"), mask)
    (root / "labels.txt").write_text("\n".join(SEGMENTATION_CLASSES) + "\n")
    log.debug("wrote %d segmentation scenes to %s", n_images, root)
    return root
