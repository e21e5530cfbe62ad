"""Keypoint metrics: OKS mAP by pycocotools' keypoint evaluation (with each point's sigma), PCK@0.1 and the mean
point error in pixels, each prediction matched to a ground-truth object of its class by box IoU."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgekit.metrics.coco_eval import coco_records, evaluated
from runtimes.boxes import box_iou

log = logging.getLogger(__name__)

DEFAULT_SIGMA = 0.05  # a point's OKS sigma when the contract gives none (COCO's range is 0.025 to 0.107)
COCO_PERSON_SIGMAS = {  # COCO's per-point sigmas for its 17 person keypoints (pycocotools' COCOeval defaults)
    "nose": 0.026,
    "left_eye": 0.025,
    "right_eye": 0.025,
    "left_ear": 0.035,
    "right_ear": 0.035,
    "left_shoulder": 0.079,
    "right_shoulder": 0.079,
    "left_elbow": 0.072,
    "right_elbow": 0.072,
    "left_wrist": 0.062,
    "right_wrist": 0.062,
    "left_hip": 0.107,
    "right_hip": 0.107,
    "left_knee": 0.087,
    "right_knee": 0.087,
    "left_ankle": 0.089,
    "right_ankle": 0.089,
}


def default_sigmas(names: Sequence[str]) -> tuple[float, ...]:
    """Each point's OKS sigma: COCO's for its person keypoints' names, `DEFAULT_SIGMA` for any other point."""
    return tuple(COCO_PERSON_SIGMAS.get(name, DEFAULT_SIGMA) for name in names)


@dataclass(frozen=True)
class KeypointMetrics:
    """How well predicted points match the truth.

    Attributes:
        oks_map: COCO's keypoint mAP over OKS thresholds 0.5:0.95.
        oks_map50: The same at OKS 0.5.
        pck: The share of labelled points within 0.1 of their object's longer box side (PCK@0.1), over objects
            matched by box IoU >= 0.5.
        mean_error_px: The mean distance of those points from the truth, in source pixels.
        objects: How many ground-truth objects there were.
    """

    oks_map: float
    oks_map50: float
    pck: float
    mean_error_px: float
    objects: int


def keypoint_metrics(
    truth_boxes: Sequence[np.ndarray],
    truth_classes: Sequence[np.ndarray],
    truth_points: Sequence[np.ndarray],
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    pred_classes: Sequence[np.ndarray],
    pred_points: Sequence[np.ndarray],
    labels: Sequence[str],
    sigmas: Sequence[float] = (),
) -> KeypointMetrics:
    """Per image: truth boxes (n, 4) x0 y0 x1 y1, classes (n,) and points (n, K, 3) x y visibility; predictions
    likewise with scores and points (m, K, 2), all in source pixels.

    Examples:
        >>> m = keypoint_metrics([boxes], [classes], [points], [boxes], [scores], [classes], [xy], ["arrow"])
        >>> round(m.oks_map, 3)
    """
    count = truth_points[0].shape[1] if len(truth_points) and truth_points[0].ndim == 3 else 0
    sigmas = np.asarray(sigmas or [DEFAULT_SIGMA] * count, np.float64)
    oks_map, oks_map50 = _oks_map(
        truth_boxes, truth_classes, truth_points, pred_boxes, pred_scores, pred_classes, pred_points, labels, sigmas
    )
    pck, error = _pck(truth_boxes, truth_classes, truth_points, pred_boxes, pred_classes, pred_points)
    return KeypointMetrics(oks_map, oks_map50, pck, error, int(sum(len(b) for b in truth_boxes)))


