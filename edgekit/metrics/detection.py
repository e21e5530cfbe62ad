"""COCO-style detection metrics, computed by pycocotools (the reference implementation), and
agreement between two detectors' outputs (an artifact and the Keras model it came from)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from edgekit.metrics.coco_eval import coco_records, evaluated
from runtimes.boxes import box_iou, filter_detections
from runtimes.heads.detection import DetectionHead

EVAL_SCORE_THRESHOLD = 0.01  # mAP ranks every candidate, as COCO does

log = logging.getLogger(__name__)

Boxes = Sequence[np.ndarray]  # per image (n, 4) xyxy pixels


@dataclass(frozen=True)
class DetectionMetrics:
    map: float  # mAP@[.5:.95], COCO's primary metric
    map50: float
    map75: float
    per_class: dict[str, float]  # AP@[.5:.95] per class (-1 where the class has no ground truth)
    per_class50: dict[str, float]
    images: int
    objects: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coco_map(
    truth_boxes: Boxes,
    truth_classes: Sequence[np.ndarray],
    pred_boxes: Boxes,
    pred_scores: Sequence[np.ndarray],
    pred_classes: Sequence[np.ndarray],
    labels: Sequence[str],
) -> DetectionMetrics:
    """mAP@[.5:.95], mAP@.5 and mAP@.75 with per-class AP, by pycocotools' COCOeval (bbox, 100 detections).

    Examples:
        >>> m = coco_map([gt], [gt_cls], [boxes], [scores], [classes], ["circle", "square"])
        >>> round(m.map50, 3)
    """
    images, annotations, results = coco_records(truth_boxes, truth_classes, pred_boxes, pred_scores, pred_classes)
    if not annotations and not results:
        return DetectionMetrics(0.0, 0.0, 0.0, {n: -1.0 for n in labels}, {n: -1.0 for n in labels}, len(images), 0)
    evaluation = evaluated(images, annotations, results, labels, "bbox")
    if evaluation is None:
        return DetectionMetrics(
            0.0, 0.0, 0.0, {n: 0.0 for n in labels}, {n: 0.0 for n in labels}, len(images), len(annotations)
        )
    precision = evaluation.eval["precision"]  # [iou, recall, class, area, max_dets]

    def class_ap(cls: int, iou: slice) -> float:
        values = precision[iou, :, cls, 0, -1]
        values = values[values > -1]
        return float(values.mean()) if values.size else -1.0

    stats = evaluation.stats
    return DetectionMetrics(
        map=max(0.0, float(stats[0])),
        map50=max(0.0, float(stats[1])),
        map75=max(0.0, float(stats[2])),
        per_class={name: class_ap(i, slice(None)) for i, name in enumerate(labels)},
        per_class50={name: class_ap(i, slice(0, 1)) for i, name in enumerate(labels)},
        images=len(images),
        objects=len(annotations),
    )


@dataclass(frozen=True)
class DetectionAgreement:
    """How far an artifact's detections are from the reference's on the same images."""

    matched: float  # share of reference detections the artifact has (same class, IoU >= threshold)
    reverse: float  # share of the artifact's detections the reference has
    max_box_error_px: float | None  # largest coordinate difference over matched pairs, source pixels; None: no pair
    reference_count: int
    artifact_count: int
    within_1px: float = 1.0  # share of reference detections matched with every box side within 1 source pixel

    @property
    def agreement(self) -> float:
        return min(self.matched, self.reverse)


def matched_pairs(
    a_boxes: np.ndarray, a_classes: np.ndarray, b_boxes: np.ndarray, b_classes: np.ndarray, iou: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (i in a, j in b) of the same class with IoU >= `iou`, best IoU first."""
    if not len(a_boxes) or not len(b_boxes):
        return []
    ious = box_iou(a_boxes, b_boxes) * (a_classes[:, None] == b_classes[None, :])
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-ious, axis=None, kind="stable"):
        i, j = divmod(int(flat), ious.shape[1])
        if ious[i, j] < iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


def detection_agreement(
    reference: Sequence[tuple[np.ndarray, np.ndarray]],
    artifact: Sequence[tuple[np.ndarray, np.ndarray]],
    iou: float = 0.9,
) -> DetectionAgreement:
    """Per image (boxes, classes) of the reference and the artifact, both after the same thresholds and NMS."""
    matched = total_ref = total_art = close = 0
    worst: float | None = None
    for (rb, rc), (ab, ac) in zip(reference, artifact):
        pairs = matched_pairs(rb, rc, ab, ac, iou)
        matched += len(pairs)
        total_ref += len(rb)
        total_art += len(ab)
        for i, j in pairs:
            error = float(np.max(np.abs(rb[i] - ab[j])))
            worst = max(worst or 0.0, error)
            close += error <= 1.0
    return DetectionAgreement(
        matched / total_ref if total_ref else 1.0,
        matched / total_art if total_art else 1.0,
        worst,
        total_ref,
        total_art,
        close / total_ref if total_ref else 1.0,
    )


Found = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per image: source boxes, scores, classes


def source_detections(
    dataset: Any,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    head: DetectionHead,
    score_threshold: float,
) -> Found:
    """Per image: thresholded, NMS-ed detections with boxes mapped from normalized input to source pixels.

    The same steps as `Model.predict` (runtimes.tasks.detection), on a batch of outputs.
    """
    input_size = dataset.geometry.input_size
    found = []
    for i in range(len(dataset)):
        b, s, c = filter_detections(
            boxes[i], scores[i], classes[i], score_threshold, head.iou_threshold, head.max_detections
        )
        size = tuple(dataset.source_sizes[i])
        found.append((dataset.mapping(i).normalized_to_source(input_size, size)(b.reshape(-1, 4)), s, c))
    return found


def map_of(dataset: Any, found: Found) -> DetectionMetrics:
    """COCO mAP of per-image (source boxes, scores, classes) against the dataset's boxes."""
    return coco_map(
        dataset.boxes,
        dataset.classes,
        [f[0] for f in found],
        [f[1] for f in found],
        [f[2] for f in found],
        dataset.labels,
    )
