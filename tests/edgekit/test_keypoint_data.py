"""Keypoint data: the generated shapes (named points, mirrored shapes, hidden points), COCO keypoints and YOLO pose
read with every bad annotation skipped and counted, and the metrics (OKS mAP by pycocotools, PCK, point error)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import edgekit
from edgekit.data.synthetic import KEYPOINT_FLIP, KEYPOINT_NAMES
from edgekit.errors import DatasetError
from edgekit.metrics.keypoints import keypoint_metrics


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """60 non-square scenes and their COCO keypoints file."""
    return edgekit.datasets.make_shapes_keypoints(
        tmp_path_factory.mktemp("kp") / "shapes", n_images=60, image_size=(96, 128), seed=3
    )


def test_the_generated_points_sit_on_their_shapes_and_mirroring_needs_the_flip_map(shapes):
    data = edgekit.load_keypoints(shapes, image_size=96)
    assert data.keypoint_names == KEYPOINT_NAMES and data.flip_idx == KEYPOINT_FLIP and data.skip_counts() == {}
    assert len(data) == 60 and data.object_count >= 80 and data.skeleton == ((0, 1), (0, 2), (1, 3), (2, 3))
    points = np.concatenate(data.keypoints)
    boxes = np.concatenate(data.boxes)
    inside = (points[..., 0] >= boxes[:, None, 0] - 1) & (points[..., 0] <= boxes[:, None, 2] + 1)
    assert inside.all()  # every point on its object's box
    hidden = (points[..., 2] == 1).sum()
    assert 0 < hidden < 0.15 * points[..., 2].size  # some points under clutter, labelled hidden
    # left and right as seen facing the tip: the left point is on the tip direction's left (negative cross product)
    tip, left, right, tail = (points[:, k, :2] for k in range(4))
    facing, to_left, to_right = tip - tail, left - tail, right - tail
    cross = lambda a, b: a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]  # noqa: E731
    assert np.all(cross(facing, to_left) < 0) and np.all(cross(facing, to_right) > 0)
    # a mirrored image: the same rule holds only after the flip map swaps left and right
    width = 128
    mirrored = points.copy()
    mirrored[..., 0] = width - mirrored[..., 0]
    tip, left, right, tail = (mirrored[:, k, :2] for k in range(4))
    assert np.all(cross(tip - tail, left - tail) > 0)  # wrong before the flip map
    swapped = mirrored[:, list(KEYPOINT_FLIP)]
    tip, left, right, tail = (swapped[:, k, :2] for k in range(4))
    assert np.all(cross(tip - tail, left - tail) < 0)


@pytest.mark.parametrize("stream", [False, True])
def test_bad_coco_keypoint_annotations_are_skipped_and_counted(shapes, tmp_path, stream):
    data = json.loads(shapes.read_text())
    anns = data["annotations"]
    anns[0]["keypoints"] = anns[0]["keypoints"][:9]  # 3 points of 4
    anns[1]["keypoints"][2] = 5  # visibility 5
    anns[2]["keypoints"][0] = 500.0  # a labelled point far off the 128 px image
    anns[2]["keypoints"][2] = 2
    data["categories"][0]["skeleton"].append([1, 9])  # a point that does not exist
    root = tmp_path / "bad"
    (root / "images").mkdir(parents=True)
    for image in data["images"]:
        (root / "images" / image["file_name"]).write_bytes((shapes.parent / "images" / image["file_name"]).read_bytes())
    (root / "annotations.json").write_text(json.dumps(data))
    loaded = edgekit.load_keypoints(root / "annotations.json", image_size=96, stream=stream)
    assert type(loaded).__name__ == ("StreamingKeypointDataset" if stream else "KeypointDataset")
    assert loaded.skip_counts() == {
        "wrong keypoint count": 1,
        "visibility outside 0..2": 1,
        "keypoint outside the image": 1,
        "skeleton edge names a missing point": 1,
    }
    assert loaded.object_count == len(anns) - 3 and len(loaded.skeleton) == 4
    reasons = [s.reason for s in loaded.skipped]
    assert any("(500, " in r for r in reasons) and any("9 values for 4 points" in r for r in reasons)


def test_streamed_keypoints_give_the_in_memory_batches_and_train(shapes, tmp_path):
    """Streamed splits decode per epoch through tf.data: unaugmented batches equal the in-memory ones (pixels and
    encoded points), `load()` gives the same points, and a streamed split trains (one epoch)."""
    from edgekit.training.detector_graph import DETECTORS
    from edgekit.training.keypoints import _batches

    memory = edgekit.load_keypoints(shapes, image_size=64)
    streamed = edgekit.load_keypoints(shapes, image_size=64, stream=True)
    assert streamed.keypoint_names == memory.keypoint_names and streamed.flip_idx == memory.flip_idx
    train, val, test = streamed.split(seed=0)
    in_memory = memory.subset([memory.sources.index(source) for source in train.sources])
    spec = DETECTORS.get("small_detector").preprocessing(memory.geometry)
    for (xa, ya), (xb, yb) in zip(_batches(in_memory, spec, 8, False, 0), _batches(train, spec, 8, False, 0)):
        assert np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())
    loaded = val.load()
    assert type(loaded).__name__ == "KeypointDataset" and len(loaded) == len(val)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.keypoints, val.keypoints))
    augmented = next(iter(_batches(train, spec, 8, True, 0)))[1].numpy()
    assert np.isfinite(augmented).all() and augmented[..., -4:].sum() > 0  # points still labelled after augmenting
    result = edgekit.train(train, val, task="keypoints", epochs=1, test=test, out_dir=tmp_path / "run", verbose=0)
    assert result.contract.task == "keypoints" and set(result.metrics["pck"]) == {"val", "test"}


def test_a_yolo_pose_folder_with_its_flip_map(tmp_path):
    root = tmp_path / "pose"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(
        "names: [hand]\nkpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\nkpt_names: [wrist, thumb, pinky]\n"
    )
    cv2.imwrite(str(root / "images" / "a.png"), np.full((60, 100, 3), 90, np.uint8))
    lines = [
        "0 0.5 0.5 0.4 0.6 0.5 0.7 2 0.35 0.3 2 0.65 0.3 1",  # a good hand
        "0 0.5 0.5 0.4 0.6 0.5 0.7 2 0.35 0.3 2",  # a point short
        "0 0.5 0.5 0.4 0.6 0.5 0.7 3 0.35 0.3 2 0.65 0.3 1",  # visibility 3
    ]
    (root / "labels" / "a.txt").write_text("\n".join(lines) + "\n")
    data = edgekit.load_keypoints(root, image_size=64)
    assert data.keypoint_names == ("wrist", "thumb", "pinky") and data.flip_idx == (0, 2, 1)
    assert data.skip_counts() == {"wrong keypoint count": 1, "visibility outside 0..2": 1}
    (points,) = data.keypoints
    assert (
        points.shape == (1, 3, 3) and np.allclose(points[0, 0], [50, 42, 2]) and np.allclose(points[0, 2], [65, 18, 1])
    )
    with pytest.raises(DatasetError, match="neither a COCO keypoints .json nor a YOLO pose folder"):
        edgekit.load_keypoints(tmp_path / "nothing")


def _truth():
    boxes = [np.array([[10, 10, 60, 60], [70, 10, 120, 50]], np.float32)]
    classes = [np.array([0, 1])]
    points = [np.array([[[20, 20, 2], [50, 20, 2], [35, 55, 1]], [[80, 15, 2], [110, 15, 2], [95, 45, 0]]], np.float32)]
    return boxes, classes, points


def test_exact_points_score_one_and_shifted_points_score_by_their_distance():
    boxes, classes, points = _truth()
    perfect = keypoint_metrics(
        boxes, classes, points, boxes, [np.array([0.9, 0.8])], classes, [p[..., :2] for p in points], ["a", "b"]
    )
    assert perfect.oks_map == pytest.approx(1.0) and perfect.pck == 1.0 and perfect.mean_error_px == 0.0
    moved = [points[0][..., :2] + np.array([4.0, 0.0])]  # 4 px: within 0.1 of a 50 px side, PCK keeps it
    shifted = keypoint_metrics(boxes, classes, points, boxes, [np.array([0.9, 0.8])], classes, moved, ["a", "b"])
    assert shifted.pck == 1.0 and shifted.mean_error_px == pytest.approx(4.0)
    assert 0.0 < shifted.oks_map < 1.0  # OKS falls with the distance
    loose = keypoint_metrics(
        boxes, classes, points, boxes, [np.array([0.9, 0.8])], classes, moved, ["a", "b"], sigmas=[0.5, 0.5, 0.5]
    )
    assert loose.oks_map > shifted.oks_map  # a larger sigma forgives the same distance
    far = [points[0][..., :2] + np.array([12.0, 0.0])]
    assert keypoint_metrics(boxes, classes, points, boxes, [np.array([0.9, 0.8])], classes, far, ["a", "b"]).pck == 0.0


def test_a_missed_object_misses_its_points():
    boxes, classes, points = _truth()
    only_first = keypoint_metrics(
        boxes, classes, points, [boxes[0][:1]], [np.array([0.9])], [classes[0][:1]], [points[0][:1, :, :2]], ["a", "b"]
    )
    assert only_first.pck == pytest.approx(3 / 5)  # 3 labelled points found of 5 (the hidden-but-labelled counts)
    assert only_first.objects == 2
