"""The edgekit command line, run as a user runs it."""

import json
import subprocess
import sys

import pytest

from edgekit.cli import main


def _edgekit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["demo", "train", "prune", "export", "predict", "info"])
def test_every_command_explains_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: edgekit {command}" in text
    assert text.count("--") >= 2 or command == "info"


def test_info_prints_the_embedded_contract(exported, capsys):
    path = exported.result("tflite:uint8").path
    assert main(["info", path]) == 0
    text = capsys.readouterr().out
    assert "labels:  circle, square, triangle" in text
    assert "runs here: yes (tflite)" in text
    assert "input:   64x64 rgb, resize=stretch (area), layout=nhwc" in text
    assert "scaling: x * 0.00392157 + 0" in text
    assert "quantization: io_dtype=uint8, mode=int8" in text
    assert "input:   " in text and "uint8, quantized scale=" in text
    assert f"sha256:  {exported.result('tflite:uint8').sha256}" in text  # the same sum the export report gives
    assert main(["info", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == ["circle", "square", "triangle"]


def test_info_on_a_keras_file(trained, capsys):
    assert main(["info", str(trained.model_path)]) == 0
    assert "name:    small_cnn (classification)" in capsys.readouterr().out


def test_predict_prints_one_line_per_image_and_skips_bad_files(exported, shapes_splits, tmp_path):
    test = shapes_splits[2]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    result = _edgekit(
        "predict", exported.result("tflite:int8").path, test.sources[0], str(bad), test.sources[1], "--top-k", "2"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(test.sources[0] + ": ")
    assert lines[0].split(": ")[1].split()[0] in ("circle", "square", "triangle")
    assert f"{bad}: skipped: cannot decode image" in result.stderr and "1 image(s) skipped" in result.stderr
    as_json = _edgekit("predict", exported.result("tflite:fp32").path, test.sources[0], "--json")
    record = json.loads(as_json.stdout)
    assert record["label"] == test.labels[test.targets[0]] or record["score"] < 0.9
    assert len(record["top_k"]) == 3


def test_errors_are_one_clear_line_with_exit_code_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.tflite")]) == 2
    assert "edgekit info: error: model file not found" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "nowhere")]) == 2
    assert "edgekit train: error: dataset folder not found" in capsys.readouterr().err


def test_export_command_with_unknown_target(trained, capsys):
    assert main(["export", str(trained.model_path), "--target", "tflite:fp32,onnx:int9"]) == 2
    assert "unknown target 'onnx:int9'; valid targets: coreml:fp32, " in capsys.readouterr().err


@pytest.mark.slow  # trains a model
def test_train_and_export_commands_end_to_end(shapes_root, tmp_path):
    import cv2

    small = tmp_path / "small"
    for label in ("circle", "square"):
        (small / label).mkdir(parents=True)
        for i in range(12):
            image = cv2.imread(str(shapes_root / label / f"{i:04d}.png"))
            cv2.imwrite(str(small / label / f"{i}.png"), image)
    trained = _edgekit(
        "train",
        str(small),
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--val",
        "0.25",
        "--test",
        "0.25",
        "--out",
        str(tmp_path / "run"),
    )
    assert trained.returncode == 0, trained.stderr
    assert "test accuracy:" in trained.stdout and (tmp_path / "run" / "model.keras").exists()
    assert (
        "data: 2 classes, 24 images (train 12, val 6, test 6); splits: drawn at random (val 0.25, test 0.25, seed 0)"
        in trained.stderr
    )
    assert "per class, images in train, val, test: circle 6 3 3; square 6 3 3" in trained.stderr
    assert "epoch 1/1  " in trained.stderr
    exported = _edgekit(
        "export",
        str(tmp_path / "run" / "model.keras"),
        "-t",
        "tflite:fp32",
        "-t",
        "tflite:int8",
        "--calibration",
        str(small),
        "--check",
        str(small),
        "--out",
        str(tmp_path / "exp"),
    )
    assert exported.returncode == 0, exported.stderr
    assert "tflite:int8" in exported.stdout and "top-1 agreement" in exported.stdout
    assert "only 24 calibration samples" in exported.stderr  # the lint speaks up
    assert "check: 24 check images, 12 of them seen in training: not held-out" in exported.stdout
    report = json.loads((tmp_path / "exp" / "export_report.json").read_text())
    assert (report["check_samples"], report["check_seen_in_training"]) == (24, 12)
    on_run = _edgekit(
        "export",
        str(tmp_path / "run" / "model.keras"),
        "-t",
        "tflite:fp32",
        "--check",
        str(tmp_path / "run"),
        "--out",
        str(tmp_path / "exp2"),
    )
    assert on_run.returncode == 0, on_run.stderr
    assert f"check: the test split of the run in {tmp_path / 'run'} (6 images of {small})" in on_run.stdout
    assert "check: 6 held-out images (none seen in training)" in on_run.stdout
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == [
        "export_report.json",
        "export_report.md",
        "export_report.png",
        "small_cnn_fp32.tflite",
        "small_cnn_int8.tflite",
    ]


def test_export_option_syntax_is_checked(trained, capsys):
    assert main(["export", str(trained.model_path), "-t", "coreml:fp16", "--option", "coreml"]) == 2
    assert "invalid --option 'coreml'; use FORMAT.KEY=VALUE" in capsys.readouterr().err


def test_predict_with_a_missing_delegate_names_the_library(exported, shapes_splits, capsys):
    image = shapes_splits[2].sources[0]
    assert main(["predict", exported.result("tflite:int8").path, image, "--delegate", "edgetpu"]) == 2
    assert "TFLite delegate 'edgetpu' could not be loaded (libedgetpu.so.1" in capsys.readouterr().err
    assert main(["predict", exported.result("onnx:fp32").path, image, "--provider", "cuda"]) == 2
    assert "['CUDAExecutionProvider'] are not available" in capsys.readouterr().err


def test_prune_and_distill_commands(trained, shapes_tenth, tmp_path):
    """One epoch of each on every tenth image: the commands' wiring, not their quality (test_optimize.py)."""
    pruned = _edgekit(
        "prune",
        str(trained.model_path),
        str(shapes_tenth),
        "--sparsity",
        "0.5",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "pruned"),
    )
    assert pruned.returncode == 0, pruned.stderr
    assert "total" in pruned.stdout and "50.0%" in pruned.stdout and (tmp_path / "pruned" / "model.keras").is_file()
    distilled = _edgekit(
        "train",
        str(shapes_tenth),
        "--arch",
        "small_cnn",
        "--image-size",
        "64",
        "--epochs",
        "1",
        "--teacher",
        str(tmp_path / "pruned" / "model.keras"),
        "--out",
        str(tmp_path / "student"),
    )
    assert distilled.returncode == 0, distilled.stderr
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and "test" in metrics["accuracy"]


def test_export_options_parse_numbers_and_flags():
    from edgekit.cli.arguments import format_options as _options

    assert _options(
        [
            "tflite.mixed_precision=false",
            "onnx.mixed_precision=True",
            "tflite.calibration_samples=50",
            "coreml.compute_units=CPU_AND_NE",
        ]
    ) == {
        "tflite": {"mixed_precision": False, "calibration_samples": 50},
        "onnx": {"mixed_precision": True},
        "coreml": {"compute_units": "CPU_AND_NE"},
    }
