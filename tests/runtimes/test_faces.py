"""Faces in a photo with a model nobody here trained: MediaPipe's BlazeFace (face_detection_short_range.tflite, from
the mediapipe 0.10.14 wheel) loads in edgekit with the contract edgekit ships, and finds the faces MediaPipe's own
face detection finds on real photographs (scikit-image's data images), at their own and at odd, non-square sizes.

The contract's affine resize is MediaPipe's ImageToTensor (the whole image warped onto 128x128, padding left
fractional); with edgekit's letterbox instead the same decoder misses MediaPipe's landmarks by pixels.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import caches
from helpers.needs import missing

import edgekit
from runtimes.boxes import box_iou
from runtimes.contract import ResizeMode
from runtimes.loading import given_contract

pytestmark = pytest.mark.installs  # fills the MediaPipe and photographs caches on first use

PROBE = Path(__file__).resolve().parents[1] / "helpers" / "mediapipe_probe.py"
CONTRACT = "mediapipe_face_detection_short_range"


@pytest.fixture(scope="module")
def mediapipe() -> tuple[str, Path]:
    """(MediaPipe's python, the BlazeFace model inside its wheel)."""
    try:
        return caches.mediapipe_python(), caches.mediapipe_face_model()
    except caches.CacheUnavailable as exc:
        missing(str(exc))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """The astronaut portrait as shipped (512x512), cropped non-square, and scaled to odd sizes (the padding's
    offsets then fall between pixels); the cameraman; and photographs without a face (coffee, a cat)."""
    try:
        folder = caches.skimage_photos()
    except caches.CacheUnavailable as exc:
        missing(str(exc))
    astronaut, camera = (cv2.imread(str(folder / name), cv2.IMREAD_COLOR) for name in ("astronaut.png", "camera.png"))
    out = tmp_path_factory.mktemp("photos")
    variants = {
        "astronaut.png": astronaut,
        "astronaut_tall.png": astronaut[10:500, 120:400],  # 490x280
        "astronaut_wide.png": astronaut[40:300, 0:512],  # 260x512
        "astronaut_odd.png": cv2.resize(astronaut[30:470, 90:430], (257, 333), interpolation=cv2.INTER_AREA),
        "astronaut_large.png": cv2.resize(astronaut, (1031, 767), interpolation=cv2.INTER_CUBIC),
        "camera.png": camera,
        "coffee.png": cv2.imread(str(folder / "coffee.png"), cv2.IMREAD_COLOR),
        "chelsea.png": cv2.imread(str(folder / "chelsea.png"), cv2.IMREAD_COLOR),
    }
    paths = []
    for name, image in variants.items():
        cv2.imwrite(str(out / name), image)
        paths.append(out / name)
    return paths


@pytest.fixture(scope="module")
def theirs(mediapipe, photos, tmp_path_factory) -> list[list]:
    """MediaPipe's own face detection on each photograph: [score, x0, y0, x1, y1, six (x, y)] per face, pixels."""
    work = tmp_path_factory.mktemp("mediapipe-faces")
    job, out = work / "job.json", work / "out.json"
    job.write_text(json.dumps({"images": [str(p) for p in photos]}))
    done = subprocess.run([mediapipe[0], str(PROBE), "faces", str(job), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def _compare(model, photos, theirs) -> tuple[int, float, float, float]:
    """(faces matched, smallest box IoU, largest landmark error in pixels, largest score difference); every
    photograph must give as many faces as MediaPipe's."""
    matched, worst_iou, worst_point, worst_score = 0, 1.0, 0.0, 0.0
    for path, expected in zip(photos, theirs):
        found = model.predict(str(path))
        assert len(found) == len(expected), (path.name, str(found), expected)
        if not expected:
            continue
        ious = box_iou(found.boxes, np.array([face[1:5] for face in expected], np.float32))
        for i, j in enumerate(ious.argmax(axis=1)):
            worst_iou = min(worst_iou, float(ious[i, j]))
            worst_point = max(worst_point, float(np.abs(found.points[i] - np.array(expected[j][5])).max()))
            worst_score = max(worst_score, abs(found[i].score - expected[j][0]))
            matched += 1
    return matched, worst_iou, worst_point, worst_score


def test_blazeface_in_edgekit_finds_mediapipes_faces(mediapipe, photos, theirs):
    with edgekit.load(mediapipe[1], contract=CONTRACT) as model:
        assert model.contract.task == "keypoints" and model.contract.preprocessing.resize is ResizeMode.AFFINE
        matched, iou, point, score = _compare(model, photos, theirs)
        face = model.predict(str(photos[0]))[0]
    assert matched >= 5  # the astronaut at every size (the cameraman's profile MediaPipe may or may not find)
    assert iou >= 0.95 and point <= 1.0 and score <= 1e-3, (iou, point, score)
    left, right, nose = face.point("left_eye"), face.point("right_eye"), face.point("nose_tip")
    x0, y0, x1, y1 = face.box
    assert x0 < right.x < nose.x < left.x < x1 and y0 < nose.y < y1  # the subject's right eye is on the image's left


def test_the_letterbox_resize_misses_mediapipes_landmarks(mediapipe, photos, theirs):
    """The same decoder fed by a letterbox that rounds its padding and resizes with pixel centres: off by
    pixels on the odd sizes, which is why the contract says `affine`."""
    contract = given_contract(CONTRACT)
    letterboxed = replace(contract, preprocessing=replace(contract.preprocessing, resize=ResizeMode.LETTERBOX))
    with edgekit.load(mediapipe[1], contract=letterboxed) as model:
        errors = []
        for path, expected in zip(photos, theirs):
            found = model.predict(str(path))
            if expected and len(found):
                errors.append(float(np.abs(found.points[0] - np.array(expected[0][5])).max()))
    assert max(errors) > 2.0, errors


def test_the_result_is_drawn_and_written_as_json(mediapipe, photos):
    from runtimes.tasks import task_for

    task = task_for("keypoints")
    with edgekit.load(mediapipe[1], contract=CONTRACT) as model:
        result = model.predict(str(photos[1]))
    record = task.record({"source": photos[1].name}, result, None)
    (face,) = record["objects"]
    assert [k["name"] for k in face["keypoints"]][:3] == ["right_eye", "left_eye", "nose_tip"]
    assert task.line(record).startswith(f"{photos[1].name}: 1 object(s): face 0.")
    image = cv2.imread(str(photos[1]))
    before = image.copy()
    task.draw(image, result, model.contract.labels)
    x, y = (int(round(v)) for v in result.points[0][2])  # the nose tip: a dot drawn on it
    assert not np.array_equal(image[y, x], before[y, x])


def test_edgekit_predict_takes_the_contract_by_name(mediapipe, photos, capsys):
    from edgekit.cli import main

    contract = ["--contract", CONTRACT]
    assert main(["predict", str(mediapipe[1]), str(photos[0]), *contract, "--json", "--threshold", "0.6"]) == 0
    (face,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["objects"]
    assert face["label"] == "face" and face["score"] >= 0.6 and len(face["keypoints"]) == 6
    assert main(["predict", str(mediapipe[1]), str(photos[0]), "--contract", "no_such_contract"]) != 0
    assert "neither a contract JSON file nor one edgekit ships" in capsys.readouterr().err


def test_a_face_is_tracked_across_frames_with_its_points(mediapipe, photos, tmp_path):
    """A camera panning across the portrait (frames of a fixed size, the face moving): one id on every frame once
    confirmed, and each tracked object still carries its six points."""
    image = cv2.imread(str(photos[0]))
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        cv2.imwrite(str(frames / f"{i:02d}.png"), image[40 : 40 + 360, 12 * i : 12 * i + 400])  # 360x400
    with edgekit.load(mediapipe[1], contract=CONTRACT) as model:
        results = [frame.result for frame in model.stream(str(frames), track=True)]
    ids = [[o.track_id for o in result] for result in results]
    assert ids[0] == [None] and all(found == [1] for found in ids[1:]), ids  # an id from its second sighting
    noses = [result[0].point("nose_tip").x for result in results[1:]]
    assert all(later < earlier for earlier, later in zip(noses, noses[1:]))  # the window moves right: the face left
    assert "#1 face" in str(results[-1])


def test_edgekit_serve_answers_with_faces_and_their_points(mediapipe, photos):
    """`edgekit serve` on the third-party file with its contract: the REST answer is predict()'s, points included."""
    import base64

    from helpers.needs import need_module

    httpx = need_module("httpx", extra="dev")
    need_module("uvicorn", extra="serve")
    from runtimes.serving import start

    image = cv2.imread(str(photos[2]))  # the wide crop, 260x512
    body = {"instances": [{"b64": base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()}]}
    with start(mediapipe[1], port=0, token="t0ken", contract=CONTRACT) as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer t0ken"}, timeout=30) as client:
            answer = client.post("/v1/models/face_detection_short_range:predict", json=body)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    with edgekit.load(mediapipe[1], contract=CONTRACT) as model:
        expected = model.task.serving_prediction(model.predict(str(photos[2])), model.labels, model.contract.head)
    assert prediction == expected and prediction["count"] == 1 and len(prediction["keypoints"][0]) == 6


def test_a_pi_bundle_of_the_third_party_model_runs_with_its_contract(mediapipe, photos, tmp_path):
    """The bundle carries the contract (by name: the Pi's runtimes ship it) and its runner prints the faces."""
    import sys

    from edgekit.deploy import rpi

    bundle = rpi(mediapipe[1], tmp_path / "dist" / "faces", contract=CONTRACT, source=str(photos[0]))
    assert json.loads((bundle.folder / "config.json").read_text())["contract"] == CONTRACT
    assert "keypoint model" in (bundle.folder / "README.md").read_text()
    done = subprocess.run([sys.executable, "run.py"], cwd=bundle.folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    with edgekit.load(mediapipe[1], contract=CONTRACT) as model:
        expected = model.task.summary(model.predict(str(photos[0])))
    assert record["objects"] == expected["objects"] and len(record["objects"][0]["keypoints"]) == 6


def test_edgekit_info_describes_the_keypoints_from_the_contract(mediapipe, capsys):
    from edgekit.cli import main

    assert main(["info", str(mediapipe[1]), "--contract", CONTRACT]) == 0
    printed = capsys.readouterr().out
    assert "keypoints: right_eye, left_eye, nose_tip, mouth_center, right_ear_tragion, left_ear_tragion" in printed
    assert "decoding: ssd (SSD anchors) in runtimes (NumPy), weighted NMS" in printed and "affine" in printed
