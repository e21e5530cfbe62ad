"""predict --source from the command line, and the samples run headless on generated video."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edgekit.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


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
    code = main(["predict", exported.result("onnx:int8").path, "--source", str(path), "--json", "--every", "3",
                 "--save", str(out), "--threshold", "0.6"])
    assert code == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["source"] for r in records] == [str(i) for i in range(0, 30, 3)]
    correct = sum(r["best"] == labels[int(r["source"])] for r in records)
    assert correct >= 8  # same images as the test split, through video compression
    assert all(r["label"] in (None, r["best"]) and "latency_ms" in r and "age_ms" in r for r in records)
    assert "10 result(s); source delivered 30, dropped 0 stale, skipped 0" in captured.err
    video = cv2.VideoCapture(str(out))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    video.release()


def test_predict_without_input_or_display_is_a_clear_error(exported, clip, capsys, monkeypatch):
    assert main(["predict", exported.result("tflite:int8").path]) == 2
    assert "nothing to classify: give image files or --source SPEC" in capsys.readouterr().err
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["predict", exported.result("tflite:int8").path, "--source", str(clip[0]), "--show"]) == 2
    assert "--show needs a display (DISPLAY is not set); use --save out.mp4" in capsys.readouterr().err


def test_camera_classifier_sample_runs_headless(exported, clip, tmp_path):
    out = tmp_path / "camera.mp4"
    result = subprocess.run(
        [sys.executable, str(SAMPLES / "camera_classifier.py"), exported.result("tflite:int8").path,
         "--source", str(clip[0]), "--headless", "--save", str(out)],
        capture_output=True, text=True, timeout=120,
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
