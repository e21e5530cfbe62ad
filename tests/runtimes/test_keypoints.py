"""The keypoints task's pieces without a model: the contract's head, SSD anchors as MediaPipe generates them, the
raw outputs' decoding, weighted NMS, and the affine resize (MediaPipe's ImageToTensor) with its mapping back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtimes.contract import ModelContract, Preprocessing, ResizeMode
from runtimes.errors import ContractError
from runtimes.heads.keypoints import KeypointHead
from runtimes.heads.ssd_options import AnchorOptions, SsdDecoding
from runtimes.loading import given_contract
from runtimes.preprocess import box_mapping, resize_image
from runtimes.tasks.ssd_anchors import decode_ssd, ssd_anchors, weighted_nms


def test_blazefaces_anchors_are_mediapipes():
    """Short-range BlazeFace: 16x16 cells of 2 anchors at stride 8, then the three stride-16 layers merged into
    8x8 cells of 6: 896, centred on their cells, of fixed size."""
    head = KeypointHead.from_dict(given_contract("mediapipe_face_detection_short_range").head)
    anchors = ssd_anchors(head.decoding().anchors)
    assert anchors.shape == (896, 4) and np.all(anchors[:, 2:] == 1.0)
    assert np.allclose(anchors[0, :2], [0.5 / 16, 0.5 / 16]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2, :2], [1.5 / 16, 0.5 / 16])  # the next cell along the row
    assert np.allclose(anchors[512:518, :2], [0.5 / 8, 0.5 / 8]) and np.allclose(anchors[-1, :2], [7.5 / 8, 7.5 / 8])


def test_anchor_sizes_follow_the_scales_when_not_fixed():
    options = AnchorOptions(64, 64, (16, 32), 0.2, 0.8, aspect_ratios=(1.0, 2.0), interpolated_scale_aspect_ratio=1.0)
    anchors = ssd_anchors(options)
    assert anchors.shape == (4 * 4 * 3 + 2 * 2 * 3, 4)
    first = anchors[:3, 2:]  # scale 0.2: square, 2:1 (wider), and the interpolated sqrt(0.2 * 0.8)
    assert np.allclose(first, [[0.2, 0.2], [0.2 * np.sqrt(2), 0.2 / np.sqrt(2)], [0.4, 0.4]])


def test_raw_boxes_and_keypoints_decode_from_their_anchor():
    decoding = SsdDecoding(num_coords=8, num_keypoints=2, x_scale=10, y_scale=10, w_scale=10, h_scale=10)
    anchors = np.array([[0.5, 0.5, 1.0, 1.0], [0.25, 0.75, 0.5, 0.5]], np.float32)
    raw = np.array([[1, -2, 4, 2, 0, 0, 3, 1], [0, 0, 10, 10, -1, 1, 0, 0]], np.float32)  # x y w h, then x y pairs
    boxes, points, scores, classes = decode_ssd(raw, np.array([[0.0], [200.0]]), anchors, decoding)
    assert np.allclose(boxes[0], [0.4, 0.2, 0.8, 0.4])  # centre (0.6, 0.3), size (0.4, 0.2)
    assert np.allclose(points[0], [[0.5, 0.5], [0.8, 0.6]]) and np.allclose(points[1, 0], [0.2, 0.8])
    assert np.allclose(boxes[1], [0.0, 0.5, 0.5, 1.0])
    assert scores[0] == pytest.approx(0.5) and scores[1] == pytest.approx(1.0) and list(classes) == [0, 0]


def test_weighted_nms_averages_a_cluster_by_score_and_keeps_the_best_score():
    boxes = np.array([[0.30, 0, 0.70, 0.4], [0.34, 0, 0.74, 0.4], [0.90, 0.5, 1.0, 0.6]], np.float32)
    points = boxes[:, None, :2].copy()
    scores = np.array([0.9, 0.3, 0.8], np.float32)
    kept_boxes, kept_points, kept_scores = weighted_nms(boxes, points, scores, iou=0.3, limit=10)
    expected = (0.30 * 0.9 + 0.34 * 0.3) / 1.2
    assert kept_boxes[0, 0] == pytest.approx(expected) and kept_points[0, 0, 0] == pytest.approx(expected)
    assert list(kept_scores) == pytest.approx([0.9, 0.8]) and np.allclose(kept_boxes[1], boxes[2])
    assert len(weighted_nms(boxes, points, scores, iou=0.3, limit=1)[2]) == 1


def test_the_affine_resize_warps_the_whole_image_with_fractional_padding():
    """A 333x257 image onto 128x128: scale 128/333, the left padding 14.6 px (a letterbox rounds it to 14 and
    resizes to whole pixels). A source pixel lands where the mapping says, to within a pixel."""
    spec = Preprocessing(128, resize=ResizeMode.AFFINE, pad_value=0, interpolation="linear")
    mapping = box_mapping((333, 257), spec)
    ratio = 128 / 333
    assert (mapping.scale_x, mapping.scale_y) == pytest.approx((ratio, ratio))
    assert mapping.offset_x == pytest.approx((128 - 257 * ratio) / 2) and mapping.offset_y == pytest.approx(0.0)
    image = np.zeros((333, 257, 3), np.uint8)
    cv2.circle(image, (200, 100), 6, (255, 255, 255), -1)
    warped = resize_image(image, spec)
    assert warped.shape == (128, 128, 3) and warped[:, :10].max() == 0  # the padding
    weights = warped[..., 0].astype(float)
    rows, columns = np.indices(weights.shape)
    x, y = (float((weights * axis).sum() / weights.sum()) for axis in (columns, rows))  # the disc's centre
    expected = (200 * ratio + mapping.offset_x, 100 * ratio + mapping.offset_y)  # pixel indices, as OpenCV warps
    assert abs(x - expected[0]) <= 0.1 and abs(y - expected[1]) <= 0.1, (x, y, expected)
    points = mapping.points_to_source(np.array([[expected[0] / 128, expected[1] / 128]]), spec.input_size)
    assert np.allclose(points, [[200, 100]], atol=1e-3)  # and back to the source


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"skeleton": [[0, 9]]}, r"skeleton edge \(0, 9\) names a point outside 0..5"),
        ({"flip_idx": [0, 0, 2, 3, 4, 5]}, "flip_idx must reorder the 6 points"),
        ({"sigmas": [0.1] * 5}, "sigmas must be 6 positive numbers"),
        ({"keypoint_names": ["a", "a"]}, "keypoint_names must be unique"),
        ({"nms": "soft"}, "unknown keypoint nms 'soft'"),
        ({"colour": "red"}, r"unknown field\(s\) \['colour'\]"),
    ],
)
def test_a_wrong_keypoint_head_is_refused_with_the_reason(change, message):
    contract = given_contract("mediapipe_face_detection_short_range")
    with pytest.raises(ContractError, match=message):
        ModelContract(contract.preprocessing, contract.labels, task="keypoints", head={**contract.head, **change})


def test_a_contract_that_is_neither_a_file_nor_shipped_is_named():
    with pytest.raises(ContractError, match="'blaze' is neither a contract JSON file nor one edgekit ships"):
        given_contract("blaze")
