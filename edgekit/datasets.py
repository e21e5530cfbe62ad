"""The embedded default dataset: coloured shapes drawn on the fly, no download needed."""

from __future__ import annotations

import logging
import math
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
        cv2.circle(canvas, tuple(int(v) for v in centre.round()), int(round(radius)), colour.tolist(), thickness, cv2.LINE_AA)
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

    Example:
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
