"""A segmentation model's output mapped back onto the source image: the class of every source pixel.

Each source pixel's centre goes through the contract's resize (`runtimes.preprocess.box_mapping`) into the
output's cells; per-class scores are interpolated bilinearly there (the border repeated), and the pixel takes the
best class. Bilinear interpolation is a weighted mean of four cells, so where those four cells have the same best
class the pixel has it too: that class is read from the cells' classes (one gather), and only the pixels between
cells of different classes, along the edges, interpolate their scores. The result is exactly bilinear-then-argmax
at a fraction of its cost on a camera frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtimes.contract import Preprocessing
from runtimes.preprocess import box_mapping


def _taps(count: int, scale: float, first: float, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """For `count` output positions at `first + i * scale` cells: the lower cell's index into the grid padded by one
    cell on each side (the border repeated), and the upper one's weight."""
    position = first + scale * np.arange(count, dtype=np.float64)
    lower = np.floor(position)
    index = np.clip(lower + 1, 0, cells).astype(np.intp)  # +1: the padding; clipped: beyond it, the border again
    return index, (position - lower).astype(np.float32)


def _affine(size: tuple[int, int], spec: Preprocessing, grid: tuple[int, int]) -> tuple[float, float, float, float]:
    """(scale_x, first_x, scale_y, first_y): source pixel i's centre is at first + i * scale output cells."""
    (in_h, in_w), (h, w) = spec.input_size, grid
    mapping = box_mapping(size, spec)
    sx, sy = mapping.scale_x * w / in_w, mapping.scale_y * h / in_h
    bx = (0.5 * mapping.scale_x + mapping.offset_x) * w / in_w - 0.5
    by = (0.5 * mapping.scale_y + mapping.offset_y) * h / in_h - 0.5
    return sx, bx, sy, by


def source_mask(output: np.ndarray, size: tuple[int, int], spec: Preprocessing, kind: str = "scores") -> np.ndarray:
    """One image's float (h, w, classes) scores, or (h, w) integer classes (`kind` "category_mask"), at the model
    input (or a fraction of it) -> the (height, width) class mask of the source image `spec`'s resize made it from:
    bilinear over scores then each pixel's best class (module docstring), nearest over classes."""
    height, width = size
    sx, bx, sy, by = _affine(size, spec, output.shape[:2])
    if kind == "category_mask":
        classes = np.ascontiguousarray(output, np.uint16 if output.dtype.itemsize > 1 else np.uint8)
        warp = np.array([[sx, 0.0, bx], [0.0, sy, by]], np.float64)
        flags = cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST
        return cv2.warpAffine(classes, warp, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    h, w, count = output.shape
    rows, weight_y = _taps(height, sy, by, h)
    columns, weight_x = _taps(width, sx, bx, w)
    scores = np.pad(output, ((1, 1), (1, 1), (0, 0)), mode="edge")
    best = scores.argmax(axis=-1).astype(np.uint8 if count <= 256 else np.uint16)
    # a 2x2 block of cells whose classes agree, named by its top-left cell
    agree = (best[:-1, :-1] == best[1:, :-1]) & (best[:-1, :-1] == best[:-1, 1:]) & (best[:-1, :-1] == best[1:, 1:])
    mask = best.take(rows, 0).take(columns, 1)
    edges = np.flatnonzero(~agree.take(rows, 0).take(columns, 1).reshape(-1))
    if len(edges):
        edge_y, edge_x = np.divmod(edges, width)
        stride = scores.shape[1]
        cells, flat = rows[edge_y] * stride + columns[edge_x], scores.reshape(-1, count)
        wy, wx = weight_y[edge_y, None], weight_x[edge_x, None]
        top_left, top_right = flat.take(cells, 0), flat.take(cells + 1, 0)
        bottom_left, bottom_right = flat.take(cells + stride, 0), flat.take(cells + stride + 1, 0)
        top = top_left + (top_right - top_left) * wx
        bottom = bottom_left + (bottom_right - bottom_left) * wx
        mask.reshape(-1)[edges] = (top + (bottom - top) * wy).argmax(axis=-1)
    return mask
