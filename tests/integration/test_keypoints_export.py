"""A trained keypoint model in every format: the contract inside, each file against Keras (OKS mAP delta, object
agreement, largest point error), and every consumer on non-square images: predict(), the SavedModel's serving
signature, `edgekit predict --json/--save`, `edgekit serve`, the Pi bundle's runner, and quantization-aware
training's integer files."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import KEYPOINT_TARGETS

import edgekit
from edgekit.host_tasks.keypoints import KeypointsHost, artifact_candidates
from edgekit.training.keypoints import source_objects
from runtimes.heads.keypoints import KeypointHead

FLOAT = {"tflite:fp32", "tflite:fp16", "onnx:fp32", "coreml:fp32", "coreml:fp16", "savedmodel:fp32"}
NAMES = ["tip", "left", "right", "tail"]


@pytest.fixture(scope="module")
def wide_scenes(tmp_path_factory):
    """Eight non-square (72x112) scenes the model never saw, read letterboxed to its 96 px input."""
    from edgekit.data.keypoints import load_keypoints

    root = edgekit.datasets.make_shapes_keypoints(
        tmp_path_factory.mktemp("wide") / "scenes", n_images=8, image_size=(72, 112), seed=9
    )
    return load_keypoints(root, image_size=96)


def test_the_trained_model_finds_the_points(trained_keypoints):
    result, _, _ = trained_keypoints
    metrics = result.metrics
    assert metrics["pck"]["test"] >= 0.3 and metrics["mean_error_px"]["test"] <= 6.0, metrics["pck"]
    assert metrics["oks_map"]["test"] > 0.02
    assert result.contract.head["sigmas"] == [0.05] * 4  # recorded: OKS is computed with what the file says


@pytest.mark.parametrize("target", KEYPOINT_TARGETS)
def test_every_format_carries_the_points_and_agrees_with_keras(keypoints_exported, target):
    result = keypoints_exported.result(target)
    assert result.status == "ok", result.error
    with edgekit.load(result.path) as model:
        head = KeypointHead.from_dict(model.contract.head)
    assert list(head.keypoint_names) == NAMES and head.flip_idx == (0, 2, 1, 3) and head.skeleton
    assert head.layout == "maps" and head.sigmas == (0.05,) * 4
    details = result.details
    if target in FLOAT:
        assert abs(result.accuracy_delta) <= 0.1 and result.agreement >= 0.99 and details["reverse"] >= 0.99
        assert result.max_abs_error <= 0.1 and details["points_within_1px"] >= 0.99, (result.max_abs_error, details)
    else:  # measured: OKS mAP -1.1 to 0.0 points, agreement 0.96-1.0, 0.2-2.0 px at most, >= 94% within 1 px
        assert result.accuracy_delta >= -2.5 and result.agreement >= 0.9, (result.accuracy_delta, result.agreement)
        assert result.max_abs_error <= 3.0 and details["points_within_1px"] >= 0.9, details


def test_a_mediapipe_file_is_refused_with_the_reason(trained_keypoints, keypoints_exported, tmp_path):
    """MediaPipe Tasks has no custom keypoint task: no mediapipe mode, and the TFLite files' notes say who decodes."""
    result, _, _ = trained_keypoints
    report = edgekit.export(result.model_path, ["tflite:mediapipe"], out_dir=tmp_path, progress=False)
    refused = report.result("tflite:mediapipe")
    assert refused.status == "failed" and "no task for a custom keypoint model" in refused.error
    assert not list(tmp_path.glob("*.tflite"))
    consumers = keypoints_exported.result("tflite:fp32").consumers
    assert any("no task reads raw heat maps" in note for note in consumers), consumers


def test_the_full_integer_file_holds_no_float_tensor(keypoints_exported):
    """The maps layout leaves peaks and points to the device's CPU: the file an NPU takes is integer throughout."""
    from converters.tflite_integer import float_tensors

    path = keypoints_exported.result("tflite:int8_full").path
    with open(path, "rb") as file:
        assert float_tensors(file.read()) == []


