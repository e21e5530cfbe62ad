"""`edgekit predict --save` writes what it names (an annotated image, a folder of them, a video), every flag that
cannot apply fails before any work, and the overlay's banner keeps off what the task drew."""

import cv2
import numpy as np
import pytest

from edgekit.cli import main
from runtimes.display import banner_corner, draw_overlay
from runtimes.tasks import task_for
from runtimes.tasks.detection import Detection, Detections


@pytest.fixture()
def photos(tmp_path):
    """Two non-square camera-like frames (90x160 and 120x100)."""
    rng = np.random.default_rng(0)
    paths = []
    for name, (height, width) in (("street.png", (90, 160)), ("door.jpg", (120, 100))):
        image = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), np.uint8), (9, 9), 0)
        cv2.imwrite(str(tmp_path / name), image)
        paths.append(tmp_path / name)
    return paths


def test_save_on_one_image_writes_it_annotated_at_its_own_size(tiny_tflite, photos, tmp_path, capsys):
    target = tmp_path / "out" / "annotated.png"
    assert main(["predict", str(tiny_tflite), str(photos[0]), "--save", str(target)]) == 0
    assert f"annotated images: {target} (1 written)" in capsys.readouterr().err
    source, annotated = cv2.imread(str(photos[0])), cv2.imread(str(target))
    assert annotated.shape == source.shape == (90, 160, 3)
    changed = np.any(annotated != source, axis=2)
    assert changed[:10, :10].all()  # the label banner, top left (a classifier draws on nothing else)
    assert not changed[60:, 100:].any()  # the rest is the photo, pixel for pixel


def test_save_to_a_folder_keeps_each_inputs_name(tiny_tflite, photos, tmp_path, capsys):
    folder = tmp_path / "annotated"
    assert main(["predict", str(tiny_tflite), *map(str, photos), "--save", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["door.jpg", "street.png"]
    assert cv2.imread(str(folder / "door.jpg")).shape == (120, 100, 3)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--save", "one.png"], "--save one.png names one image file but 2 images were given; give a folder instead"),
        (["--save", "clip.mp4"], "--save clip.mp4 writes a video of --source frames; for image files give a folder"),
        (["--save", "notes.txt"], "cannot tell what to write from '.txt'; give a video (.mp4"),
        (["--track"], "--track follows objects across a stream's frames: use it with --source"),
        (["--count-line", "0,0,10,10"], "--count-line counts tracked objects across a stream's frames"),
        (["--every", "2"], "--every skips frames of a stream: use it with --source"),
        (["--source", "0"], "give image files or --source, not both"),
    ],
)
def test_flags_that_cannot_apply_fail_before_the_model_loads(photos, tmp_path, extra, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "never-read.tflite"  # loading it would fail with "model file not found"
    assert main(["predict", str(missing), *map(str, photos), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "not found" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["door.jpg", "street.png"]  # nothing written


def test_one_image_file_cannot_take_a_stream(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "m.tflite"), "--source", "0", "--save", "frame.jpg"]) == 2
    assert "--save frame.jpg names one image file but the source gives a stream of frames" in capsys.readouterr().err


def test_the_banner_goes_to_the_corner_with_the_least_drawn_under_it():
    frame, banner = (90, 160), (60, 20)
    assert banner_corner(frame, banner, np.zeros((0, 4))) == (0, 0)
    assert banner_corner(frame, banner, np.array([[0, 0, 40, 30]])) == (100, 0)
    assert banner_corner(frame, banner, np.array([[0, 0, 40, 30], [120, 0, 160, 30], [0, 60, 50, 90]])) == (100, 70)


def test_a_detection_in_the_top_left_corner_of_a_small_frame_stays_visible():
    image = np.full((72, 128, 3), 255, np.uint8)
    found = Detections((Detection("person", 0, 0.9, (2.0, 2.0, 40.0, 50.0)),), 1.0, 0.1, (72, 128))
    canvas = draw_overlay(image, found, fps=30.0, task=task_for("detection"), labels=("person",))
    black = np.all(canvas == 0, axis=2)
    assert not black[4:48, 4:38].any()  # inside the box: no banner
    assert black[:, 64:].any()  # the banner went right instead
