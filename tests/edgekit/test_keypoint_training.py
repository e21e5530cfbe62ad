"""Training a keypoint model, piece by piece: augmentation moves points with the pixels (a flip swaps them through
the flip map), targets encode each object's points at its peak cell, and decoding the targets as if a model had
predicted them gives the objects and points back, in source pixels, through a letterbox of non-square images."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.training.keypoint_graph import encode_keypoint_targets
from edgekit.training.keypoints import augment_keypoints, found_objects, input_points
from runtimes.heads.keypoints import KeypointHead


@pytest.fixture(scope="module")
def annotations(tmp_path_factory):
    return edgekit.datasets.make_shapes_keypoints(
        tmp_path_factory.mktemp("kp") / "shapes", n_images=12, image_size=(72, 112), seed=5
    )


@pytest.fixture(scope="module")
def shapes(annotations):
    return edgekit.load_keypoints(annotations, image_size=64)  # letterboxed: 112x72 -> 64x41, 11.5 px bands


def test_a_flip_mirrors_the_points_and_swaps_left_and_right(shapes):
    pixels, boxes, classes = shapes.pixels[0], shapes.input_boxes(0), shapes.classes[0]
    points = input_points(shapes, 0)
    flips = 0
    for seed in range(40):  # some draws flip, some do not
        draws = np.random.default_rng(seed)
        draws.uniform(0.7, 1.3)  # the scale, then the flip: the augmentation's first two draws
        flipped = draws.random() < 0.5
        rng = np.random.default_rng(seed)
        out, moved_boxes, _, moved = augment_keypoints(pixels, boxes, classes, points, shapes.flip_idx, rng)
        assert out.shape == pixels.shape and len(moved) == len(moved_boxes)
        labelled = moved[..., 2] > 0
        inside = (moved[..., 0] >= 0) & (moved[..., 0] <= 64) & (moved[..., 1] >= 0) & (moved[..., 1] <= 64)
        assert np.all(inside[labelled])  # a point pushed out of the frame is unlabelled
        if len(moved) == len(points) and (moved[..., 2] > 0).all():
            # facing the tip, "left" stays on the left only because the flip map swapped it with "right"
            tip, left, tail = moved[:, 0, :2], moved[:, 1, :2], moved[:, 3, :2]
            cross = (tip - tail)[:, 0] * (left - tail)[:, 1] - (tip - tail)[:, 1] * (left - tail)[:, 0]
            assert np.all(cross < 0), (seed, flipped)
            flips += flipped
            if flipped:  # without the flip map, a mirrored object's left would be on its right
                rng = np.random.default_rng(seed)
                _, _, _, unswapped = augment_keypoints(pixels, boxes, classes, points, (0, 1, 2, 3), rng)
                tip, left, tail = unswapped[:, 0, :2], unswapped[:, 1, :2], unswapped[:, 3, :2]
                wrong = (tip - tail)[:, 0] * (left - tail)[:, 1] - (tip - tail)[:, 1] * (left - tail)[:, 0]
                assert np.all(wrong > 0)
    assert flips >= 5


def test_decoding_the_targets_gives_the_objects_and_points_back_in_source_pixels(shapes):
    head = KeypointHead(
        shapes.keypoint_names, shapes.skeleton, shapes.flip_idx, layout="maps", nms="plain", max_detections=20
    )
    c = len(shapes.labels)
    maps = []
    for i in range(len(shapes)):
        target = encode_keypoint_targets(shapes.input_boxes(i), shapes.classes[i], input_points(shapes, i), (64, 64), c)
        k = len(shapes.keypoint_names)  # as a model's maps: no objectness or "labelled" channels
        maps.append(np.concatenate([target[..., : c + 4], target[..., c + 5 : c + 5 + 3 * k]], axis=-1))
    found = found_objects(np.stack(maps), shapes, head, threshold=0.99)
    for i, (boxes, scores, classes, points, visible) in enumerate(found):
        assert np.all(scores >= 0.99)  # the peak cells, whose heat is 1
        assert len(boxes) == len(shapes.boxes[i])
        order = [int(np.argmin(np.abs(boxes[:, :2] - truth[:2]).sum(1))) for truth in shapes.boxes[i]]
        assert np.allclose(boxes[order], shapes.boxes[i], atol=0.2)  # the letterbox undone: source pixels
        labelled = shapes.keypoints[i][..., 2] > 0
        assert np.allclose(points[order][labelled], shapes.keypoints[i][..., :2][labelled], atol=0.2)
        assert np.array_equal(visible[order], shapes.keypoints[i][..., 2] == 2)  # hidden points score 0
        assert list(classes[order]) == list(shapes.classes[i])


def test_train_and_export_a_keypoint_model_from_the_command_line(tmp_path, capsys):
    """`edgekit train --task keypoints` then `edgekit export --check RUN` (the run's own test split): the command
    line's plumbing on a few scenes and epochs (the trained model's figures: tests/integration/
    test_keypoints_export.py)."""
    import json

    from edgekit.cli import main
    from edgekit.keras_io import read_keras_contract

    annotations = edgekit.datasets.make_shapes_keypoints(tmp_path / "data", n_images=60, image_size=64, seed=1)
    out = tmp_path / "run"
    command = ["train", str(annotations), "--task", "keypoints", "--image-size", "64", "--epochs", "2"]
    assert main([*command, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OKS mAP:" in printed and "PCK@0.1:" in printed and "point error:" in printed
    contract = read_keras_contract(out / "model.keras")
    assert contract.task == "keypoints" and contract.head["layout"] == "maps"
    assert contract.head["keypoint_names"] == ["tip", "left", "right", "tail"]
    assert contract.head["flip_idx"] == [0, 2, 1, 3]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["oks_map"]) == {"val", "test"} and metrics["task"] == "keypoints"
    assert (
        main(["export", str(out / "model.keras"), "-t", "onnx:fp32", "--check", str(out), "--out", str(tmp_path / "x")])
        == 0
    )
    table = capsys.readouterr().out
    assert "OKS mAP" in table and "PCK@0.1" in table and "max point error" in table
    assert "onnx:fp32" in table and " ok " in table


def test_a_mobilenetv2_keypoint_model_trains_and_exports(annotations, shapes, tmp_path):
    """The MobileNetV2 backbone with the same keypoint branch: its own input scaling in the contract, one epoch,
    and a float file that matches Keras."""
    train, val, test = edgekit.load_keypoints(annotations, image_size=96).split(seed=0)
    result = edgekit.train(
        train, val, "mobilenetv2_keypoint_detector", task="keypoints", epochs=1, test=test, out_dir=tmp_path / "run"
    )
    assert result.contract.model_name == "mobilenetv2_keypoint_detector" and result.model.count_params() > 2e6
    assert result.model.get_layer("block_2_add") is not None  # the backbone's stride-4 level feeds the head
    report = edgekit.export(result.model_path, ["onnx:fp32"], out_dir=tmp_path / "x", check=test, progress=False)
    checked = report.result("onnx:fp32")
    assert checked.status == "ok" and abs(checked.accuracy_delta) <= 0.1 and checked.agreement >= 0.99, checked
    with pytest.raises(edgekit.TrainingError, match="at least 96"):
        edgekit.train(
            *edgekit.load_keypoints(
                shapes.sources[0].rsplit("/images/", 1)[0] + "/annotations.json", image_size=64
            ).split(seed=0)[:2],
            "mobilenetv2_keypoint_detector",
            task="keypoints",
            epochs=1,
            out_dir=tmp_path / "small",
        )