def _oks_map(
    truth_boxes: Sequence[np.ndarray],
    truth_classes: Sequence[np.ndarray],
    truth_points: Sequence[np.ndarray],
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    pred_classes: Sequence[np.ndarray],
    pred_points: Sequence[np.ndarray],
    labels: Sequence[str],
    sigmas: np.ndarray,
) -> tuple[float, float]:
    images, annotations, results = coco_records(
        truth_boxes, truth_classes, pred_boxes, pred_scores, pred_classes, truth_points, pred_points
    )
    evaluation = evaluated(images, annotations, results, labels, "keypoints", sigmas) if annotations else None
    if evaluation is None:
        return 0.0, 0.0
    return max(0.0, float(evaluation.stats[0])), max(0.0, float(evaluation.stats[1]))


def _pck(
    truth_boxes: Sequence[np.ndarray],
    truth_classes: Sequence[np.ndarray],
    truth_points: Sequence[np.ndarray],
    pred_boxes: Sequence[np.ndarray],
    pred_classes: Sequence[np.ndarray],
    pred_points: Sequence[np.ndarray],
) -> tuple[float, float]:
    """(PCK@0.1, mean point error in px) over labelled points of truth objects matched by box IoU >= 0.5."""
    hits, distances = [], []
    for boxes, classes, points, p_boxes, p_classes, p_points in zip(
        truth_boxes, truth_classes, truth_points, pred_boxes, pred_classes, pred_points
    ):
        if not len(boxes):
            continue
        ious = box_iou(np.asarray(boxes, np.float32), np.asarray(p_boxes, np.float32).reshape(-1, 4))
        ious = ious * (np.asarray(classes)[:, None] == np.asarray(p_classes)[None, :])
        used: set[int] = set()
        for t in np.argsort(-ious.max(axis=1) if ious.size else np.zeros(len(boxes))):
            labelled = points[t, :, 2] > 0
            candidates = [j for j in np.argsort(-ious[t]) if ious[t, j] >= 0.5 and j not in used] if ious.size else []
            if not candidates:
                hits += [False] * int(labelled.sum())  # a missed object misses its points
                continue
            used.add(candidates[0])
            gap = np.linalg.norm(p_points[candidates[0]][labelled, :2] - points[t, labelled, :2], axis=1)
            side = float(max(boxes[t][2] - boxes[t][0], boxes[t][3] - boxes[t][1]))
            hits += list(gap <= 0.1 * side)
            distances += list(gap)
    return (float(np.mean(hits)) if hits else 0.0, float(np.mean(distances)) if distances else 0.0)


@dataclass(frozen=True)
class KeypointAgreement:
    """A converted file's objects and points against the reference's, both after the same thresholds and NMS.

    Attributes:
        agreement: The share of the reference's objects the artifact found (same class, box IoU >= 0.9).
        reverse: The share of the artifact's objects the reference found.
        max_point_error_px: The largest distance between a matched object's points, in source pixels.
        points_within_1px: The share of the reference's objects found with every point within 1 pixel.
        reference_count: The reference's objects.
        artifact_count: The artifact's objects.
    """

    agreement: float
    reverse: float
    max_point_error_px: float | None
    points_within_1px: float
    reference_count: int
    artifact_count: int


def keypoint_agreement(reference: Sequence[tuple], artifact: Sequence[tuple], iou: float = 0.9) -> KeypointAgreement:
    """Per image (boxes, classes, points (m, K, 2)) of the reference and the artifact."""
    from edgekit.metrics.detection import matched_pairs

    matched = close = total_ref = total_art = 0
    worst: float | None = None
    for (rb, rc, rp), (ab, ac, ap) in zip(reference, artifact):
        pairs = matched_pairs(rb, rc, ab, ac, iou)
        matched, total_ref, total_art = matched + len(pairs), total_ref + len(rb), total_art + len(ab)
        for i, j in pairs:
            error = float(np.max(np.hypot(*(rp[i] - ap[j]).T))) if rp.shape[1] else 0.0
            worst = max(worst or 0.0, error)
            close += error <= 1.0
    return KeypointAgreement(
        matched / total_ref if total_ref else 1.0,
        matched / total_art if total_art else 1.0,
        worst,
        close / total_ref if total_ref else 1.0,
        total_ref,
        total_art,
    )
