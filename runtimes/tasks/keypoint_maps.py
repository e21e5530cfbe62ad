"""A keypoint model's raw maps decoded in NumPy: the keypoints task's `maps` layout (edgekit's keypoint
detector). The detector's peaks and boxes (`runtimes.tasks.detection_maps`), and at each peak cell the object's
points (offsets from the cell's centre) and each point's visibility. Every format's file holds the maps alone, so
the same decoding serves TFLite, ONNX, CoreML and the Keras model on the host."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from runtimes.tasks.detection_maps import boxes_at, decode_points, peak_cells


@dataclass(frozen=True)
class DecodedKeypoints:
    """A batch's candidates, best first per image, before thresholds and NMS; all coordinates normalized to the
    model input.

    Attributes:
        boxes: (N, M, 4) x0 y0 x1 y1.
        scores: (N, M) the best class's heat.
        classes: (N, M) class indices.
        points: (N, M, K, 2) x y.
        point_scores: (N, M, K) each point's visibility, 0..1.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    points: np.ndarray
    point_scores: np.ndarray


def decode_keypoint_maps(
    heat: np.ndarray, sides: np.ndarray, offsets: np.ndarray, visibility: np.ndarray, max_detections: int
) -> DecodedKeypoints:
    """(N, Gh, Gw, C) heat, (N, Gh, Gw, 4) box sides, (N, Gh, Gw, 2K) point offsets and (N, Gh, Gw, K)
    visibilities -> the top `max_detections` peak cells' objects."""
    n, gh, gw, count = visibility.shape
    cells, scores, classes = peak_cells(heat, max_detections)
    seen = np.take_along_axis(visibility.reshape(n, gh * gw, count), cells[..., None], axis=1)
    return DecodedKeypoints(
        boxes_at(sides, cells),
        scores.astype(np.float32),
        classes.astype(np.int64),
        decode_points(offsets, cells),
        seen.astype(np.float32),
    )


def per_image(batch: DecodedKeypoints) -> list[DecodedKeypoints]:
    """A batch's candidates, one `DecodedKeypoints` per image."""
    parts = [getattr(batch, f.name) for f in fields(batch)]
    return [DecodedKeypoints(*(part[i] for part in parts)) for i in range(len(batch.scores))]
