"""A detector's raw maps decoded in NumPy: the `maps` layout, whose file holds no float operator (accelerators run
all of it) and leaves peaks, top-k and boxes to the device's CPU. The same arithmetic as the in-graph decoding
that the `edgekit` layout's files carry."""

from __future__ import annotations

import numpy as np

STRIDE = 4  # input pixels per cell of edgekit's detectors' maps


def peak_cells(heat: np.ndarray, max_detections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, Gh, Gw, C) heat -> the top-k 3x3 peak cells (N, K) as flat indices, their scores and classes (the best
    class per cell; ties to the lower cell index)."""
    n, gh, gw, classes_count = heat.shape
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    pooled = padded[:, 0:gh, 0:gw]
    for dy in range(3):
        for dx in range(3):
            pooled = np.maximum(pooled, padded[:, dy : dy + gh, dx : dx + gw])
    peaks = np.where(heat == pooled, heat, 0.0).reshape(n, gh * gw, classes_count)
    best, best_class = peaks.max(axis=-1), peaks.argmax(axis=-1)
    cells = np.argsort(-best, axis=1, kind="stable")[:, : min(max_detections, gh * gw)]
    return cells, np.take_along_axis(best, cells, axis=1), np.take_along_axis(best_class, cells, axis=1)


def decode_points(offsets: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(N, Gh, Gw, 2K) point offsets (x, y per point, in cells from the cell's centre) at the chosen (N, K') cells
    -> (N, K', K, 2) points normalized to the input size."""
    n, gh, gw, pairs = offsets.shape
    chosen = np.take_along_axis(offsets.reshape(n, gh * gw, pairs), cells[..., None], axis=1)
    cy, cx = np.divmod(cells, gw)
    centres = np.stack([cx, cy], axis=-1).astype(np.float32)[:, :, None, :] + 0.5  # (N, K', 1, 2), in cells
    points = centres + chosen.reshape(n, cells.shape[1], pairs // 2, 2)
    return (points / np.array([gw, gh], np.float32)).astype(np.float32)


def boxes_at(sides: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(N, Gh, Gw, 4) box sides (input pixels from the cell's centre) at the chosen (N, K) flat cells -> boxes
    (N, K, 4) x0 y0 x1 y1 normalized to the input size (grid x stride), clipped to [0, 1]."""
    n, gh, gw, _ = sides.shape
    chosen = np.take_along_axis(sides.reshape(n, gh * gw, 4), cells[..., None], axis=1)
    cy, cx = np.divmod(cells, gw)
    cells_xyxy = np.stack([cx, cy, cx, cy], axis=-1).astype(np.float32) + 0.5  # cell centres, in cells
    size = np.array([gw, gh, gw, gh], np.float32)
    boxes = (cells_xyxy / size) + chosen * np.array([-1, -1, 1, 1], np.float32) / (size * STRIDE)
    return np.clip(boxes, 0.0, 1.0).astype(np.float32)


def decode_maps(heat: np.ndarray, sides: np.ndarray, max_detections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, Gh, Gw, C) heat and (N, Gh, Gw, 4) box sides -> boxes (N, K, 4), scores (N, K), classes (N, K).

    3x3 peaks (a cell equal to its neighbourhood's maximum), the best class per cell, the top-k cells (ties to
    the lower cell index), boxes from each cell's centre and its four sides in input pixels, normalized to the
    input size (grid x stride) and clipped to [0, 1].
    """
    cells, scores, classes = peak_cells(heat, max_detections)
    return boxes_at(sides, cells), scores.astype(np.float32), classes.astype(np.int64)
