"""A trained segmentation model in every format: labels and output kind inside each file, each file's masks against
Keras' (pixel agreement, mIoU delta), and every consumer on non-square images: predict(), the SavedModel's serving
signature, `edgekit predict --json/--save`, `edgekit serve` and the Pi bundle's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SEGMENTATION_TARGETS

import edgekit
from edgekit.host_tasks.segmentation import SegmentationHost
from runtimes.tasks.segmentation import from_run_lengths

FLOAT = {"tflite:fp32", "onnx:fp32", "coreml:fp32", "coreml:fp16", "savedmodel:fp32"}


@pytest.fixture(scope="module")
def wide_scenes(tmp_path_factory):
    """Six non-square (72x112) scenes the model never saw, read letterboxed to its input."""
    root = edgekit.datasets.make_shapes_segmentation(
        tmp_path_factory.mktemp("wide") / "scenes", n_images=6, image_size=(72, 112), seed=9
    )
    return edgekit.load_segmentation(root, image_size=64)


def test_the_trained_model_segments_the_shapes(trained_segmenter):
    result, _, _ = trained_segmenter
    assert result.metrics["miou"]["test"] >= 0.5 and result.metrics["pixel_accuracy"]["test"] >= 0.85, result.metrics
    assert (result.out_dir / "confusion.png").is_file()


@pytest.mark.parametrize("target", SEGMENTATION_TARGETS)
def test_every_format_carries_the_labels_and_agrees_with_keras(segmenter_exported, target):
    result = segmenter_exported.result(target)
    assert result.status == "ok", result.error
    with edgekit.load(result.path, backend="reference" if target.startswith("coreml") else None) as model:
        assert model.contract.task == "segmentation" and model.labels == edgekit.datasets.SEGMENTATION_CLASSES
        assert model.contract.head == {"output": "scores", "background": 0}
    if target in FLOAT:  # the bar: >= 99.5% of pixels
        assert result.agreement >= 0.995 and abs(result.accuracy_delta) <= 0.5, (
            result.agreement,
            result.accuracy_delta,
        )
    else:  # int8: within 1.5 mIoU points
        assert result.accuracy_delta >= -1.5 and result.agreement >= 0.97, (result.agreement, result.accuracy_delta)


@pytest.mark.parametrize("target", ["tflite:int8", "onnx:fp32", "coreml:fp16"])
def test_predict_on_non_square_images_is_the_exports_check(trained_segmenter, segmenter_exported, wide_scenes, target):
    """predict() on the files (OpenCV's resize of each file read from disk) gives the masks the export check
    scored, at each source image's size; the float file's mask is Keras' on >= 99.5% of the pixels."""
    result, _, _ = trained_segmenter
    host = SegmentationHost()
    keras = host.reference(result.model, wide_scenes, result.contract)["masks"]
    backend = "reference" if target.startswith("coreml") else None
    with edgekit.load(segmenter_exported.result(target).path, backend=backend) as model:
        for i, source in enumerate(wide_scenes.sources):
            found = model.predict(source)
            assert found.image_size == (72, 112) and found.mask.shape == keras[i].shape
            same = float(np.mean(found.mask == keras[i]))
            assert same >= (0.995 if target in FLOAT else 0.95), (source, same)
            assert sum(found.areas.values()) == pytest.approx(1.0)


def test_the_savedmodel_serving_signature_answers_as_predict(segmenter_exported, wide_scenes):
    import tensorflow as tf

    serve = tf.saved_model.load(segmenter_exported.result("savedmodel:fp32").path).signatures["serving_default"]
    with edgekit.load(segmenter_exported.result("tflite:fp32").path) as model:
        for source in wide_scenes.sources[:3]:
            rgb = np.ascontiguousarray(cv2.imread(source)[..., ::-1])
            answer = {k: v.numpy()[0] for k, v in serve(images=tf.constant(rgb[None])).items()}
            found = model.predict(source)
            assert answer["mask"].shape == found.mask.shape == (72, 112)
            # TensorFlow's bilinear letterbox in the graph against OpenCV's in predict: the same classes nearly
            # everywhere, and the same shares of the image
            assert np.mean(answer["mask"] == found.mask) >= 0.98
            assert np.allclose(answer["areas"], list(found.areas.values()), atol=0.02)


def test_edgekit_predict_writes_run_lengths_and_draws_the_classes(segmenter_exported, wide_scenes, tmp_path, capsys):
    from edgekit.cli import main

    path, source = segmenter_exported.result("tflite:int8").path, wide_scenes.sources[0]
    assert main(["predict", path, source, "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with edgekit.load(path) as model:
        found = model.predict(source)
    assert record["mask"]["size"] == [72, 112]
    assert np.array_equal(from_run_lengths(record["mask"]["run_lengths"], (72, 112)), found.mask)
    assert record["areas"] == pytest.approx(found.areas, abs=1e-6)
    assert main(["predict", path, source, "--save", str(tmp_path / "drawn")]) == 0
    drawn, mask_file = sorted((tmp_path / "drawn").glob("*.*"), key=lambda p: p.name.endswith("_mask.png"))
    assert mask_file.name == Path(source).stem + "_mask.png"  # the class ids, lossless, beside the overlay
    assert np.array_equal(cv2.imread(str(mask_file), cv2.IMREAD_UNCHANGED), found.mask)
    image, original = cv2.imread(str(drawn)), cv2.imread(source)
    coloured = found.mask != 0
    assert image.shape == original.shape and coloured.any()
    assert np.abs(image.astype(int) - original)[coloured].mean() > 10  # the classes blended in their colours


def test_edgekit_serve_answers_with_the_mask(segmenter_exported, wide_scenes):
    import base64

    from helpers.needs import need_module

    httpx = need_module("httpx", extra="dev")
    need_module("uvicorn", extra="serve")
    from runtimes.serving import start

    path, source = segmenter_exported.result("onnx:int8").path, wide_scenes.sources[1]
    body = {"instances": [{"b64": base64.b64encode(open(source, "rb").read()).decode()}]}
    with start(path, port=0, token="t0ken") as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer t0ken"}, timeout=30) as client:
            answer = client.post("/v1/models/small_segmenter:predict", json=body)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    with edgekit.load(path) as model:
        found = model.predict(source)
    assert np.array_equal(np.array(prediction["mask"]), found.mask)
    assert prediction["areas"] == pytest.approx(list(found.areas.values()), abs=1e-6)


def test_a_pi_bundle_runs_the_integer_segmentation_model(segmenter_exported, wide_scenes, tmp_path):
    from edgekit.deploy import rpi

    path, source = segmenter_exported.result("tflite:int8").path, wide_scenes.sources[2]
    bundle = rpi(path, tmp_path / "dist" / "masks", source=source)
    assert "segmentation model" in (bundle.folder / "README.md").read_text()
    done = subprocess.run([sys.executable, "run.py"], cwd=bundle.folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    with edgekit.load(path) as model:
        found = model.predict(source)
    assert np.array_equal(from_run_lengths(record["mask"]["run_lengths"], found.image_size), found.mask)


def test_the_category_mask_output_is_the_same_mask_in_fewer_steps(
    trained_segmenter, segmenter_exported, wide_scenes, tmp_path
):
    """`segmentation_output="category_mask"` puts the argmax in the graph: every format's file says so in its
    contract, agrees with Keras on the check data, and predict() maps its mask back by nearest pixel; on the
    non-square scenes its masks differ from the scores file's only along class edges."""
    result, train, test = trained_segmenter
    targets = ["tflite:int8", "onnx:fp32", "coreml:fp16", "savedmodel:fp32"]
    report = edgekit.export(
        result.model_path,
        targets,
        calibration=train,
        check=test,
        out_dir=tmp_path,
        progress=False,
        options={f: {"segmentation_output": "category_mask"} for f in ("tflite", "onnx", "coreml", "savedmodel")},
    )
    for target in targets:
        checked = report.result(target)
        assert checked.status == "ok" and checked.agreement >= 0.97, (target, checked.error, checked.agreement)
        with edgekit.load(checked.path, backend="reference" if target.startswith("coreml") else None) as model:
            assert model.contract.head["output"] == "category_mask" and model.output_specs[0].shape[-1] == 64
    with (
        edgekit.load(report.result("tflite:int8").path) as masks,
        edgekit.load(segmenter_exported.result("tflite:int8").path) as scores,
    ):
        for source in wide_scenes.sources:
            a, b = masks.predict(source).mask, scores.predict(source).mask
            assert a.shape == b.shape == (72, 112) and np.mean(a == b) >= 0.97
    with pytest.raises(edgekit.ExportError, match="segmentation_output"):
        edgekit.export(
            result.model_path,
            ["onnx:fp32"],
            out_dir=tmp_path / "x",
            options={"onnx": {"segmentation_output": "argmax"}},
        )


def test_predict_gives_a_known_mask_of_a_letterboxed_image_within_a_pixel_of_every_edge(tmp_path):
    """A model whose answer is known: each pixel's class is its brightest colour channel (a fixed 1x1 convolution,
    no training). On a 72x112 image (letterboxed to 64x64: 0.571 of a source pixel per input pixel) with a green
    rectangle and a blue disc on red, predict's mask from the TFLite and ONNX files is the drawn mask but within
    one pixel of an edge."""
    import cv2

    from edgekit._tf import keras
    from runtimes.contract import ModelContract, Preprocessing

    k = keras()
    inputs = k.Input((64, 64, 3))
    layer = k.layers.Conv2D(3, 1, name="scores")
    model = k.Model(inputs, layer(inputs))
    layer.set_weights([np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    spec = Preprocessing(64, resize="letterbox", interpolation="linear", scale=1 / 255)
    contract = ModelContract(spec, ("red", "green", "blue"), "brightest_channel", "segmentation", head={})
    truth = np.zeros((72, 112), np.uint8)
    cv2.rectangle(truth, (10, 8), (49, 40), 1, -1)
    cv2.circle(truth, (80, 44), 20, 2, -1)
    rgb = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)[truth]
    source = tmp_path / "known.png"
    cv2.imwrite(str(source), rgb[..., ::-1])
    report = edgekit.export(model, ["tflite:fp32", "onnx:fp32"], contract=contract, out_dir=tmp_path, progress=False)
    near_edge = cv2.dilate(cv2.Canny(truth * 100, 1, 1), np.ones((3, 3), np.uint8)) > 0  # within 1 px of an edge
    for target in ("tflite:fp32", "onnx:fp32"):
        with edgekit.load(report.result(target).path) as loaded:
            mask = loaded.predict(str(source)).mask
        wrong = mask != truth
        assert mask.shape == truth.shape and not (wrong & ~near_edge).any(), (target, int((wrong & ~near_edge).sum()))
        assert wrong.sum() < 0.5 * near_edge.sum()  # most edge pixels right too


def test_a_stream_of_frames_gives_a_mask_per_frame(segmenter_exported, wide_scenes, tmp_path):
    """stream() over a folder of non-square frames: one Segmentation each, at its frame's size, as predict gives;
    --save on a stream writes each frame's mask beside it."""
    from runtimes.display import AnnotatedImages, present

    folder = Path(wide_scenes.sources[0]).parent
    with edgekit.load(segmenter_exported.result("onnx:fp32").path) as model:
        results = [(frame.frame.position, frame.result) for frame in model.stream(str(folder))]
        assert len(results) == 6
        for position, found in results:
            assert found.mask.shape == (72, 112)
            assert np.array_equal(found.mask, model.predict(str(folder / Path(str(position)).name)).mask)
        sink = AnnotatedImages(tmp_path / "frames")
        list(present(model.stream(str(folder)), video=sink))
    assert len(list((tmp_path / "frames").glob("*_mask.png"))) == 6
