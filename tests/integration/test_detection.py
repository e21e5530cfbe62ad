"""Detection: loaders and their bad-annotation cases, mAP by pycocotools, box mapping, and a tiny
detector trained once, exported and checked against Keras, with predict returning source-pixel boxes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np
import pytest

from edgekit.data.annotations import load_detection
from edgekit.data.synthetic import make_shapes_detection
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing
from runtimes.heads.detection import DetectionHead
from runtimes.preprocess import box_mapping, prepare_pixels


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return {
        fmt: make_shapes_detection(root / fmt, n_images=12, image_size=(96, 160), seed=3, format=fmt)
        for fmt in ("yolo", "coco", "voc")
    }


def test_every_format_reads_the_same_boxes(scenes):
    read = {
        fmt: load_detection(path if fmt != "coco" else path / "annotations.json", image_size=64)
        for fmt, path in scenes.items()
    }
    yolo = read["yolo"]
    assert len(yolo) == 12 and yolo.object_count > 12 and yolo.labels == ("circle", "square", "triangle")
    assert yolo.skipped == ()
    for other in (read["coco"], read["voc"]):
        assert other.labels == yolo.labels and other.class_counts() == yolo.class_counts()
        for a, b, ca, cb in zip(yolo.boxes, other.boxes, yolo.classes, other.classes):
            assert np.array_equal(ca, cb)
            np.testing.assert_allclose(a, b, atol=0.01)  # YOLO stores 6 decimals of the image side
    assert tuple(yolo.source_sizes[0]) == (96, 160) and yolo.pixels.shape[1:] == (64, 64, 3)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_yolo_bad_annotations_are_skipped_and_counted(scenes, tmp_path):
    root = _copy(scenes["yolo"], tmp_path / "yolo")
    labels = sorted((root / "labels").glob("*.txt"))
    labels[0].write_text("0 0.5 0.5 0.2 0.2\n0 1.6 0.5 0.2 0.2\n")  # one good box, one outside the image
    labels[1].write_text("1 0.5 0.5 0 0.2\n")  # zero width
    labels[2].write_text("7 0.5 0.5 0.2 0.2\n")  # unknown class id
    labels[3].write_text("0 0.5 zero 0.2\n")  # malformed line
    (root / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # no image for it
    (root / "images" / labels[4].with_suffix(".png").name).write_bytes(b"not a png")  # unreadable image
    dataset = load_detection(root, image_size=64)
    assert dataset.skip_counts() == {
        "box outside the image": 1,
        "box of zero or negative size": 1,
        "unknown class id": 1,
        "malformed line": 1,
        "image missing": 1,
        "image unreadable": 1,
    }
    assert len(dataset) == 11 and len(dataset.boxes[0]) == 1
    assert "valid: 0..2" in next(s.reason for s in dataset.skipped if s.reason.startswith("unknown class id"))


def test_coco_and_voc_bad_annotations_are_skipped_and_counted(scenes, tmp_path):
    coco = _copy(scenes["coco"], tmp_path / "coco")
    data = json.loads((coco / "annotations.json").read_text())
    data["annotations"][0]["category_id"] = 99
    data["annotations"][1]["image_id"] = 999
    data["annotations"][2]["bbox"] = "broken"
    (coco / "images" / data["images"][5]["file_name"]).unlink()
    (coco / "annotations.json").write_text(json.dumps(data))
    dataset = load_detection(coco / "annotations.json", image_size=64)
    assert dataset.skip_counts() == {"unknown class id": 1, "image missing": 2, "malformed line": 1}
    assert len(dataset) == 11

    voc = _copy(scenes["voc"], tmp_path / "voc")
    xmls = sorted((voc / "Annotations").glob("*.xml"))
    xmls[0].write_text("<annotation><filename>")
    xmls[1].write_text(
        xmls[1].read_text().replace("<name>circle</name>", "<name>hexagon</name>", 1)
        if "circle" in xmls[1].read_text()
        else xmls[1]
        .read_text()
        .replace(
            "</annotation>",
            "<object><name>hexagon</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>",
        )
    )
    dataset = load_detection(voc, image_size=64, labels=["circle", "square", "triangle"])
    assert dataset.skip_counts() == {"malformed file": 1, "unknown class id": 1} and len(dataset) == 11


def test_a_dataset_without_any_usable_image_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names:\n  - cat\n  - dog\n")
    (tmp_path / "images" / "a.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match="no usable image"):
        load_detection(tmp_path)
    with pytest.raises(DatasetError, match="cannot tell the annotation format"):
        load_detection(tmp_path / "images")


def test_coco_map_on_a_hand_computed_case():
    from edgekit.metrics.detection import coco_map

    truth = [np.array([[10, 10, 50, 50], [60, 60, 90, 90]], np.float32)]
    found = [np.array([[10, 10, 50, 50], [0, 60, 20, 90]], np.float32)]  # one exact hit, one false positive
    metrics = coco_map(truth, [np.array([0, 0])], found, [np.array([0.9, 0.8])], [np.array([0, 0])], ["thing"])
    # precision 1 up to recall 0.5, then nothing: COCO's 101-point AP is 51/101 at every IoU threshold
    assert metrics.map == pytest.approx(51 / 101, abs=1e-6) and metrics.map50 == pytest.approx(51 / 101, abs=1e-6)
    assert metrics.per_class["thing"] == pytest.approx(51 / 101, abs=1e-6)


def test_detection_datasets_shrink_with_one_bilinear_pass_and_refuse_another_geometry(scenes):
    from runtimes.contract import Interpolation

    dataset = load_detection(scenes["yolo"], image_size=64)
    assert dataset.geometry.interpolation is Interpolation.LINEAR  # detectors' default; classifiers keep area
    source = cv2.imread(str(dataset.sources[0]))  # 160x96 -> 64x38 inside the letterbox
    np.testing.assert_array_equal(
        dataset.pixels[0][13:51], cv2.resize(source, (64, 38), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    )
    area = load_detection(scenes["yolo"], image_size=64, interpolation="area")
    with pytest.raises(
        DatasetError,
        match=r"dataset images are \(64, 64\) rgb \(letterbox, area\) but the preprocessing "
        r"wants \(64, 64\) rgb \(letterbox, linear\).*interpolation",
    ):
        area.tensors(dataset.geometry)


@pytest.mark.parametrize("resize", ["letterbox", "stretch", "center_crop"])
def test_box_mapping_follows_the_pixels(resize):
    """A white box drawn on a non-square image lands where the mapping says, and maps back within a pixel."""
    spec = Preprocessing(128, resize=resize)
    image = np.zeros((180, 300, 3), np.uint8)
    box = np.array([[90.0, 40.0, 210.0, 140.0]], np.float32)
    image[40:140, 90:210] = 255
    resized = prepare_pixels(image, spec)
    ys, xs = np.nonzero(resized[..., 0] > 127)
    seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    mapping = box_mapping(image.shape[:2], spec)
    np.testing.assert_allclose(mapping.to_input(box)[0], seen, atol=1.0)
    np.testing.assert_allclose(mapping.to_source(seen)[0], box[0], atol=1.0 / mapping.scale_x + 0.5)


# -- the shared detector (conftest), held to an absolute mAP ---------------------------------------------------


def test_the_shared_detector_is_held_to_an_absolute_map_and_its_files_keep_it(trained_detector, detector_exported):
    """The detector the live, tracking, deploy, arm64 and MediaPipe tests share measured test mAP@.5 0.231 and
    mAP@[.5:.95] 0.115 (2-core host, 2026-12-07); the bars sit a quarter under. A broken decoding, NMS, box mapping or
    target encoding takes both near 0. Each of its files is checked on the same split: within 1.5 points of Keras."""
    result, _, _ = trained_detector
    assert result.metrics["map50"]["test"] >= 0.17, result.metrics
    assert result.metrics["map"]["test"] >= 0.085, result.metrics
    assert set(result.metrics["per_class_ap"]) == {"circle", "square", "triangle"}
    assert min(result.metrics["per_class_ap"].values()) > 0.02  # every class is found, not just the easy one
    for checked in detector_exported.results:
        assert checked.status == "ok", checked.error
        assert checked.accuracy >= 0.085 and abs(checked.accuracy_delta) <= 1.5, (checked.target, checked.accuracy)


# -- a tiny detector, trained once ---------------------------------------------------------------


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    import edgekit

    root = make_shapes_detection(tmp_path_factory.mktemp("det") / "data", n_images=160, image_size=64, seed=1)
    dataset = load_detection(root, image_size=64)
    train, val, test = dataset.split(seed=0)
    out = tmp_path_factory.mktemp("det-train")
    result = edgekit.train(
        train,
        val,
        task="detection",
        epochs=5,
        test=test,
        out_dir=out,
        verbose=0,
        head=DetectionHead(score_threshold=0.05),
    )  # a few epochs: low scores, still real boxes
    return result, train, test, root


def test_training_writes_a_detector_with_its_metrics_and_plots(detector):
    result, _, _, _ = detector
    assert result.contract.task == "detection" and result.contract.head["score_threshold"] == 0.05
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert set(metrics["map"]) == {"val", "test"} and 0 <= metrics["map"]["test"] <= metrics["map50"]["test"] <= 1
    assert set(metrics["per_class_ap"]) == {"circle", "square", "triangle"} and metrics["training_seconds"] > 0
    history = metrics["history"]
    assert len(history["loss"]) == len(history["val_loss"]) == len(history["val_map"]) == metrics["epochs_run"] == 5
    assert all(v > 0 for v in history["val_loss"])
    for name in ("history.png", "val_boxes.png", "model.keras"):
        assert (result.out_dir / name).stat().st_size > 1000


def test_float_artifacts_match_keras_and_predict_returns_source_boxes(detector, tmp_path):
    import edgekit

    result, train, test, root = detector
    report = edgekit.export(
        result.model_path,
        ["tflite:fp32", "onnx:fp32", "coreml:fp32", "tflite:int8", "onnx:int8"],
        out_dir=tmp_path,
        calibration=train,
        check=test,
        progress=False,
    )
    assert report.task == "detection" and "mAP@.5" in report.table()
    for target in ("tflite:fp32", "onnx:fp32", "coreml:fp32"):  # CoreML through the reference executor
        r = report.result(target)
        assert r.status == "ok", r.error
        assert r.details["keras_detections"] > 0  # the comparison has something to compare
        assert r.agreement >= 0.99 and r.max_abs_error <= 1.0 and abs(r.accuracy_delta) < 0.5
    for target in ("tflite:int8", "onnx:int8"):  # mixed precision: box sides and decoding in float, the rest int8
        r = report.result(target)
        assert r.status == "ok", r.error
        assert any(note.startswith("mixed precision:") and "sides_raw, sides, decode" in note for note in r.notes)
        with edgekit.load(r.path) as model:
            assert model.contract.quantization["float_scopes"] == ["sides_raw", "sides", "decode"]
            boxes_spec = next(spec for spec in model.runtime.output_specs if len(spec.shape) == 3)
            assert boxes_spec.dtype == np.float32 and boxes_spec.quantization is None
    with edgekit.load(report.result("tflite:int8").path) as model:
        assert model.runtime.input_specs[0].dtype == np.int8
    full = edgekit.export(
        result.model_path,
        ["tflite:int8"],
        out_dir=tmp_path / "full",
        calibration=train,
        options={"tflite": {"mixed_precision": False}},
        progress=False,
    ).result("tflite:int8")
    assert not any(note.startswith("mixed precision:") for note in full.notes)
    with edgekit.load(full.path) as model:
        assert all(np.issubdtype(spec.dtype, np.integer) for spec in model.runtime.output_specs)  # full integer

    image_path = sorted((root / "images").glob("*.png"))[0]
    image = cv2.imread(str(image_path))
    wide = cv2.copyMakeBorder(image, 0, 0, 32, 32, cv2.BORDER_CONSTANT, value=(0, 0, 0))  # non-square: letterboxed
    with edgekit.load(report.result("tflite:fp32").path) as model:
        assert model.task.name == "detection"
        found = model.predict(wide, color="bgr", threshold=0.01)  # five epochs: the letterboxed copy scores low
        assert isinstance(found, edgekit.Detections) and found.image_size == (64, 128)
        boxes = found.boxes
        assert len(boxes) and (boxes[:, [0, 2]] <= 128).all() and (boxes[:, [1, 3]] <= 64).all()
        with pytest.raises(edgekit.InputError, match="valid: agnostic, iou, max_detections, threshold"):
            model.predict(image, top_k=3)
    # the same answer by hand: the contract's letterbox, Keras' raw maps, NumPy decoding, the mapping undone
    from edgekit.training.detector_graph import decode_maps
    from runtimes.boxes import filter_detections
    from runtimes.preprocess import normalize

    spec = result.contract.preprocessing
    maps = np.asarray(result.model(normalize(prepare_pixels(wide, spec, "bgr"), spec), training=False))
    b, s, c = (a[0] for a in decode_maps(maps, 3, 50))
    b, s, c = filter_detections(b, s, c, 0.01, 0.5, 50)
    expected = box_mapping((64, 128), spec).to_source(b * 64)
    assert np.array_equal(c, found.classes)
    np.testing.assert_allclose(found.boxes, np.clip(expected, 0, [128, 64, 128, 64]), atol=1e-3)


def test_mobilenetv2_detector_loads_a_local_backbone_file_and_trains_at_160(tmp_path):
    """The backbone takes a keras.applications weights file (legacy .h5, the published format) and sees x/127.5 - 1;
    the detector trains at 160 px and its TFLite export matches Keras."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    import edgekit
    from edgekit._tf import keras
    from edgekit.training.detector_graph import DETECTORS

    k = keras()
    plain = k.applications.MobileNetV2(input_shape=(160, 160, 3), include_top=False, weights=None, alpha=1.0)
    path = tmp_path / "mobilenet_v2_1.0_160_no_top.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, plain)
    narrow = tmp_path / "mobilenet_v2_0.35_160_no_top.h5"
    with h5py.File(narrow, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(
            f, k.applications.MobileNetV2((160, 160, 3), include_top=False, weights=None, alpha=0.35)
        )
    with pytest.raises(edgekit.TrainingError, match=r"does not fit a MobileNetV2 backbone of width 1.0 .*no-top file"):
        DETECTORS.get("mobilenetv2_detector").build((160, 160, 3), 3, str(narrow))
    model = DETECTORS.get("mobilenetv2_detector").build((160, 160, 3), 3, str(path))
    features = k.Model(model.input, model.get_layer("out_relu").output)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 160, 160, 3)).astype(np.float32)
    np.testing.assert_allclose(features(pixels), plain(pixels / 127.5 - 1), atol=1e-4)

    root = make_shapes_detection(tmp_path / "data", n_images=40, image_size=160, seed=5)
    train, val, test = load_detection(root, image_size=160).split(seed=0)
    result = edgekit.train(
        train,
        val,
        "mobilenetv2_detector",
        task="detection",
        epochs=1,
        weights=str(path),
        test=test,
        out_dir=tmp_path / "train",
        verbose=0,
        head=DetectionHead(score_threshold=0.0, max_detections=10),
    )
    assert result.contract.model_name == "mobilenetv2_detector" and result.contract.preprocessing.input_size == (
        160,
        160,
    )
    report = edgekit.export(result.model_path, ["tflite:fp32"], out_dir=tmp_path / "export", check=test, progress=False)
    r = report.result("tflite:fp32")
    assert r.status == "ok" and r.details["keras_detections"] >= 10 * len(test) // 2
    # one epoch: near-equal heat everywhere, so rounding flips some top-k ties; matched boxes must still be exact
    assert r.agreement >= 0.85 and r.max_abs_error <= 1.0 and abs(r.accuracy_delta) < 1.0
    with pytest.raises(edgekit.TrainingError, match="needs an image size that is a multiple of 32 and at least 96"):
        small = load_detection(root, image_size=64)
        edgekit.train(small, small, "mobilenetv2_detector", task="detection", out_dir=tmp_path)