@pytest.mark.parametrize("target", ["tflite:fp32", "onnx:int8", "coreml:fp16"])
def test_predict_on_non_square_images_gives_keras_points_in_source_pixels(
    trained_keypoints, keypoints_exported, wide_scenes, target
):
    result, _, _ = trained_keypoints
    host = KeypointsHost()
    head = KeypointHead.from_dict(result.contract.head)
    reference = host.reference(host.deployable(result.model, result.contract), wide_scenes, result.contract)
    tolerance = 0.05 if target in FLOAT else 3.0
    backend = "reference" if target.startswith("coreml") else None  # CoreML predicts on Apple systems only
    with edgekit.load(keypoints_exported.result(target).path, backend=backend) as model:
        mine = source_objects(artifact_candidates(model, wide_scenes), wide_scenes, head, 0.3)
        keras = source_objects(reference["candidates"], wide_scenes, head, 0.3)
        found = 0
        for i, source in enumerate(wide_scenes.sources):
            objects = model.predict(source, threshold=0.3)
            assert objects.image_size == (72, 112)
            boxes, _, _, points, _ = keras[i]
            if target in FLOAT:
                assert len(objects) == len(boxes)
            matched = 0
            for o in objects:
                distances = np.abs(boxes - np.array(o.box)).max(axis=1)
                if len(distances) and distances.min() <= tolerance:
                    j = int(distances.argmin())
                    assert np.abs(points[j] - np.array([(k.x, k.y) for k in o.keypoints])).max() <= tolerance
                    matched += 1
            assert matched >= len(objects) - (0 if target in FLOAT else 1)
            assert len(mine[i][0]) == len(objects)  # predict() and the export check decode alike
            found += len(objects)
    assert found >= 4


def test_the_savedmodel_serving_signature_answers_as_predict(trained_keypoints, keypoints_exported, wide_scenes):
    """TensorFlow Serving's signature: at the model's size (the very pixels predict() uses) its objects and
    points are predict()'s; on 72x112 requests (letterboxed by TensorFlow's bilinear resize in the graph, by
    OpenCV's in predict) they match within a pixel."""
    import tensorflow as tf

    _, _, test = trained_keypoints
    serve = tf.saved_model.load(keypoints_exported.result("savedmodel:fp32").path).signatures["serving_default"]
    exact = matched = resized = 0
    with edgekit.load(keypoints_exported.result("tflite:fp32").path) as model:
        spec = model.task.serving_spec(model.labels, model.contract.head)
        for source in test.sources[:20]:
            rgb = np.ascontiguousarray(cv2.imread(source)[..., ::-1])
            answer = {k: v.numpy()[0] for k, v in serve(images=tf.constant(rgb[None])).items()}
            expected = model.task.serving_prediction(model.predict(source), model.labels, model.contract.head)
            assert set(answer) == set(spec) and int(answer["count"]) == expected["count"]
            for key, shape in (("boxes", (4,)), ("keypoints", (4, 2)), ("keypoint_scores", (4,)), ("scores", ())):
                wanted = np.asarray(expected[key], np.float32).reshape(-1, *shape)
                assert np.allclose(answer[key], wanted, atol=2e-3), key  # padding rows included: zeros
            assert [label.decode() for label in answer["labels"]] == expected["labels"]
            exact += expected["count"]
        for source in wide_scenes.sources:
            rgb = np.ascontiguousarray(cv2.imread(source)[..., ::-1])
            answer = {k: v.numpy()[0] for k, v in serve(images=tf.constant(rgb[None])).items()}
            for found in model.predict(source):
                resized += 1
                points = np.array([(k.x, k.y) for k in found.keypoints])
                for i in range(int(answer["count"])):
                    if np.abs(answer["boxes"][i] - found.box).max() <= 1.0:
                        matched += np.abs(answer["keypoints"][i] - points).max() <= 1.0
                        break
    print(f"{exact} objects identical at the model's size; {matched} of {resized} matched on 72x112 requests")
    assert exact >= 10 and resized >= 4 and matched >= 0.8 * resized


