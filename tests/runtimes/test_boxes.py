"""Boxes as numbers (runtimes/boxes.py): IoU, class-aware greedy NMS, threshold and cap, against textbook oracles.

Fast and TensorFlow-free: bench/mutation.py runs this module against mutants of boxes.py.
"""

import numpy as np
import pytest

from runtimes.boxes import box_iou, filter_detections, nms, suppress


def _iou(a, b):
    """One pair, in float64, as a textbook writes it."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _greedy_nms(boxes, scores, classes, iou_threshold):
    """The textbook loop, one pair at a time, in float64."""
    keep = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(classes[i] != classes[k] or _iou(boxes[i], boxes[k]) <= iou_threshold for k in keep):
            keep.append(i)
    return keep


def test_box_iou_matches_the_pairwise_formula_on_random_boxes():
    rng = np.random.default_rng(2)
    corners = rng.random((40, 2, 2)) * 50
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    a, b = boxes[:15], boxes[15:]
    found = box_iou(a, b)
    assert found.shape == (15, 25)
    expected = np.array([[_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)
    assert (found > 0).sum() > 20  # the cases overlap


@pytest.mark.parametrize(
    "a, b, iou",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),  # half along x
        ([0, 0, 10, 10], [0, 5, 10, 15], 50 / 150),  # half along y
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [2, 3, 6, 8], 20 / 100),  # inside
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # apart
        ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),  # two points: no area, no division by zero
        ([0, 0, 10, 10], [12, 12, 8, 8], 0.0),  # an inverted box has no area
        ([0, 0, 4, 10], [0, 0, 10, 4], 16 / 64),  # a cross: overlap 4x4 of areas 40 and 40
    ],
)
def test_box_iou_cases(a, b, iou):
    found = box_iou(np.array([a], np.float32), np.array([b], np.float32))
    assert found.shape == (1, 1) and float(found[0, 0]) == pytest.approx(iou, abs=1e-7)
    assert float(box_iou(np.array([b], np.float32), np.array([a], np.float32))[0, 0]) == pytest.approx(iou, abs=1e-7)


def test_nms_keeps_the_best_box_per_class_and_object():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b, s, c = filter_detections(boxes, np.array([0.9, 0.8, 0.7, 0.2]), np.array([0, 0, 1, 0]), 0.3, 0.5, 10)
    assert s.tolist() == pytest.approx([0.9, 0.7]) and c.tolist() == [0, 1]
    np.testing.assert_array_equal(b, boxes[[0, 2]])


def test_nms_suppresses_above_the_threshold_only():
    """IoU exactly at the threshold keeps both (suppression is strictly above), as torchvision's and TFLite's do."""
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU 1/3
    scores, classes = np.float32([0.9, 0.8]), np.zeros(2, np.int64)
    assert nms(boxes, scores, classes, 0.34).tolist() == [0, 1]
    assert nms(boxes, scores, classes, 0.33).tolist() == [0]
    assert nms(boxes, scores, classes, float(box_iou(boxes[:1], boxes[1:])[0, 0])).tolist() == [0, 1]
    assert nms(boxes[::-1], scores, classes, 0.33).tolist() == [0]  # best score wins, wherever it is


def test_nms_of_zero_and_one_box():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).tolist() == []
    one = nms(np.float32([[0, 0, 1, 1]]), np.float32([0.5]), np.zeros(1, np.int64), 0.5)
    assert one.tolist() == [0] and one.dtype == np.int64


def test_threshold_is_inclusive_and_the_cap_keeps_the_best():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(6)], np.float32)  # apart: nothing suppressed
    scores = np.float32([0.5, 0.3, 0.9, 0.29999, 0.7, 0.3])
    b, s, c = filter_detections(boxes, scores, np.arange(6), 0.3, 0.5, 10)
    assert s.tolist() == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.3])  # 0.3 kept (score >= threshold), 0.29999 not
    assert c.tolist() == [2, 4, 0, 1, 5] and b.dtype == np.float32 and c.dtype == np.int64
    b, s, c = filter_detections(boxes, scores, np.arange(6), 0.3, 0.5, 2)
    assert c.tolist() == [2, 4]
    b, s, c = filter_detections(boxes, scores, np.arange(6), 0.95, 0.5, 10)
    assert b.shape == (0, 4) and s.shape == (0,) and c.shape == (0,)


def test_suppress_takes_candidates_in_the_order_given_and_reshapes_flat_outputs():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]], np.float32)  # (1, 3, 4) as a model gives
    scores = np.float32([[0.9, 0.8, 0.4]])
    classes = np.array([[1.0, 1.0, 0.0]], np.float32)  # float classes (the postprocess layout)
    b, s, c = suppress(boxes, scores, classes, np.array([0, 1, 2]), 0.5, 10)
    assert c.tolist() == [1, 0] and c.dtype == np.int64 and b.shape == (2, 4)
    b, s, c = suppress(boxes, scores, classes, np.array([1]), 0.5, 10)  # one candidate: nothing to suppress
    assert s.tolist() == pytest.approx([0.8])
    b, s, c = suppress(boxes, scores, classes, np.array([0, 1, 2]), 0.5, 1)
    assert s.tolist() == pytest.approx([0.9])


def test_nms_matches_the_textbook_greedy_loop_on_random_boxes():
    rng = np.random.default_rng(4)
    kept = 0
    for case in range(200):
        # every fourth case a crowded frame (65 to 149 candidates), as a busy street gives
        n, cap = (int(rng.integers(0, 30)), 10) if case % 4 else (int(rng.integers(65, 150)), 200)
        corners = rng.random((n, 2, 2)) * 100
        boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 1], axis=1).astype(np.float32)
        scores, classes = rng.permutation(n).astype(np.float32) / max(n, 1), rng.integers(0, 3, n)
        b, s, c = filter_detections(boxes, scores, classes, 0.2, 0.45, cap)
        expected = [i for i in _greedy_nms(boxes.astype(np.float64), scores, classes, 0.45) if scores[i] >= 0.2][:cap]
        np.testing.assert_array_equal(b, boxes[expected])
        assert s.tolist() == scores[expected].tolist() and c.tolist() == classes[expected].tolist()
        kept += len(expected)
    assert kept > 500  # the cases had boxes to keep and to suppress


def test_nms_without_overlaps_keeps_every_box_in_score_order_as_the_greedy_loop_does():
    """Frames whose candidates do not overlap past the threshold (the usual frame after the in-graph peak suppression):
    same boxes and order as the greedy loop, ties kept in index order, zero-area boxes kept."""
    rng = np.random.default_rng(8)
    for case in range(100):
        n = int(rng.integers(2, 40))
        cells = rng.permutation(100)[:n]  # one box per cell of a 10x10 grid, touching neighbours at most
        origin = np.stack([cells % 10, cells // 10], axis=1).astype(np.float32) * 10
        boxes = np.concatenate([origin, origin + rng.uniform(0, 10, (n, 2)).astype(np.float32)], axis=1)
        if case % 3 == 0:  # an overlap under the threshold, and one across classes
            boxes[1] = boxes[0] + np.float32([3, 3, 3, 3])
        scores = rng.integers(1, 5, n).astype(np.float32) / 4  # many ties
        classes = np.zeros(n, np.int64) if case % 3 else np.arange(n) % 2
        threshold = 0.5 if case % 3 else 0.95
        order = nms(boxes, scores, classes, threshold)
        assert order.tolist() == _greedy_nms(boxes.astype(np.float64), scores, classes, threshold)
        assert order.tolist() == np.argsort(-scores, kind="stable").tolist() or case % 3 == 0
    zero = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 4, 4]], np.float32)  # two identical points: nothing to overlap
    assert nms(zero, np.float32([0.9, 0.8, 0.7]), np.zeros(3, np.int64), 0.5).tolist() == [0, 1, 2]


def test_iou_of_boxes_smaller_than_a_pixel():
    """Normalized coordinates (fractions of the input): unions far below 1 are divided as they are."""
    a = np.array([[0.10, 0.10, 0.20, 0.20]], np.float32)
    b = np.array([[0.15, 0.10, 0.25, 0.20]], np.float32)
    assert float(box_iou(a, b)[0, 0]) == pytest.approx(1 / 3, rel=1e-5)
    assert float(box_iou(a, a)[0, 0]) == pytest.approx(1.0, rel=1e-6)


def test_scores_are_compared_as_the_models_float32():
    """A float64 score just under the threshold that is the threshold in float32 (the model's precision) is kept."""
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], np.float64)
    scores = np.array([0.2999999999, 0.2], np.float64)  # under 0.3 in float64, float32(0.3) in float32
    b, s, c = filter_detections(boxes, scores, np.array([0, 0]), 0.3, 0.5, 10)
    assert len(s) == 1 and s.dtype == np.float32 and b.dtype == np.float32 and c.dtype == np.int64
    b, s, c = suppress(boxes, scores, np.array([0, 0]), np.array([0, 1]), 0.5, 10)
    assert b.dtype == np.float32 and s.dtype == np.float32 and s.tolist() == pytest.approx([0.3, 0.2])
    many = filter_detections(
        np.zeros((1, 3, 4), np.float32) + [0, 0, 1, 1], np.float32([[0.9, 0.8, 0.7]]), np.zeros((1, 3)), 0.5, 0.5, 10
    )  # (1, K) scores as a model gives them
    assert many[1].tolist() == pytest.approx([0.9])  # the same box three times: one kept
