"""Required inputs are checked first, in one line that names the fix, before anything slow (a model loading, images
decoding) starts: the proof is a model path that does not exist and is never reached."""

import pytest

import edgekit
from edgekit.cli import main
from edgekit.data.annotations import detection_format
from edgekit.data.synthetic import make_shapes_detection


@pytest.mark.parametrize("layout", ["yolo", "coco", "voc"])
def test_a_detection_folder_trained_as_classes_says_add_task_detection(layout, tmp_path, capsys):
    root = make_shapes_detection(tmp_path / layout, n_images=4, image_size=(48, 64), seed=0, format=layout)
    assert detection_format(root) == layout
    assert main(["train", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"edgekit train: error: {root} is a {layout.upper()} detection dataset, not one subfolder per class: "
        "add --task detection (Python: edgekit.load_detection)"
    )
    with pytest.raises(edgekit.DatasetError, match="add --task detection"):
        edgekit.ImageFolder(root, image_size=32)


def test_class_folders_are_not_mistaken_for_detection(tmp_path):
    root = edgekit.datasets.make_shapes(tmp_path / "shapes", n_per_class=2, image_size=20, seed=0)
    assert detection_format(root) is None
    (tmp_path / "notes.txt").write_text("x")
    assert detection_format(tmp_path / "notes.txt") is None and detection_format(tmp_path / "missing") is None


@pytest.mark.parametrize(
    "targets, extra, message",
    [
        ("tflite:int8", [], "tflite:int8 needs calibration images: add --calibration DIR"),
        ("onnx:fp32,tflite:int8,coreml:int8,onnx:int8", [], "tflite:int8, onnx:int8 need calibration images"),
        ("tflite:fp32", ["--max-drop", "1"], "--max-drop needs --check DIR"),
        ("tflite:fp32", ["--check", "nowhere"], "--check nowhere: no such folder or file"),
    ],
)
def test_export_checks_its_inputs_before_the_model_loads(targets, extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(tmp_path / "never-read.keras"), "--target", targets, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"edgekit export: error: {message}" or (message in err and "\n" not in err), err
    assert list(tmp_path.iterdir()) == []  # no runs/export left behind


def test_python_export_asks_for_calibration_before_loading(tmp_path):
    with pytest.raises(
        edgekit.ExportError,
        match=r"tflite:int8: full-integer modes need calibration data; pass "
        r"calibration=",
    ):
        edgekit.export(tmp_path / "never-read.keras", ["tflite:fp32", "tflite:int8"], out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
