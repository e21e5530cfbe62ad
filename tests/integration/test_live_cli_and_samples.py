"""predict --source from the command line, and the samples run headless on generated video."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def clip(shapes_splits, tmp_path_factory):
    """A 30-frame video of test images (each shown 3 frames), with its true labels."""
    test = shapes_splits[2]
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (128, 128))
    labels = []
    for source, target in list(zip(test.sources, test.targets))[:10]:
        frame = cv2.resize(cv2.imread(source), (128, 128))
        for _ in range(3):
            writer.write(frame)
            labels.append(test.labels[target])
    writer.release()
    return path, labels


def test_predict_source_prints_json_lines_and_saves_video(exported, clip, tmp_path, capsys):
    path, labels = clip
    out = tmp_path / "annotated.avi"
    code = main(
        [
            "predict",
            exported.result("onnx:int8").path,
            "--source",
            str(path),
            "--json",
            "--every",
            "3",
            "--save",
            str(out),
            "--threshold",
            "0.6",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["frame"] for r in records] == list(range(0, 30, 3)) and {r["source"] for r in records} == {str(path)}
    correct = sum(r["best"] == labels[r["frame"]] for r in records)
    assert correct >= 8  # same images as the test split, through video compression
    assert all(r["label"] in (None, r["best"]) and "latency_ms" in r and "age_ms" in r for r in records)
    assert "10 result(s); source delivered 30, dropped 0 stale, skipped 0" in captured.err
    video = cv2.VideoCapture(str(out))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    video.release()


def test_predict_without_input_or_display_is_a_clear_error(exported, clip, capsys, monkeypatch):
    assert main(["predict", exported.result("tflite:int8").path]) == 2
    assert "nothing to predict on: give image files or --source SPEC" in capsys.readouterr().err
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["predict", exported.result("tflite:int8").path, "--source", str(clip[0]), "--show"]) == 2
    assert "--show needs a display (DISPLAY is not set); use --save out.mp4" in capsys.readouterr().err


def test_camera_classifier_sample_runs_headless(exported, clip, tmp_path):
    out = tmp_path / "camera.mp4"
    result = subprocess.run(
        [
            sys.executable,
            str(SAMPLES / "camera_classifier.py"),
            exported.result("tflite:int8").path,
            "--source",
            str(clip[0]),
            "--headless",
            "--save",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "frames delivered 30, dropped 0, skipped 0; wrote 30 frames to" in result.stdout
    video = cv2.VideoCapture(str(out))
    ok, frame = video.read()
    assert ok and frame.shape == (128, 128, 3)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    video.release()


def test_quickstart_sample_trains_exports_and_predicts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path), "2"])
    runpy.run_path(str(SAMPLES / "quickstart.py"), run_name="__main__")
    text = capsys.readouterr().out
    assert "tflite:int8" in text and "onnx:int8" in text
    frames = [line for line in text.splitlines() if line.startswith("frame ")]
    assert len(frames) == 20 and frames[0].startswith("frame 0: ")
    assert (tmp_path / "small_cnn_int8.tflite").exists() and (tmp_path / "clip.avi").exists()
    assert len(open(SAMPLES / "quickstart.py").read().splitlines()) < 40


# -- detectors: the same commands, with boxes, tracks and a counting line ------------------------


def _line(clip) -> str:
    return ",".join(f"{v:g}" for v in clip.count_line)


def test_predict_source_for_a_detector_writes_boxes_tracks_counts_and_video(
    detector_exported, tracking_clip, tmp_path, capsys
):
    clip = tracking_clip
    out = tmp_path / "tracked.avi"
    code = main(
        [
            "predict",
            detector_exported.result("tflite:int8").path,
            "--source",
            str(clip.path),
            "--json",
            "--save",
            str(out),
            "--track",
            "--count-line",
            _line(clip),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["frame"] for r in records] == list(range(48))  # one JSON line per frame, after its source
    assert {r["source"] for r in records} == {str(clip.path)}
    boxes = np.array([d["box"] for r in records for d in r["detections"]])
    assert len(boxes) >= 3 * 40 and (boxes >= 0).all() and (boxes <= 128).all()  # source pixels of the 128x128 clip
    assert {d["id"] for r in records[10:] for d in r["detections"] if "id" in d} == {1, 2, 3}
    count = records[-1]["count"]
    per_label = count["by_label"].values()
    assert (count["in"], count["out"], count["total"]) == (1, 1, 2)
    assert (sum(c["in"] for c in per_label), sum(c["out"] for c in per_label)) == (1, 1)
    assert "crossed: 2 (in 1, out 1) over the line 64,0,64,128" in captured.err
    video = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    video.release()
    assert len(frames) == 48 and frames[0].shape == (128, 128, 3)
    source = cv2.VideoCapture(str(clip.path))
    _, original = source.read()
    source.release()
    x0, y0, x1, y1 = (int(round(v)) for v in records[0]["detections"][0]["box"])
    edge = np.abs(frames[0][min(y1, 127), x0:x1].astype(int) - original[min(y1, 127), x0:x1]).mean()
    assert edge > 30  # the box outline is drawn where predict put the box


def test_detect_camera_sample_runs_headless_with_tracking(detector_exported, tracking_clip, tmp_path):
    clip = tracking_clip
    out = tmp_path / "detect.mp4"
    result = subprocess.run(
        [
            sys.executable,
            str(SAMPLES / "detect_camera.py"),
            detector_exported.result("onnx:fp32").path,
            "--source",
            str(clip.path),
            "--headless",
            "--save",
            str(out),
            "--track",
            "--count-line",
            _line(clip),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "3 tracked object(s); crossed: 2 (in 1, out 1); frames delivered 48, dropped 0, skipped 0; wrote 48 frames to"
        in result.stdout
    )
    video = cv2.VideoCapture(str(out))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 48
    video.release()


@pytest.mark.parametrize("height, width", [(48, 64), (1080, 1920)])
def test_detection_overlay_is_readable_on_any_frame_size(height, width):
    from runtimes.tasks.detection import draw_detections

    image = np.zeros((height, width, 3), np.uint8)
    box = np.array([[0.1 * width, 0.02 * height, 0.5 * width, 0.6 * height]])  # the label tag must fit above or inside
    draw_detections(image, box, ["circle"], np.array([0.87]), np.array([0]), track_ids=[7])
    column = int(box[0, 0] + 0.02 * width + 3)  # inside the tag, clear of the box's left edge
    tag_rows = np.flatnonzero(image[: int(0.6 * height) - 8, column].any(axis=1))  # above the box's bottom edge
    tag_height = tag_rows.size
    assert 0.015 * height <= tag_height <= 0.4 * height  # text grows with the frame: 1080p gets a tag over 16 px
    interior = image[int(0.3 * height) : int(0.55 * height), int(0.2 * width) : int(0.45 * width)]
    assert not interior.any()  # an outline and a tag: the object itself stays visible
