"""What a training run tells and keeps: the data summary first, progress a plain `python script.py` shows, and run
folders that never overwrite an earlier run (runs/train, runs/train2, ...)."""

import io
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import edgekit
from edgekit.data.images import SkippedFile
from edgekit.reports.progress import shown_progress
from edgekit.reports.summary import dataset_summary
from edgekit.run_folders import new_run_folder


def _run(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text("{}")
    return folder


def test_a_folder_holding_a_run_is_kept_and_the_next_free_number_is_used(tmp_path):
    runs = tmp_path / "runs"
    assert new_run_folder(runs / "train") == runs / "train"  # missing: used
    (runs / "train").mkdir(parents=True)
    (runs / "train" / "notes.txt").write_text("the user's")
    assert new_run_folder(runs / "train") == runs / "train"  # no run in it: used, nothing of a run overwritten
    _run(runs / "train")
    assert new_run_folder(runs / "train") == runs / "train2"
    _run(runs / "train2")
    (runs / "train3").mkdir()  # empty: free
    assert new_run_folder(runs / "train") == runs / "train3"
    assert new_run_folder(runs / "train", exist_ok=True) == runs / "train"


def test_progress_is_shown_on_stderr_only_where_the_caller_set_up_no_logging(monkeypatch):
    root, own = logging.getLogger(), logging.getLogger("edgekit")
    monkeypatch.setattr(root, "handlers", [])  # a plain script: nobody configured logging (pytest had)
    stream = io.StringIO()
    level = own.level
    with shown_progress(1, stream):
        logging.getLogger("edgekit.training").info("epoch 1/2  loss 0.5")
        logging.getLogger("edgekit.native").info("C++ chatter")
        logging.getLogger("tensorflow").warning("third-party")
    assert stream.getvalue() == "epoch 1/2  loss 0.5\n"
    assert own.handlers == [] and own.level == level  # put back: the call leaves no trace
    with shown_progress(0, stream):
        logging.getLogger("edgekit.training").info("silent")
    configured = io.StringIO()
    handler = logging.StreamHandler(configured)
    monkeypatch.setattr(root, "handlers", [handler])  # the caller's setup (level WARNING) decides
    with shown_progress(1, stream):
        logging.getLogger("edgekit.training").info("not for this caller")
    assert stream.getvalue() == "epoch 1/2  loss 0.5\n" and configured.getvalue() == ""


def test_the_summary_counts_images_and_objects_per_class_and_split_and_the_skipped_files():
    geometry = edgekit.Preprocessing((8, 12))
    pixels = np.zeros((5, 8, 12, 3), np.uint8)
    skipped = (SkippedFile("a/bad.png", "image unreadable: not an image"), SkippedFile("b/x.png", "image unreadable"))
    images = edgekit.ArrayDataset(pixels, np.array([0, 1, 1, 2, 2]), ("cat", "dog", "eel"))
    images.skipped = skipped
    text = dataset_summary({"train": images.subset([0, 1, 3]), "val": images.subset([2, 4]), "test": None})
    lines = text.splitlines()
    assert lines == [
        "data: 3 classes, 5 images (train 3, val 2)",
        "per class, images in train, val: cat 1 0; dog 1 1; eel 1 1",
        "skipped 2 file(s) or annotation(s):",
        "  2 x image unreadable (e.g. a/bad.png: image unreadable: not an image)",
    ]
    many = edgekit.ArrayDataset(
        np.zeros((40, 8, 12, 3), np.uint8), np.arange(40) % 20, [f"class{i:02d}" for i in range(20)]
    )
    wrapped = dataset_summary({"train": many}, width=60).splitlines()
    assert all(len(line) <= 60 for line in wrapped) and wrapped[2].startswith("  class") and len(wrapped) > 3
    assert " ".join(wrapped).count("; ") == 19  # every class once
    from edgekit.data.detection import DetectionDataset

    boxes = [np.zeros((n, 4), np.float32) for n in (3, 1, 0)]
    classes = [np.array([0, 0, 1]), np.array([1]), np.zeros(0, np.int64)]
    detection = DetectionDataset(pixels[:3], boxes, classes, np.full((3, 2), 8), ("car", "bus"), geometry)
    lines = dataset_summary({"train": detection}).splitlines()
    assert lines == ["data: 2 classes, 3 images (train 3)", "per class, images/objects in train: car 1/2; bus 2/2"]


SCRIPT = """
import edgekit
root = edgekit.datasets.make_shapes("shapes", n_per_class=12, image_size=20, seed=0)
train, val, test = edgekit.ImageFolder(root, image_size=16).split(seed=0)
for _ in range(2):
    result = edgekit.train(train, val, "small_cnn", test=test, epochs=1, batch_size=16)
    assert (result.out_dir / "model.keras").is_file(), result.out_dir
quiet = edgekit.train(train, val, "small_cnn", epochs=1, verbose=0, out_dir="runs/quiet")
"""


@pytest.mark.slow
def test_a_plain_script_sees_the_summary_and_each_epoch_and_a_second_run_goes_to_train2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""  # a library call leaves sys.stdout to its caller
    ours = [line for line in done.stderr.splitlines() if line.startswith(("data:", "epoch", "runs/"))]
    assert ours == [
        "data: 3 classes, 36 images (train 24, val 6, test 6); splits: drawn at random (val 0.15, test 0.15, seed 0): "
        "the data has no splits of its own",
        ours[1],
        "runs/train holds an earlier run: this one writes to runs/train2 (exist_ok=True / --exist-ok reuses it)",
        "data: 3 classes, 36 images (train 24, val 6, test 6); splits: drawn at random (val 0.15, test 0.15, seed 0): "
        "the data has no splits of its own",
        ours[4],
    ], done.stderr[-3000:]
    assert all(line.startswith("epoch 1/1  ") and " val_loss " in line for line in (ours[1], ours[4]))
    assert (tmp_path / "runs" / "train" / "model.keras").is_file()
    assert (tmp_path / "runs" / "train2" / "model.keras").is_file()
    assert (tmp_path / "runs" / "quiet" / "model.keras").is_file()  # verbose=0: trained, and not a line about it


def test_a_run_records_its_splits_and_a_check_counts_what_it_trained_on(tmp_path):
    from edgekit.run_folders import read_run_splits, run_data_root, seen_in_training, write_run_splits

    class Split:
        def __init__(self, *names):
            self.sources = tuple(str(tmp_path / "data" / name) for name in names)

    run = tmp_path / "run"
    run.mkdir()
    write_run_splits(run, {"train": Split("a.png", "b.png"), "val": Split("c.png"), "test": None}, data=tmp_path)
    recorded = read_run_splits(run)
    assert recorded == {"train": [str(tmp_path / "data" / n) for n in ("a.png", "b.png")], "val": [recorded["val"][0]]}
    assert run_data_root(run) == tmp_path.resolve()
    relative = tmp_path / "data" / ".." / "data" / "b.png"  # the same file named another way still matches
    assert seen_in_training([str(relative), str(tmp_path / "data" / "c.png"), "array[0]"], recorded) == 1
    assert seen_in_training(["array[0]", "array[1]"], {"train": ["array[0]"]}) is None  # rows of other arrays
    assert seen_in_training(["x.png"], None) is None and read_run_splits(tmp_path / "none") is None
    assert write_run_splits(tmp_path / "gone", {}) is None  # a non-chief worker's scratch folder, removed


def test_the_report_says_how_held_out_its_check_was_and_lists_long_errors_below_the_table():
    from edgekit.exporter import ExportReport, ExportResult

    long_error = "CalibrationError: " + "the int8 converter could not quantize this graph; " * 5
    results = [
        ExportResult("tflite:fp32", "ok", accuracy=0.9, accuracy_delta=0.0, agreement=1.0),
        ExportResult("tflite:int8", "failed", error=long_error),
    ]
    seen = ExportReport("m", 0.9, 500, results, check_seen_in_training=350)
    assert seen.check_data == (
        "500 check images, 350 of them seen in training: not held-out (check on the run's test split: "
        "--check RUN_FOLDER)"
    )
    assert ExportReport("m", 0.9, 75, results, check_seen_in_training=0).check_data == (
        "75 held-out images (none seen in training)"
    )
    assert "overlap unknown" in ExportReport("m", 0.9, 75, results).check_data
    lines = seen.table().splitlines()
    assert lines[0] == f"check: {seen.check_data}"
    assert max(len(line) for line in lines[:6]) < 120  # the table itself stays readable
    assert lines[lines.index("errors:") + 1] == f"  tflite:int8: {long_error}"
    assert "FAILED (below)" in seen.table() and f"- tflite:int8: {long_error}" in seen.markdown()
    assert seen.to_dict()["check_seen_in_training"] == 350
