"""MediaPipe Tasks reads edgekit's TFLite files from the file alone, and edgekit reads MediaPipe-written metadata.

mediapipe 0.10.14 (the newest whose metadata writer imports; 1.x lacks `mediapipe.tasks.cc`)
pins protobuf < 5 and numpy < 2, so it cannot share this environment with TensorFlow: it is
installed once into its own virtualenv under ~/.cache and driven through tests/helpers/mediapipe_probe.py.
Where it cannot be installed (no package registry), the tests skip with the reason (fail in CI: tests/helpers/needs.py);
`make warm` installs it ahead of time (tests/helpers/caches.py).
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import caches
from helpers.needs import missing

import edgekit

pytestmark = pytest.mark.installs  # fills a cache on first use (tests/helpers/caches.py)

PROBE = Path(__file__).resolve().parents[1] / "helpers" / "mediapipe_probe.py"


@pytest.fixture(scope="session")
def mediapipe_python() -> str:
    try:
        return caches.mediapipe_python()
    except caches.CacheUnavailable as exc:
        missing(str(exc))


def _mediapipe(python: str, *arguments: str) -> None:
    done = subprocess.run([python, str(PROBE), *arguments], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


# max |score difference| allowed against edgekit: float models to float precision (measured 4.9e-7).
# Integer kernels round differently between TFLite builds (MediaPipe bundles its own): the dynamic-range
# model measured 1.4e-4 and 5.5e-4, and the uint8 model 14 and 10 output steps of 1/256 on two trained models
# (LiteRT's own XNNPACK and built-in kernels differ on the same uint8 input too). Float models give the same top-1
# everywhere; an integer model may flip an image whose two best scores edgekit puts closer than twice that rounding.
TOLERANCE = {"fp32": 1e-5, "fp16": 1e-5, "dynamic": 1e-3, "uint8": 16 / 256}
MODES = tuple(TOLERANCE)


def test_mediapipe_image_classifier_gives_edgekits_answers(mediapipe_python, exported, shapes_splits, tmp_path):
    test = shapes_splits[2]
    models = {mode: exported.result(f"tflite:{mode}").path for mode in MODES}
    job, out = tmp_path / "job.json", tmp_path / "out.json"
    job.write_text(json.dumps({"models": list(models.values()), "images": list(test.sources)}))
    _mediapipe(mediapipe_python, "classify", str(job), str(out))
    answers = json.loads(out.read_text())
    for mode, path in models.items():
        with edgekit.load(path) as model:
            ours = [model.predict(source, top_k=3) for source in test.sources]
        theirs = answers[path]
        assert len(theirs) == len(test.sources)
        labels = [max(row, key=lambda pair: pair[1])[0] for row in theirs]
        scores = np.array([[score for _, score in row] for row in theirs])
        edgekit_scores = np.array([[dict(r.top_k)[label] for label in model.labels] for r in ours])
        assert [label for label, _ in theirs[0]] == list(model.labels)
        difference = float(np.abs(scores - edgekit_scores).max())
        # a different top-1 is allowed only on a near tie: each score may move by the tolerance, so edgekit's two
        # scores must be within twice it (measured: one image of 180, 17 steps apart, on one trained uint8 model)
        flips = [i for i, (label, r) in enumerate(zip(labels, ours)) if label != r.label]
        for i in flips:
            margin = ours[i].score - edgekit_scores[i][list(model.labels).index(labels[i])]
            assert margin <= 2 * TOLERANCE[mode], (
                f"{mode}: image {i} MediaPipe says {labels[i]}, edgekit {ours[i].label} by {margin:.3g}"
            )
        print(
            f"MediaPipe vs edgekit, tflite:{mode}: top-1 identical on {len(labels) - len(flips)} of {len(labels)} "
            "images "
            f"(the rest near ties), max |score difference| {difference:.2g}"
        )
        assert len(flips) <= (0 if mode in ("fp32", "fp16") else len(labels) // 100), mode
        assert difference <= TOLERANCE[mode], mode


def test_edgekit_reads_metadata_written_by_mediapipe(mediapipe_python, tiny_model, tmp_path):
    import tensorflow as tf

    plain = tmp_path / "plain.tflite"
    plain.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny_model).convert())
    written = tmp_path / "mediapipe_written.tflite"
    _mediapipe(mediapipe_python, "write-metadata", str(plain), str(written), "127.5", "127.5", "red", "green", "blue")
    image = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    reference = np.asarray(tiny_model((image[None].astype(np.float32) - 127.5) / 127.5))[0]  # by hand
    with edgekit.load(written) as model:
        assert model.labels == ("red", "green", "blue")
        assert model.preprocessing.scale == pytest.approx(1 / 127.5) and model.preprocessing.offset == pytest.approx(
            -1.0
        )
        assert (
            model.contract_sources["labels"].startswith("labels.txt")
            or "TENSOR_AXIS_LABELS" in model.contract_sources["labels"]
        )
        result = model.predict(image, top_k=3)
    assert result.label == ("red", "green", "blue")[int(reference.argmax())]
    np.testing.assert_allclose([dict(result.top_k)[label] for label in ("red", "green", "blue")], reference, atol=1e-5)

    # round trip: edgekit's contract written onto MediaPipe's file keeps its metadata and labels.txt
    from runtimes.contract import ModelContract
    from runtimes.metadata.standard import STANDARD_METADATA_NAME, associated_files
    from runtimes.metadata.tflite import read_metadata, write_metadata

    original = written.read_bytes()
    contract = ModelContract(edgekit.Preprocessing(16, scale=1 / 127.5, offset=-1.0), ("red", "green", "blue"))
    both = tmp_path / "both.tflite"
    both.write_bytes(write_metadata(original, contract.to_signed_json().encode()))
    data = both.read_bytes()
    assert associated_files(data) == associated_files(original) and "labels.txt" in associated_files(data)
    assert read_metadata(data, STANDARD_METADATA_NAME) == read_metadata(original, STANDARD_METADATA_NAME)
    job, out = tmp_path / "job.json", tmp_path / "out.json"
    image_file = tmp_path / "image.png"
    import cv2

    cv2.imwrite(str(image_file), image[:, :, ::-1])
    job.write_text(json.dumps({"models": [str(both)], "images": [str(image_file)]}))
    _mediapipe(mediapipe_python, "classify", str(job), str(out))  # MediaPipe still reads the rewritten file
    (row,) = json.loads(out.read_text())[str(both)]
    assert [label for label, _ in row] == ["red", "green", "blue"]
    np.testing.assert_allclose([score for _, score in row], reference, atol=1e-5)
    with edgekit.load(both) as model:
        assert model.contract == contract and model.contract_sources == {}  # edgekit's own contract wins


def test_the_models_shipped_with_mediapipe_load_and_give_every_output(mediapipe_python):
    """MediaPipe's 14 bundled models: detectors, landmarks and segmenters, none of them a classifier."""
    from runtimes.errors import InputError, ModelLoadError

    site = Path(
        subprocess.run(
            [mediapipe_python, "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    models = sorted(site.glob("modules/*/*.tflite"))
    assert len(models) == 14
    loaded, custom = 0, []
    for path in models:
        try:
            model = edgekit.load(path, **({} if _has_contract(path) else {"preprocessing": _guess(path)}))
        except ModelLoadError as error:
            assert "valid TFLite model, but it needs the custom op" in str(error), str(error)
            custom.append(path.name)
            continue
        with model:
            outputs = model.run_all(np.zeros(model.input_spec.shape, model.input_spec.dtype))
            assert len(outputs) == len(model.output_specs) >= 1
            assert [array.shape for array in outputs.values()] == [tuple(s.shape) for s in model.output_specs]
            with pytest.raises(InputError, match="use run_all"):
                model.predict(np.zeros((64, 64, 3), np.uint8))
        loaded += 1
    assert loaded == 13 and custom == ["face_landmark_with_attention.tflite"]


def _has_contract(path):
    from runtimes.metadata.standard import STANDARD_METADATA_NAME
    from runtimes.metadata.tflite import read_metadata

    return read_metadata(path.read_bytes(), STANDARD_METADATA_NAME) is not None


def _guess(path):
    """The preprocessing a user would pass for a model without metadata: its input size, pixels / 255."""
    from ai_edge_litert.interpreter import Interpreter

    shape = Interpreter(model_content=path.read_bytes()).get_input_details()[0]["shape"]
    return edgekit.Preprocessing((int(shape[1]), int(shape[2])))


UPSCALE = 20  # MediaPipe reports boxes in whole pixels: on a 20x copy, truncation moves an edge by under 0.05 input
# pixels (at 10x, one of 294 detections of one trained detector measured IoU 0.982 against MediaPipe's whole pixels)


MEDIAPIPE_DETECTORS = ("tflite:mediapipe", "tflite:mediapipe_int8")


@pytest.fixture(scope="module")
def mediapipe_detections(mediapipe_python, trained_detector, tmp_path_factory):
    """Both MediaPipe detector files, exported and checked against Keras on the test split, and what MediaPipe Tasks'
    ObjectDetector finds with each, from the file alone.

    MediaPipe gets each scene enlarged UPSCALE times (nearest neighbour: its bilinear resize back to 64x64
    samples between equal pixels, so it sees the very same input); edgekit predicts the original.
    """
    import cv2

    result, train, test = trained_detector
    folder = tmp_path_factory.mktemp("mediapipe-detectors")
    report = edgekit.export(
        result.model_path, list(MEDIAPIPE_DETECTORS), out_dir=folder, calibration=train, check=test, progress=False
    )
    images = []
    for i, source in enumerate(test.sources):
        big = cv2.resize(cv2.imread(source), None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_NEAREST)
        images.append(str(folder / f"{i:03d}.png"))
        cv2.imwrite(images[-1], big)
    paths = [report.result(target).path for target in MEDIAPIPE_DETECTORS]
    job, out = folder / "job.json", folder / "out.json"
    job.write_text(json.dumps({"models": paths, "images": images}))
    _mediapipe(mediapipe_python, "detect", str(job), str(out))
    return report, test, json.loads(out.read_text())


def _compared(path: str, test, theirs):
    """Per test image, edgekit's detections on the file and MediaPipe's (boxes in source pixels, scores, classes)."""
    ours, mediapipe = [], []
    with edgekit.load(path) as model:
        for source, found in zip(test.sources, theirs):
            result = model.predict(source)  # the contract's default threshold, as MediaPipe's from the metadata
            ours.append((result.boxes, result.scores, result.classes))
            boxes = np.array([[x, y, x + w, y + h] for *_, x, y, w, h in found], np.float32).reshape(-1, 4)
            classes = np.array([test.labels.index(label) for label, *_ in found], np.int64)
            mediapipe.append((boxes / UPSCALE, np.array([f[2] for f in found], np.float32), classes))
    return ours, mediapipe


def test_mediapipe_object_detector_gives_edgekits_detections(mediapipe_detections):
    """tflite:mediapipe through MediaPipe Tasks' ObjectDetector: every detection edgekit gives, to float precision."""
    from runtimes.boxes import box_iou

    report, test, theirs = mediapipe_detections
    exported = report.result("tflite:mediapipe")
    assert exported.status == "ok", exported.error
    assert exported.agreement == 1.0 and abs(exported.accuracy_delta) < 0.05  # NMS in the graph: Keras' mAP
    assert any("ObjectDetector reads it" in note for note in exported.consumers)
    ours, mediapipe = _compared(exported.path, test, theirs[exported.path])
    compared, worst_iou, worst_score = 0, 1.0, 0.0
    for (boxes, scores, classes), (their_boxes, their_scores, their_classes) in zip(ours, mediapipe):
        assert len(boxes) == len(their_boxes)
        if not len(boxes):
            continue
        scaled, found = boxes * UPSCALE, their_boxes * UPSCALE
        # MediaPipe's BoundingBox is integers: origin and size each truncated (a box shrinks by up to 2 px)
        whole = np.floor(scaled[:, :2])
        truncated = np.concatenate([whole, whole + np.floor(scaled[:, 2:] - scaled[:, :2])], axis=1)
        ious = box_iou(truncated, found)
        for i in range(len(boxes)):
            j = int(np.argmax(ious[i]))
            assert their_classes[j] == classes[i]  # MediaPipe names the class from labels.txt
            assert np.abs(scaled[i] - found[j]).max() <= 2.0
            worst_iou = min(worst_iou, float(ious[i, j]))
            worst_score = max(worst_score, abs(float(their_scores[j] - scores[i])))
            compared += 1
    print(
        f"MediaPipe ObjectDetector vs edgekit: {compared} detections, IoU >= {worst_iou:.4f} (integer boxes), "
        f"scores within {worst_score:.2e}"
    )
    assert compared >= 50
    assert worst_iou >= 0.99 and worst_score <= 1e-4


def test_mediapipe_reads_the_int8_detector_as_edgekit_does(mediapipe_detections):
    """tflite:mediapipe_int8 (uint8 pixels in, float outputs) through MediaPipe's ObjectDetector.

    MediaPipe bundles its own TFLite, whose integer kernels round differently (see TOLERANCE): measured on the
    fixture's detector, 95% of detections paired both ways at IoU 0.5, matched scores within 0.012, and COCO
    mAP 0.0983 from MediaPipe's boxes against 0.0951 from edgekit's and 0.0980 from Keras.
    """
    from edgekit.metrics.detection import detection_agreement, map_of

    report, test, theirs = mediapipe_detections
    exported, float_file = report.result("tflite:mediapipe_int8"), report.result("tflite:mediapipe")
    assert exported.status == "ok", exported.error
    assert exported.accuracy_delta >= -1.5, exported  # mAP@[.5:.95] points against Keras
    assert exported.size_bytes < 0.35 * float_file.size_bytes
    assert any(note.startswith("mixed precision:") and "postprocess" in note for note in exported.notes)
    assert any("ObjectDetector reads it" in note for note in exported.consumers)
    ours, mediapipe = _compared(exported.path, test, theirs[exported.path])
    agreement = detection_agreement([(b, c) for b, _, c in ours], [(b, c) for b, _, c in mediapipe], iou=0.5)
    ours_map, their_map = map_of(test, ours).map, map_of(test, mediapipe).map
    print(f"MediaPipe on int8: {agreement}, mAP {their_map:.4f} (edgekit {ours_map:.4f})")
    assert agreement.reference_count >= 50 and agreement.agreement >= 0.9
    assert abs(their_map - ours_map) <= 0.01  # one mAP point


def test_mediapipe_image_segmenter_gives_edgekits_masks(
    mediapipe_python, segmenter_exported, trained_segmenter, tmp_path
):
    """The float TFLite segmentation model through MediaPipe Tasks' ImageSegmenter, from the file alone (its standard
    metadata: normalization, labels, the output as an image): its category mask is edgekit's on >= 99.5% of the
    pixels of every test image. The test scenes are the model's input size, where neither side resizes."""
    _, _, test = trained_segmenter
    path = segmenter_exported.result("tflite:fp32").path
    job, out = tmp_path / "job.json", tmp_path / "out.json"
    job.write_text(json.dumps({"models": [path], "images": list(test.sources)}))
    _mediapipe(mediapipe_python, "segment", str(job), str(out))
    theirs = json.loads(out.read_text())[path]
    same = []
    with edgekit.load(path) as model:
        for source, mask in zip(test.sources, theirs):
            ours = model.predict(source).mask
            assert np.asarray(mask).shape == ours.shape
            same.append(float(np.mean(np.asarray(mask) == ours)))
    print(f"pixels MediaPipe gives edgekit's class: worst image {min(same):.4f}, mean {np.mean(same):.4f}")
    assert min(same) >= 0.995 and len(same) >= 40
