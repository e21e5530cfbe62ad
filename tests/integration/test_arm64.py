"""The Raspberry Pi bundle on emulated arm64 (Debian bookworm, Python 3.11, qemu user mode).

scripts/arm64-sysroot.sh builds the userland once (cached). Each bundle's runner then runs
under qemu on a folder of images and on a video, and must agree with the same runner on x86:
classifiers give identical top-1, scores within 1e-5 for float models and within one output step for int8
(XNNPACK requantizes a per-tensor int8 fully connected layer in fixed point on ARM and in float on x86, so a
value on a half step can land one step apart; per-channel convolutions use float requantization on both);
detectors give the same detections and ids, boxes within 1e-3 pixels (the JSON's resolution; int8
detectors compute their boxes in float32 too), scores within 1e-5 for float models and identical
for int8.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import pytest
from helpers import caches
from helpers.needs import missing

from edgekit.deploy import extract_bundle, rpi
from runtimes import open_model

pytestmark = pytest.mark.installs  # fills a cache on first use (tests/helpers/caches.py)

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"tflite:fp32": 1e-5, "tflite:int8": "one step", "onnx:fp32": 1e-5}
# (box tolerance in source pixels, score tolerance). The int8 detector's scores come from its int8 heat: identical. Its
# boxes do not: mixed precision keeps the box sides and decoding in float32 (the detection host task's float_scopes),
# where x86 and ARM kernels may round one ulp apart, which can move the JSON's third decimal (seen: 0.001 px).
DETECTOR_TARGETS = {"tflite:fp32": (1e-3, 1e-5), "tflite:int8": (1e-3, 0.0), "onnx:fp32": (1e-3, 1e-5)}


@pytest.fixture(scope="session")
def arm64():
    """Paths of the emulated userland (tests/helpers/caches.py), or missing(...) saying why it could not be set up."""
    try:
        return caches.arm64_userland()
    except caches.CacheUnavailable as exc:
        missing(str(exc))


@pytest.fixture(scope="module")
def inputs(shapes_splits, tmp_path_factory):
    test = shapes_splits[2]
    root = tmp_path_factory.mktemp("pi-inputs")
    folder = root / "images"
    folder.mkdir()
    for source in test.sources[::9]:
        shutil.copy(source, folder / Path(source).name)
    video = root / "clip.avi"  # lossless FFV1: both OpenCV builds decode the very same pixels
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (64, 64))
    for source in test.sources[:15]:
        writer.write(cv2.imread(source))
    writer.release()
    return {"folder": folder, "video": video}


@pytest.fixture(scope="module")
def detector_inputs(trained_detector, tracking_clip, tmp_path_factory):
    """Eight test scenes in a folder, and the tracking clip (lossless FFV1)."""
    test = trained_detector[2]
    folder = tmp_path_factory.mktemp("pi-detector-inputs") / "images"
    folder.mkdir()
    for source in test.sources[::6][:8]:
        shutil.copy(source, folder / Path(source).name)
    return {"folder": folder, "video": tracking_clip.path}


def _run_together(runs):
    """Each (command, cwd, env) run at once, their JSON lines in order: an emulated run is single-threaded, so
    two on two cores take the time of one. Output goes to files: a full pipe would stall a run until its turn."""
    with contextlib.ExitStack() as stack:
        files = [
            (stack.enter_context(tempfile.TemporaryFile("w+")), stack.enter_context(tempfile.TemporaryFile("w+")))
            for _ in runs
        ]
        started = [
            subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd, env=env)
            for (command, cwd, env), (out, err) in zip(runs, files)
        ]
        try:
            codes = [process.wait(timeout=600) for process in started]
        finally:
            for process in started:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        outputs = []
        for code, (out, err) in zip(codes, files):
            out.seek(0), err.seek(0)
            assert code == 0, err.read()[-2000:]
            outputs.append([json.loads(line) for line in out.read().splitlines()])
    return outputs


def _both(bundle_archive, arm64, tmp_path, sources):
    """{name: (the runner's JSON lines on the emulated Pi, on x86)} for each name's arguments, every run at once,
    from the same extracted bundle."""
    sysroot, site, qemu = arm64
    folder = extract_bundle(bundle_archive, tmp_path / "pi")
    pi_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": site,
        "PYTHONNOUSERSITE": "1",
        "QEMU_CPU": "cortex-a72",
        "HOME": str(tmp_path),
    }  # a Pi 4; qemu's default CPU gives wrong int8
    x86_env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    outputs = iter(
        _run_together(
            [
                run
                for args in sources.values()
                for run in (
                    ([qemu, "-L", sysroot, f"{sysroot}/usr/bin/python3.11", "run.py", *args], folder, pi_env),
                    ([sys.executable, "run.py", *args], folder, x86_env),
                )
            ]
        )
    )
    return {name: (next(outputs), next(outputs)) for name in sources}


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_bundle_on_emulated_pi_matches_x86(target, arm64, exported, inputs, tmp_path):
    bundle = rpi(exported.result(target).path, tmp_path / "dist" / "bundle")
    tolerance = TARGETS[target]
    if tolerance == "one step":  # the output's quantization step, e.g. 1/256 for a uint8 softmax
        with open_model(exported.result(target).path) as model:
            tolerance = model.output_specs[0].quantization.scale
        assert 0 < tolerance <= 1 / 128, tolerance
    sources = {name: ["--source", str(source), "--top-k", "3"] for name, source in inputs.items()}
    for name, (on_pi, on_x86) in _both(bundle.archive, arm64, tmp_path, sources).items():
        assert len(on_pi) == len(on_x86) > 0, name
        for pi, x86 in zip(on_pi, on_x86):
            assert pi["source"] == x86["source"] and pi["best"] == x86["best"], (name, pi, x86)
            pi_scores, x86_scores = dict(pi["top_k"]), dict(x86["top_k"])
            assert pi_scores.keys() == x86_scores.keys()
            for label, score in x86_scores.items():
                assert abs(pi_scores[label] - score) <= tolerance + 1e-6, (name, label, pi_scores[label], score)


@pytest.mark.slow
@pytest.mark.parametrize("target", list(DETECTOR_TARGETS))
def test_detector_bundle_on_emulated_pi_matches_x86(target, arm64, detector_exported, detector_inputs, tmp_path):
    bundle = rpi(detector_exported.result(target).path, tmp_path / "dist" / "bundle")
    assert "detections (label, class index, score, box" in (bundle.folder / "README.md").read_text()
    assert (bundle.folder / "edgekit-detector.service").is_file()
    tolerance, score_tolerance = DETECTOR_TARGETS[target]
    found, worst = 0, 0.0
    sources = {
        name: ["--source", str(source), *(["--max-frames", "16", "--track"] if name == "video" else [])]
        for name, source in detector_inputs.items()
    }
    for name, (on_pi, on_x86) in _both(bundle.archive, arm64, tmp_path, sources).items():
        assert len(on_pi) == len(on_x86) > 0, name
        for pi, x86 in zip(on_pi, on_x86):
            assert pi["source"] == x86["source"], name
            assert [(d["label"], d.get("id")) for d in pi["detections"]] == [
                (d["label"], d.get("id")) for d in x86["detections"]
            ]
            for a, b in zip(pi["detections"], x86["detections"]):
                worst = max(worst, *(abs(u - v) for u, v in zip(a["box"], b["box"])))
                assert abs(a["score"] - b["score"]) <= score_tolerance, (name, a, b)
            found += len(x86["detections"])
    print(f"{target}: {found} detections, largest box difference {worst:.4f} px (JSON boxes carry 3 decimals)")
    assert worst <= tolerance + 1e-9  # within 1e-3 px: the JSON's resolution
    assert found >= 16  # the comparison compared boxes, not empty lists


@pytest.mark.slow
def test_a_face_detector_bundle_on_emulated_pi_matches_x86(arm64, tmp_path):
    """MediaPipe's BlazeFace bundled with the contract edgekit ships: on the emulated Pi its runner finds the same
    faces and landmarks as on x86, from non-square photos (the affine resize is OpenCV's warp on both)."""
    try:
        model, photos = caches.mediapipe_face_model(), caches.skimage_photos()
    except caches.CacheUnavailable as exc:
        missing(str(exc))
    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = cv2.imread(str(photos / "astronaut.png"))
    cv2.imwrite(str(folder / "tall.png"), astronaut[10:500, 120:400])
    cv2.imwrite(str(folder / "odd.png"), cv2.resize(astronaut[30:470, 90:430], (257, 333)))
    bundle = rpi(model, tmp_path / "dist" / "faces", contract="mediapipe_face_detection_short_range")
    ((on_pi, on_x86),) = _both(bundle.archive, arm64, tmp_path, {"photos": ["--source", str(folder)]}).values()
    assert len(on_pi) == len(on_x86) == 2
    for pi, x86 in zip(on_pi, on_x86):
        assert pi["source"] == x86["source"] and len(pi["objects"]) == len(x86["objects"]) == 1
        (a,), (b,) = pi["objects"], x86["objects"]
        # a float model: ARM's and x86's kernels (and OpenCV's warp) round apart; measured up to 0.17 px, within the
        # budget against MediaPipe's own pipeline (1 px)
        box_gap = max(abs(u - v) for u, v in zip(a["box"], b["box"]))
        point_gap = max(abs(p[key] - q[key]) for p, q in zip(a["keypoints"], b["keypoints"]) for key in "xy")
        print(
            f"{pi['source']}: box {box_gap:.3f} px, points {point_gap:.3f} px, score {abs(a['score'] - b['score']):.2e}"
        )
        assert box_gap <= 0.25 and point_gap <= 0.25 and abs(a["score"] - b["score"]) <= 1e-3


@pytest.mark.slow
def test_an_integer_keypoint_bundle_on_emulated_pi_matches_x86(arm64, keypoints_exported, tmp_path):
    """The trained keypoint model's int8 file (integer throughout, decoded in NumPy) on the emulated Pi: the same
    objects as on x86 from non-square scenes, boxes, points and scores within one step of the output they come
    from (ARM's and x86's integer kernels may requantize one step apart)."""
    from edgekit.data.synthetic import make_shapes_keypoints

    path = keypoints_exported.result("tflite:int8").path
    with open_model(path) as model:
        steps = [spec.quantization.scale for spec in model.output_specs]  # heat, box sides, offsets, visibilities
    scale = 112 / 96  # input pixels -> the 72x112 sources' pixels (letterboxed)
    box_step, point_step = steps[1] * scale + 1e-3, steps[2] * 4 * scale + 1e-3  # offsets are in 4-pixel cells
    root = make_shapes_keypoints(tmp_path / "scenes", n_images=8, image_size=(72, 112), seed=9)
    bundle = rpi(path, tmp_path / "dist" / "points")
    sources = {"scenes": ["--source", str(root.parent / "images"), "--threshold", "0.3"]}
    ((on_pi, on_x86),) = _both(bundle.archive, arm64, tmp_path, sources).values()
    assert len(on_pi) == len(on_x86) == 8
    found = worst_box = worst_point = 0.0
    for pi, x86 in zip(on_pi, on_x86):
        assert pi["source"] == x86["source"] and [o["label"] for o in pi["objects"]] == [
            o["label"] for o in x86["objects"]
        ]
        for a, b in zip(pi["objects"], x86["objects"]):
            worst_box = max(worst_box, *(abs(u - v) for u, v in zip(a["box"], b["box"])))
            worst_point = max(
                worst_point, *(abs(p[key] - q[key]) for p, q in zip(a["keypoints"], b["keypoints"]) for key in "xy")
            )
            assert abs(a["score"] - b["score"]) <= steps[0] + 1e-6
        found += len(x86["objects"])
    print(f"{found:.0f} objects; largest box difference {worst_box:.3f} px, point {worst_point:.3f} px")
    assert found >= 5 and worst_box <= box_step and worst_point <= point_step  # measured: 7 objects, identical
