"""Boxes as numbers: IoU, greedy NMS (class-aware or agnostic), the score threshold and the cap.

The one NumPy implementation every detector layout shares after its own decoding (runtimes.tasks.detection),
the COCO evaluator and the tracker use. Boxes are (N, 4) x0 y0 x1 y1 in any one coordinate system.
"""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in (N, 4) `a` with every box in (M, 4) `b` (xyxy).

    Plain ufuncs only: np.clip and np.prod cost several times more per call on a few boxes.
    """
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, 0)
    inter = wh[..., 0] * wh[..., 1]
    side_a, side_b = np.maximum(a[:, 2:] - a[:, :2], 0), np.maximum(b[:, 2:] - b[:, :2], 0)
    area_a, area_b = side_a[:, 0] * side_a[:, 1], side_b[:, 0] * side_b[:, 1]
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float, agnostic: bool = False
) -> np.ndarray:
    """Indices kept by greedy NMS, best score first (ties keep the earlier box): class-aware, or across classes
    when `agnostic`."""
    order = np.argsort(-scores, kind="stable")
    if len(order) < 2:
        return order.astype(np.int64)
    # who suppresses whom, worked out at once; the greedy pass then costs one row per kept box
    suppresses = box_iou(boxes, boxes) > iou_threshold
    if not agnostic:
        suppresses &= classes[:, None] == classes[None, :]
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= suppresses[i]
    return np.asarray(keep, np.int64)


def passes(score: float, threshold: float) -> bool:
    """The one score rule: a result counts when its score is at or above the threshold."""
    return not score < threshold


def above_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the scores that pass `threshold` (the same rule as `passes`). NaN is never below a threshold,
    so a damaged score is kept here and refused by its reader rather than silently dropped."""
    return np.flatnonzero(~(scores < threshold))


def filter_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Threshold, NMS and cap one image's candidates (the part of decoding every format shares).

    Candidates come best first from every layout, and most frames have a few objects: the
    threshold goes first, and a single survivor skips NMS (it has nothing to suppress).
    """
    scores = np.asarray(scores, np.float32).reshape(-1)
    return suppress(boxes, scores, classes, above_threshold(scores, score_threshold), iou_threshold, max_detections)


def suppress(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    above: np.ndarray,
    iou_threshold: float,
    max_detections: int,
    agnostic: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NMS and the cap over the candidates `above` the score threshold (indices into one image's flat outputs)."""
    scores = np.asarray(scores, np.float32).reshape(-1)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes, np.int64).reshape(-1)
    if len(above) > 1:
        above = above[nms(boxes[above], scores[above], classes[above], iou_threshold, agnostic)]
    keep = above[:max_detections]
    return boxes[keep], scores[keep], classes[keep]
