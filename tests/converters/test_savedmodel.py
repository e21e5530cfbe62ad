"""The SavedModel target: TensorFlow Serving's layout, a raw-image serving signature that gives Keras' answers,
the contract in the assets, the same check as every artifact, and nothing left behind by a failed export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.needs import need_module

import edgekit
from runtimes.contract import ModelContract
from runtimes.metadata.savedmodel import CONTRACT_ASSET

tf = need_module("tensorflow", extra="train")


@pytest.fixture(scope="module")
def classifier_savedmodel(trained, shapes_splits, tmp_path_factory):
    train, _, test = shapes_splits
    out = tmp_path_factory.mktemp("serving")
    return edgekit.export(
        trained.model_path, ["savedmodel:fp32"], out_dir=out, calibration=train, check=test, progress=False
    ), out


def _rgb(path: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)


def test_the_savedmodel_is_written_in_tf_servings_layout_and_checked_like_every_artifact(classifier_savedmodel):
    report, out = classifier_savedmodel
    result = report.result("savedmodel:fp32")
    assert result.status == "ok", result.error
    assert Path(result.path) == out / "small_cnn" / "1"
    assert (out / "small_cnn" / "1" / "saved_model.pb").is_file() and (out / "small_cnn" / "1" / "variables").is_dir()
    assert result.agreement >= 0.99 and result.max_abs_error < 1e-4
    assert result.accuracy == pytest.approx(report.keras_accuracy)
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no staging folder left
    mask = os.umask(0)
    os.umask(mask)
    assert all(p.stat().st_mode & 0o777 == (0o777 if p.is_dir() else 0o666) & ~mask for p in out.rglob("*"))


def test_serving_default_takes_raw_images_and_gives_keras_answers(classifier_savedmodel, trained, shapes_splits):
    """Images at the model's size: Keras' scores to 1e-5. Twice the size: resized in the graph, the same labels."""
    report, _ = classifier_savedmodel
    _, _, test = shapes_splits
    serve = tf.saved_model.load(report.result("savedmodel:fp32").path).signatures["serving_default"]
    assert set(serve.structured_outputs) == {"scores", "label_id", "label"}
    images = np.stack([_rgb(path) for path in test.sources])
    got = serve(images=tf.constant(images))
    expected = np.asarray(trained.model(test.tensors(trained.preprocessing), training=False))
    np.testing.assert_allclose(got["scores"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(got["label_id"].numpy(), expected.argmax(1))
    assert [label.decode() for label in got["label"].numpy()] == [test.labels[i] for i in expected.argmax(1)]
    large = np.stack([cv2.resize(image, (128, 128), interpolation=cv2.INTER_CUBIC) for image in images[:60]])
    agreement = (serve(images=tf.constant(large))["label_id"].numpy() == expected[:60].argmax(1)).mean()
    print(f"labels of 128x128 requests resized in the graph vs Keras at 64x64: {agreement:.3f}")
    assert agreement >= 0.95


def test_the_contract_travels_in_the_assets_and_edgekit_loads_the_folder(classifier_savedmodel, trained, shapes_splits):
    report, _ = classifier_savedmodel
    path = Path(report.result("savedmodel:fp32").path)
    loaded = tf.saved_model.load(str(path))
    asset = Path(loaded.contract.asset_path.numpy().decode())
    assert asset == path / "assets" / CONTRACT_ASSET
    contract = ModelContract.from_json(asset.read_text())
    assert contract.labels == trained.contract.labels and contract.preprocessing.input_size == (64, 64)
    assert contract.quantization["scaling_in_graph"]["scale"] == pytest.approx(trained.preprocessing.scale)
    assert contract.quantization["serving"] == {"signature": "serving_default", "input": "images", "color_order": "rgb"}
    _, _, test = shapes_splits
    with edgekit.load(path) as model:
        assert model.backend == "tensorflow" and model.labels == trained.contract.labels
        results = model.predict(list(test.sources[:40]))
    assert sum(r.label == test.labels[t] for r, t in zip(results, test.targets[:40])) >= 36


def test_version_option_and_a_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
    report = edgekit.export(
        trained.model_path,
        ["savedmodel:fp32"],
        out_dir=tmp_path / "a",
        progress=False,
        options={"savedmodel": {"version": 7}},
    )
    assert report.result("savedmodel:fp32").status == "unchecked"
    assert (tmp_path / "a" / "small_cnn" / "7" / "saved_model.pb").is_file()
    with pytest.raises(edgekit.EdgekitError, match=r"version.*integers >= 1"):
        edgekit.export(
            trained.model_path, ["savedmodel:fp32"], out_dir=tmp_path / "b", options={"savedmodel": {"version": 0}}
        )

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken)
    failed = edgekit.export(trained.model_path, ["savedmodel:fp32"], out_dir=tmp_path / "c", progress=False)
    assert failed.result("savedmodel:fp32").status == "failed" and "disk full" in failed.result("savedmodel:fp32").error
    assert not any(p.is_file() for p in (tmp_path / "c").rglob("*"))


@pytest.mark.slow
def test_a_detectors_serving_signature_gives_predicts_detections(trained_detector, tmp_path):
    """Boxes in the request image's pixels, after the threshold and NMS, as edgekit's predict gives them."""
    result, train, test = trained_detector
    report = edgekit.export(
        result.model_path, ["savedmodel:fp32"], out_dir=tmp_path, calibration=train, check=test, progress=False
    )
    exported = report.result("savedmodel:fp32")
    assert exported.status == "ok", exported.error
    assert exported.accuracy_delta == pytest.approx(0.0, abs=0.05)
    serve = tf.saved_model.load(exported.path).signatures["serving_default"]
    exact = matched = resized = 0
    with edgekit.load(exported.path) as model:
        for source in test.sources[:30]:
            image = _rgb(source)
            got = serve(images=tf.constant(image[None]))  # the model's size: the very pixels predict uses
            found = model.predict(image)
            assert int(got["count"][0]) == len(found), source
            for i, detection in enumerate(found):
                assert int(got["classes"][0, i]) == detection.index
                assert got["labels"][0, i].numpy().decode() == detection.label
                assert abs(float(got["scores"][0, i]) - detection.score) < 1e-4
                np.testing.assert_allclose(got["boxes"][0, i].numpy(), detection.box, atol=1e-3)
            exact += len(found)
            # another size: letterboxed by TensorFlow's bilinear resize in the graph, by OpenCV's in predict
            request = cv2.resize(image, (96, 80), interpolation=cv2.INTER_AREA)
            got, found = serve(images=tf.constant(request[None])), model.predict(request)
            for detection in found:
                resized += 1
                for i in range(int(got["count"][0])):
                    box = got["boxes"][0, i].numpy()
                    if (
                        int(got["classes"][0, i]) == detection.index
                        and _iou(box, detection.box) >= 0.85
                        and abs(float(got["scores"][0, i]) - detection.score) < 0.05
                    ):
                        matched += 1
                        break
    print(f"{exact} detections identical at the model's size; {matched} of {resized} matched on resized requests")
    assert exact >= 10 and resized >= 10 and matched >= 0.9 * resized
    assert json.loads((Path(exported.path) / "assets" / CONTRACT_ASSET).read_text())["task"] == "detection"


def _iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
def test_the_graphs_resize_maps_like_the_runtime_and_lands_near_its_pixels(resize):
    """converters.savedmodel.to_geometry: the box mapping is box_mapping's; the pixels within a level or two of
    OpenCV's."""
    from converters.savedmodel import to_geometry
    from runtimes.contract import Preprocessing
    from runtimes.preprocess import box_mapping, prepare_pixels

    spec = Preprocessing(input_size=(48, 64), resize=resize, interpolation="linear", pad_value=114)
    contract = ModelContract(spec, ("a", "b"))
    rng = np.random.default_rng(0)
    for height, width in ((48, 64), (90, 160), (200, 120), (37, 41)):
        image = cv2.resize(
            rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC
        )
        pixels, mapping = to_geometry(tf, tf.constant(image[None]), contract)
        expected = box_mapping((height, width), spec)
        np.testing.assert_allclose(
            mapping.numpy(),
            [expected.scale_x, expected.scale_y, expected.offset_x, expected.offset_y],
            rtol=1e-6,
            atol=1e-6,
        )
        reference = prepare_pixels(image, spec, "rgb")
        difference = np.abs(pixels.numpy()[0].astype(int) - reference.astype(int))
        assert pixels.shape == (1, 48, 64, 3)
        if (height, width) == (48, 64):
            assert difference.max() == 0  # the model's size passes untouched
        assert np.median(difference) <= 1 and difference.mean() < 2.5, (height, width, difference.mean())
