"""pycocotools' COCOeval on edgekit's per-image arrays: the COCO records of truth and predictions (boxes, and
keypoints where given) and one quiet evaluation, shared by detection's mAP and keypoints' OKS mAP."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Sequence

import numpy as np

from runtimes.deps import require

log = logging.getLogger(__name__)


def _xywh(box: np.ndarray) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def coco_records(
    truth_boxes: Sequence[np.ndarray],
    truth_classes: Sequence[np.ndarray],
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    pred_classes: Sequence[np.ndarray],
    truth_points: Sequence[np.ndarray] | None = None,
    pred_points: Sequence[np.ndarray] | None = None,
) -> tuple[list[dict], list[dict], list[dict]]:
    """COCO's images, ground-truth annotations and results from per-image boxes x0 y0 x1 y1 (category ids from 1);
    with points, truth (n, K, 3) x y visibility and predictions (m, K, 2) as COCO's keypoint triples."""
    images: list[dict] = []
    annotations: list[dict] = []
    results: list[dict] = []
    for image_id in range(1, len(truth_boxes) + 1):
        i = image_id - 1
        images.append({"id": image_id})
        for n, (box, cls) in enumerate(
            zip(np.asarray(truth_boxes[i]).reshape(-1, 4), np.asarray(truth_classes[i]).reshape(-1))
        ):
            xywh = _xywh(box)
            entry: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(cls) + 1,
                "bbox": xywh,
                "area": xywh[2] * xywh[3],
                "iscrowd": 0,
            }
            if truth_points is not None:
                points = truth_points[i][n]
                entry["keypoints"] = [float(v) for v in points.reshape(-1)]
                entry["num_keypoints"] = int((points[:, 2] > 0).sum())
            annotations.append(entry)
        boxes, scores = np.asarray(pred_boxes[i]).reshape(-1, 4), np.asarray(pred_scores[i]).reshape(-1)
        for m, (box, score, cls) in enumerate(zip(boxes, scores, np.asarray(pred_classes[i]).reshape(-1))):
            result: dict[str, Any] = {
                "image_id": image_id,
                "category_id": int(cls) + 1,
                "score": float(score),
                "bbox": _xywh(box),
            }
            if pred_points is not None:
                xy = np.asarray(pred_points[i][m], np.float64)
                result["keypoints"] = [
                    float(v) for v in np.concatenate([xy, np.ones((len(xy), 1))], axis=1).reshape(-1)
                ]
            results.append(result)
    return images, annotations, results


def evaluated(
    images: list[dict],
    annotations: list[dict],
    results: list[dict],
    labels: Sequence[str],
    kind: str,
    sigmas: np.ndarray | None = None,
) -> Any:
    """COCOeval of `kind` ("bbox" or "keypoints", with each point's OKS sigma) evaluated, accumulated and summarized,
    its printing kept in the debug log; None when there is no result to rank."""
    require("pycocotools", extra="train")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return None
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(labels)]
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):  # COCO prints its progress; keep it in the debug log
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), kind)
        if sigmas is not None:
            evaluation.params.kpt_oks_sigmas = sigmas
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    log.debug("pycocotools:\n%s", chatter.getvalue())
    return evaluation
