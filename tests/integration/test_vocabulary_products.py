"""The shared names at work on real models: the same threshold, iou, max_detections and agnostic give the same
detections from Python, the CLI and a REST request; JSON results name their source one way; a flag for another
task fails before any work; --output and --json mean the same on predict and the bundle's runner."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.cli import main
from runtimes.loading import open_model

OPTIONS = {"threshold": 0.05, "iou": 0.3, "max_detections": 3, "agnostic": True}


@pytest.fixture(scope="module")
def street(tracking_clip, tmp_path_factory):
    """A non-square frame (96x160) with the clip's objects on it: several detections, in source pixels."""
    capture = cv2.VideoCapture(str(tracking_clip.path))
    ok, frame = capture.read()
    capture.release()
    assert ok
    wide = cv2.copyMakeBorder(frame, 0, 0, 16, 16, cv2.BORDER_REFLECT)[16:112]
    path = tmp_path_factory.mktemp("street") / "street.png"
    cv2.imwrite(str(path), wide)
    return path


def _same(records: list[dict], result) -> None:
    """JSON detections (scores to 6 decimals, boxes to 3) are `result`'s."""
    assert [d["label"] for d in records] == [d.label for d in result]
    np.testing.assert_allclose([d["score"] for d in records], [d.score for d in result], atol=1e-6)
    np.testing.assert_allclose([d["box"] for d in records], [d.box for d in result], atol=1e-3)


def test_the_same_names_give_the_same_detections_from_python_the_cli_and_rest(
    detector_exported, street, tmp_path, capsys
):
    from runtimes.serving.app import Draining, ModelRoutes, ServeConfig

    path = detector_exported.result("tflite:fp32").path
    with open_model(path) as model:
        plain = model.predict(str(street))
        chosen = model.predict(str(street), **OPTIONS)
        loose = model.predict(str(street), threshold=0.05, iou=0.3)
        routes = ModelRoutes(model, ServeConfig("detector"), Draining())
        image = {"b64": base64.b64encode(street.read_bytes()).decode()}
        answer = routes.predict(json.dumps({"instances": [image], "parameters": OPTIONS}).encode())
    assert chosen.image_size == (96, 160) and 1 <= len(chosen) <= 3
    assert len(loose) > len(chosen) >= 1 and len(loose) >= len(plain)  # the options did something
    labels = [d.label for d in chosen]
    boxes = np.array([d.box for d in chosen])
    if len(boxes) > 1:  # agnostic: no two kept boxes overlap past the IoU, whatever their labels
        from runtimes.boxes import box_iou

        overlaps = box_iou(boxes, boxes)[~np.eye(len(boxes), dtype=bool)]
        assert (overlaps <= 0.3).all(), (labels, overlaps)
    prediction = answer["predictions"][0]  # TF Serving's form: padded, boxes to 3 decimals
    count = prediction["count"]
    assert prediction["labels"][:count] == labels
    np.testing.assert_allclose(prediction["scores"][:count], [d.score for d in chosen], atol=1e-6)
    np.testing.assert_allclose(prediction["boxes"][:count], boxes.reshape(-1, 4), atol=1e-3)

    output = tmp_path / "results.jsonl"
    flags = ["--threshold", "0.05", "--iou", "0.3", "--max-detections", "3", "--agnostic"]
    assert main(["predict", str(path), str(street), *flags, "--json", "--output", str(output)]) == 0
    assert capsys.readouterr().out == ""  # --output: the results went to the file
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["source"] == str(street) and "frame" not in record
    _same(record["detections"], chosen)


def test_a_flag_for_another_task_fails_before_any_work(exported, detector_exported, street, capsys):
    classifier = Path(exported.result("tflite:int8").path)
    assert main(["predict", str(classifier), str(street), "--iou", "0.4"]) == 2
    err = capsys.readouterr().err
    assert f"--iou applies to detection models and keypoints models; {classifier.name} is a classifier" in err
    detector = Path(detector_exported.result("tflite:fp32").path)
    assert main(["predict", str(detector), str(street), "--top-k", "2"]) == 2
    assert f"--top-k applies to classification models; {detector.name} is a detector" in capsys.readouterr().err


def test_the_runner_and_predict_share_json_and_output(exported, tracking_clip, tmp_path, capsys):
    from runtimes.apps.runner import main as runner

    model = exported.result("onnx:fp32").path
    output = tmp_path / "runner.jsonl"
    code = runner(
        ["--model", str(model), "--source", str(tracking_clip.path), "--max-frames", "3", "--output", str(output)]
    )
    assert code == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2] and {r["source"] for r in records} == {str(tracking_clip.path)}
    assert runner(["--model", str(model), "--source", str(tracking_clip.path), "--max-frames", "2", "--no-json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"{tracking_clip.path} #0", f"{tracking_clip.path} #1"]
