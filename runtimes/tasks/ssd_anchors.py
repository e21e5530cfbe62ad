"""SSD-anchor detectors with keypoints (MediaPipe's BlazeFace, palm and pose detectors), decoded in NumPy.

The anchors are MediaPipe's SsdAnchorsCalculator's, from the same options; the raw boxes and keypoints are read as
its TensorsToDetectionsCalculator reads them (offsets from each anchor's centre, scaled by the input size), and the
weighted non-maximum suppression is its NonMaxSuppressionCalculator's WEIGHTED algorithm: each cluster of boxes
overlapping the best one is averaged, boxes and keypoints weighted by score, and keeps the best one's score.
"""

from __future__ import annotations

import math

import numpy as np

from runtimes.boxes import box_iou
from runtimes.heads.ssd_options import AnchorOptions, SsdDecoding


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    return (min_scale + max_scale) * 0.5 if count == 1 else min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(options: AnchorOptions) -> np.ndarray:
    """(N, 4) anchors as x_centre, y_centre, width, height, normalized: SsdAnchorsCalculator's, in its order
    (layers of one stride merged, cells row by row, the anchors of a cell together)."""
    strides, count = options.strides, options.num_layers or len(options.strides)
    anchors: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < count:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _scale(options.min_scale, options.max_scale, last, len(strides))
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += list(options.aspect_ratios)
                scales += [scale] * len(options.aspect_ratios)
                if options.interpolated_scale_aspect_ratio > 0:
                    following = (
                        1.0
                        if last == len(strides) - 1
                        else _scale(options.min_scale, options.max_scale, last + 1, len(strides))
                    )
                    scales.append(math.sqrt(scale * following))
                    ratios.append(options.interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios)]  # (width, height)
        height = math.ceil(options.input_size_height / strides[layer])
        width = math.ceil(options.input_size_width / strides[layer])
        for y in range(height):
            for x in range(width):
                centre = ((x + options.anchor_offset_x) / width, (y + options.anchor_offset_y) / height)
                for w, h in sizes:
                    anchors.append((*centre, *((1.0, 1.0) if options.fixed_anchor_size else (w, h))))
        layer = last
    return np.asarray(anchors, np.float32)


def decode_ssd(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, decoding: SsdDecoding
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's (N, num_coords) raw boxes and (N, classes) raw scores -> boxes (N, 4) x0 y0 x1 y1, keypoints
    (N, K, 2) x y, both normalized to the input, best scores (N,) and classes (N,)."""
    raw = np.asarray(raw_boxes, np.float32).reshape(len(anchors), decoding.num_coords)
    centre, size = anchors[:, :2], anchors[:, 2:]
    order = [0, 1] if decoding.reverse_output_order else [1, 0]
    at = decoding.box_coord_offset
    offsets = raw[:, at : at + 2][:, order] / np.float32([decoding.x_scale, decoding.y_scale])
    sides = raw[:, at + 2 : at + 4][:, order] / np.float32([decoding.w_scale, decoding.h_scale])
    middle = offsets * size + centre
    extent = (np.exp(sides) if decoding.apply_exponential_on_box_size else sides) * size
    boxes = np.concatenate([middle - extent / 2, middle + extent / 2], axis=1)
    points = np.zeros((len(anchors), decoding.num_keypoints, 2), np.float32)
    for k in range(decoding.num_keypoints):
        start = decoding.keypoint_coord_offset + k * decoding.num_values_per_keypoint
        xy = raw[:, start : start + 2][:, order] / np.float32([decoding.x_scale, decoding.y_scale])
        points[:, k] = xy * size + centre
    logits = np.asarray(raw_scores, np.float32).reshape(len(anchors), -1)
    if decoding.score_clipping_thresh is not None:
        logits = np.clip(logits, -decoding.score_clipping_thresh, decoding.score_clipping_thresh)
    # the sigmoid of a logit under -88 is 0 in float32: clipped there, exp cannot overflow
    scores = 1.0 / (1.0 + np.exp(-np.maximum(logits, -88.0))) if decoding.sigmoid_score else logits
    return boxes, points, scores.max(axis=1), scores.argmax(axis=1)


def weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou: float, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression over already thresholded candidates: the best remaining box
    and every one overlapping it by more than `iou` become one, their boxes and keypoints averaged by score, with
    the best one's score. Returns (boxes, keypoints, scores), best first, at most `limit`."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    kept_boxes, kept_points, kept_scores = [], [], []
    while len(remaining) and len(kept_scores) < limit:
        best = remaining[0]
        overlaps = box_iou(boxes[best][None], boxes[remaining])[0] > iou
        cluster = remaining[overlaps]
        weights = scores[cluster][:, None]
        total = float(weights.sum())
        kept_boxes.append((boxes[cluster] * weights).sum(axis=0) / total)
        kept_points.append((points[cluster] * weights[:, :, None]).sum(axis=0) / total)
        kept_scores.append(scores[best])
        remaining = remaining[~overlaps]
    count = len(kept_scores)
    return (
        np.asarray(kept_boxes, np.float32).reshape(count, 4),
        np.asarray(kept_points, np.float32).reshape(count, *points.shape[1:]),
        np.asarray(kept_scores, np.float32),
    )