def test_edgekit_predict_prints_the_points_and_draws_the_skeleton(keypoints_exported, wide_scenes, tmp_path, capsys):
    from edgekit.cli import main

    path, source = keypoints_exported.result("tflite:int8").path, wide_scenes.sources[0]
    assert main(["predict", path, source, "--json", "--threshold", "0.3"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["objects"] and all([k["name"] for k in o["keypoints"]] == NAMES for o in record["objects"])
    assert all(0.0 <= k["score"] <= 1.0 for o in record["objects"] for k in o["keypoints"])
    assert main(["predict", path, source, "--save", str(tmp_path / "drawn"), "--threshold", "0.3"]) == 0
    (drawn,) = (tmp_path / "drawn").glob("*.*")
    image, original = cv2.imread(str(drawn)), cv2.imread(source)
    assert image.shape == original.shape
    x, y = (round(v) for v in (record["objects"][0]["keypoints"][0]["x"], record["objects"][0]["keypoints"][0]["y"]))
    assert np.abs(image.astype(int) - original).sum() > 0 and tuple(image[min(y, 71), min(x, 111)]) != tuple(
        original[min(y, 71), min(x, 111)]
    )


def test_edgekit_serve_answers_with_the_points(keypoints_exported, wide_scenes):
    import base64

    from helpers.needs import need_module

    httpx = need_module("httpx", extra="dev")
    need_module("uvicorn", extra="serve")
    from runtimes.serving import start

    path, source = keypoints_exported.result("onnx:fp32").path, wide_scenes.sources[1]
    body = {"instances": [{"b64": base64.b64encode(open(source, "rb").read()).decode()}]}
    with start(path, port=0, token="t0ken") as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer t0ken"}, timeout=30) as client:
            answer = client.post("/v1/models/small_keypoint_detector:predict", json=body)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    with edgekit.load(path) as model:
        expected = model.task.serving_prediction(model.predict(source), model.labels, model.contract.head)
    assert prediction == expected and len(prediction["keypoints"][0]) == 4


def test_a_pi_bundle_runs_the_integer_keypoint_model(keypoints_exported, wide_scenes, tmp_path):
    from edgekit.deploy import rpi

    path, source = keypoints_exported.result("tflite:int8").path, wide_scenes.sources[2]
    bundle = rpi(path, tmp_path / "dist" / "points", source=source)
    done = subprocess.run([sys.executable, "run.py"], cwd=bundle.folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    with edgekit.load(path) as model:
        expected = model.task.summary(model.predict(source))
    assert record["objects"] == expected["objects"]


@pytest.mark.slow
def test_quantization_aware_keypoints_export_integer_without_calibration(trained_keypoints, tmp_path):
    """Two epochs of QAT on the trained model: int8 TFLite and ONNX files need no calibration data, are integer
    throughout and agree with the fake-quantized Keras model."""
    result, train, test = trained_keypoints
    aware = edgekit.quantize_aware(
        result.model_path, train, train.subset(range(40)), epochs=2, out_dir=tmp_path / "qat", verbose=0
    )
    assert aware.contract.head == result.contract.head
    report = edgekit.export(
        aware.model_path, ["tflite:int8", "onnx:int8"], out_dir=tmp_path / "export", check=test, progress=False
    )
    for target in ("tflite:int8", "onnx:int8"):
        checked = report.result(target)
        assert checked.status == "ok", checked.error
        assert checked.agreement >= 0.9 and checked.details["points_within_1px"] >= 0.9, checked.details
        assert any("quantization-aware training" in note for note in checked.notes)
    assert report.float_accuracy is not None  # the report's "keras float before QAT" row