def test_an_artifact_whose_check_raises_is_failed_and_removed(detector, tmp_path, monkeypatch):
    """One target's broken check must not stop the export nor leave an unchecked file to ship."""
    import edgekit
    from edgekit.host_tasks.detection import DetectionHost

    def broken(self, loaded, dataset, reference):
        raise edgekit.InferenceError("outputs are not boxes")

    monkeypatch.setattr(DetectionHost, "check", broken)
    result, train, test, _ = detector
    report = edgekit.export(result.model_path, ["tflite:fp32"], out_dir=tmp_path, check=test.sample(4), progress=False)
    failed = report.result("tflite:fp32")
    assert (
        failed.status == "failed"
        and "check against Keras failed (InferenceError: outputs are not boxes)" in failed.error
    )
    assert not list(tmp_path.glob("*.tflite"))


def test_the_cli_trains_exports_describes_and_predicts_a_detector(tmp_path, capsys):
    from edgekit.cli import main

    root = make_shapes_detection(tmp_path / "data", n_images=30, image_size=64, seed=7)
    assert (
        main(
            [
                "train",
                str(root),
                "--task",
                "detection",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "train"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                str(tmp_path / "train" / "model.keras"),
                "-t",
                "tflite:fp32",
                "--check",
                str(root),
                "--out",
                str(tmp_path / "export"),
            ]
        )
        == 0
    )
    assert "mAP@[.5:.95]" in capsys.readouterr().out
    model = tmp_path / "export" / "small_detector_fp32.tflite"
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "name:    small_detector (detection)" in out
    assert "outputs: boxes, scores, classes; boxes xyxy, normalized to the input size" in out
    assert "defaults: score >= 0.3, IoU 0.5, at most 50 detections" in out
    image = sorted((root / "images").glob("*.png"))[0]
    assert main(["predict", str(model), str(image), "--json", "--threshold", "0"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    boxes = np.array([d["box"] for d in record["detections"]])
    assert record["source"] == str(image) and 0 < len(boxes) <= 50 and (boxes >= 0).all() and (boxes <= 64).all()


def test_coco_skips_every_bad_annotation_case(scenes, tmp_path):
    coco = _copy(scenes["coco"], tmp_path / "coco")
    data = json.loads((coco / "annotations.json").read_text())
    by_image = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    first = data["annotations"][0]
    data["annotations"] += [
        {**first, "id": 9001, "bbox": [150, 10, 30, 30]},  # runs past the 160-pixel-wide image
        {**first, "id": 9002, "bbox": [10, 10, 0, 20]},  # zero width
        {**first, "id": 9003, "bbox": [10, 10, -5, 20]},  # negative width
        {**first, "id": 9004, "category_id": 42},  # unknown class id
        {**first, "id": 9005, "bbox": [1, 2, "x", 4]},  # malformed record
    ]
    data["images"].append({"id": 777})  # malformed image entry: no file_name
    (coco / "images" / data["images"][5]["file_name"]).unlink()  # image missing
    (coco / "images" / data["images"][6]["file_name"]).write_bytes(b"GIF89a broken")  # image unreadable
    (coco / "annotations.json").write_text(json.dumps(data))
    dataset = load_detection(coco / "annotations.json", image_size=64)
    counts = dataset.skip_counts()
    assert counts == {
        "box outside the image": 1,
        "box of zero or negative size": 2,
        "unknown class id": 1,
        "malformed line": 1,
        "malformed file": 1,
        "image missing": 1,
        "image unreadable": 1,
    }
    assert len(dataset) == 10 and dataset.object_count == sum(
        len(v) for k, v in by_image.items() if k not in (data["images"][5]["id"], data["images"][6]["id"])
    )
    (coco / "annotations.json").write_text("{not json")
    with pytest.raises(DatasetError, match="is not a COCO instances file"):
        load_detection(coco / "annotations.json", image_size=64)


def test_voc_skips_every_bad_annotation_case(scenes, tmp_path):
    voc = _copy(scenes["voc"], tmp_path / "voc")
    xmls = sorted((voc / "Annotations").glob("*.xml"))

    def add_object(xml, name, box):
        coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
        xml.write_text(
            xml.read_text().replace(
                "</annotation>", f"<object><name>{name}</name><bndbox>{coords}</bndbox></object></annotation>"
            )
        )

    add_object(xmls[0], "circle", (150, 10, 190, 40))  # past the right edge
    add_object(xmls[0], "circle", (20, 10, 20, 40))  # zero width
    add_object(xmls[1], "hexagon", (1, 1, 9, 9))  # unknown class
    add_object(xmls[1], "square", (1, "one", 9, 9))  # malformed line
    xmls[2].write_text("<annotation><filename>")  # malformed file
    (voc / "JPEGImages" / ElementTree.parse(xmls[3]).getroot().findtext("filename")).unlink()  # image missing
    (voc / "JPEGImages" / ElementTree.parse(xmls[4]).getroot().findtext("filename")).write_bytes(b"\xff\xd8 broken")
    dataset = load_detection(voc, image_size=64, labels=["circle", "square", "triangle"])
    assert dataset.skip_counts() == {
        "box outside the image": 1,
        "box of zero or negative size": 1,
        "unknown class id": 1,
        "malformed line": 1,
        "malformed file": 1,
        "image missing": 1,
        "image unreadable": 1,
    }
    assert len(dataset) == 9


def test_max_drop_and_fallback_act_on_map_points(detector, tmp_path, monkeypatch):
    """An int8 detector that loses 3 mAP points fails a 2-point gate, is removed, and the next safer mode replaces
    it."""
    import edgekit
    from edgekit.host_tasks.detection import DetectionHost

    real_check = DetectionHost.check

    def int8_loses_3_points(self, loaded, dataset, reference):
        verdict = real_check(self, loaded, dataset, reference)
        return replace(verdict, quality_delta=-3.0) if loaded.path.name.endswith("_int8.onnx") else verdict

    monkeypatch.setattr(DetectionHost, "check", int8_loses_3_points)
    result, train, test, _ = detector
    report = edgekit.export(
        result.model_path,
        ["onnx:int8"],
        out_dir=tmp_path,
        calibration=train,
        check=test,
        max_drop=2.0,
        fallback=True,
        progress=False,
    )
    failed, replacement = report.results
    assert failed.status == "failed" and "mAP@[.5:.95] dropped 3.0 points (max_drop 2)" in failed.error
    assert not (tmp_path / Path(failed.path or "none").name).exists()
    assert (
        replacement.target == "onnx:dynamic" and replacement.fallback_for == "onnx:int8" and replacement.status == "ok"
    )
    assert report.ok


def test_tflite_int8_falls_back_to_full_integer_when_mixed_precision_fails(detector, tmp_path, monkeypatch):
    import edgekit
    from converters import tflite

    def broken(*args, **kwargs):
        raise RuntimeError("mlir_quantize changed")

    monkeypatch.setattr(tflite, "_mixed_int8", broken)
    result, train, _, _ = detector
    r = edgekit.export(result.model_path, ["tflite:int8"], out_dir=tmp_path, calibration=train, progress=False).result(
        "tflite:int8"
    )
    assert r.status == "unchecked" and "mixed precision failed (RuntimeError); full integer instead" in r.notes
    with edgekit.load(r.path) as model:
        assert "float_scopes" not in model.contract.quantization
        assert all(np.issubdtype(spec.dtype, np.integer) for spec in model.runtime.output_specs)


def test_non_finite_detector_outputs_fail_only_where_they_would_be_read(detector_exported):
    """Damaged weights: a NaN or +inf score anywhere is an error (it is never below a threshold); a NaN box is one
    when its candidate passes the threshold, and a -inf score is below every threshold (the rest are never read, so
    a frame stays cheap), and valid candidates still give their boxes."""
    import edgekit
    from edgekit import InferenceError

    with edgekit.load(detector_exported.result("tflite:fp32").path) as model:
        frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        outputs = model.run_all(model.preprocess(frame, "bgr"))
        specs = model.runtime.output_specs
        roles = {len(spec.shape): spec.name for spec in specs if np.dtype(spec.dtype).kind == "f"}
        boxes, scores = outputs[roles[3]], outputs[roles[2]]
        scores[:] = 0.0
        scores[0, :2] = 0.9, 0.8
        boxes[0, :2] = [0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.9]
        options = model.decoder.options({})

        def results(b, s):
            raw = [{roles[3]: b, roles[2]: s}.get(spec.name, outputs[spec.name]) for spec in specs]
            return model.decoder.results(raw, [(48, 64)], 0.0, 0.0, options)[0]

        assert len(results(boxes, scores)) == 2
        unread = boxes.copy()
        unread[0, 5] = np.nan  # below the threshold
        found = results(unread, scores)
        assert len(found) == 2 and np.isfinite(found.boxes).all()
        below = scores.copy()
        below[0, 5] = -np.inf
        assert results(boxes, below).scores.tolist() == pytest.approx([0.9, 0.8])
        for damaged_boxes, damaged_scores in (
            (boxes, np.where(np.arange(scores.shape[1]) == 7, np.nan, scores)),
            (boxes, np.where(np.arange(scores.shape[1]) == 9, np.inf, scores)),
            (np.where(np.arange(boxes.shape[1])[None, :, None] == 1, np.inf, boxes), scores),
        ):
            with pytest.raises(InferenceError, match="non-finite boxes or scores; its weights are probably damaged"):
                results(damaged_boxes.astype(np.float32), damaged_scores.astype(np.float32))
