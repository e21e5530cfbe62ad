"""A library call has no side effects beyond its job, and a user sees edgekit's output, not TensorFlow's.

Exporting every architecture to every format leaves sys.stdout, sys.stderr, the root
logger, the warnings filters and the umask as they were, writes artifacts with the modes a
plain open() gives under the caller's umask, and leaves no temporary folders behind. The
demo's whole terminal output fits on one screen and holds none of the noise a fault-
injection pass found there.
"""

import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgekit
from converters.base import current_umask
from converters.shared_work import SCRATCH_PREFIX, scratch_folder
from edgekit.training.architectures import ARCHITECTURES, _scale_residual_branches
from runtimes.contract import ModelContract

NOISE = [
    r"oneDNN",
    r"cuda",
    r"cuInit",
    r"absl",
    r"fully_quantize",
    r"inference_type",
    r"XNNPACK",
    r"Running MIL",
    r"passes/s",
    r"ops/s",
    r"step - accuracy",
    r"\x1b\[1m",
    r"Traceback",
    r"tf2onnx",
    r"coremltools",
    r"scikit-learn version",
    r"Failed to load",
    r"Epoch \d+/\d+$",
]


def _state():
    root = logging.getLogger()
    return sys.stdout, sys.stderr, list(root.handlers), root.level, list(warnings.filters), current_umask()


def _build(name):
    if name == "efficientnetv2b0":  # the model that once left sys.stdout replaced (through tf2onnx)
        from edgekit._tf import keras

        return keras().applications.EfficientNetV2B0(
            input_shape=(32, 32, 3), weights=None, classes=3
        ), edgekit.Preprocessing(32, scale=1.0, offset=0.0)
    spec = ARCHITECTURES.get(name)
    model = spec.build((32, 32, 3), 3, None)
    _scale_residual_branches(model, 1.0)  # from scratch they start at zero: the ONNX check needs every op to count
    return model, spec.preprocessing(edgekit.Preprocessing(32))


# EfficientNetV2B0 is the model that once left sys.stdout replaced (through tf2onnx): its TFLite and ONNX paths
TARGETS = {name: ["tflite:fp32", "onnx:fp32", "coreml:fp32"] for name in ARCHITECTURES.names()}
TARGETS["efficientnetv2b0"] = ["tflite:fp32", "onnx:fp32"]
TARGETS["efficientnetb0"] = [
    "tflite:fp32",
    "onnx:fp32",
]  # its CoreML packages are converted and checked in test_coreml_reference


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TARGETS))
def test_exporting_every_architecture_to_every_format_has_no_side_effects(name, tmp_path, monkeypatch):
    """Also where each architecture's ONNX graph is checked against Keras (one export per model in the suite)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    model, preprocessing = _build(name)
    contract = ModelContract(preprocessing, ("a", "b", "c"), model_name=name)
    previous_umask = os.umask(0o027)  # a caller's stricter umask must be honoured, not 0600 forced
    try:
        before = _state()
        report = edgekit.export(model, TARGETS[name], contract=contract, out_dir=tmp_path / "out", progress=False)
        after = _state()
    finally:
        os.umask(previous_umask)
    print("stdout still works")  # the bug this guards: every later print vanished
    assert [r.status for r in report.results] == ["unchecked"] * len(TARGETS[name]), [r.error for r in report.results]
    onnx = report.result("onnx:fp32")
    x = (
        np.random.default_rng(1)
        .uniform(*[v[0] for v in preprocessing.output_range()], (8, 32, 32, 3))
        .astype(np.float32)
    )
    with edgekit.load(onnx.path) as loaded:
        assert np.abs(loaded.run(x) - np.asarray(model(x, training=False))).max() < 1e-4
        used = loaded.contract.quantization["export_path"]
    assert onnx.notes[-1] == f"float graph via {used}"
    assert used == (
        "tflite-tf2onnx" if name.startswith("efficientnet") else "keras-export"
    )  # Keras export leaves their constants as inputs
    assert after == before
    for result in report.results:
        path = Path(result.path)
        items = [path, *path.rglob("*")] if path.is_dir() else [path]
        modes = {oct(item.stat().st_mode & 0o777) for item in items}
        assert modes <= {"0o640", "0o750"}, (path.name, modes)  # 0666/0777 less the caller's 027
        assert result.sha256 and len(result.sha256) == 64
    assert list((tmp_path / "tmp").iterdir()) == []  # scratch (SavedModels, autograph, tf2onnx) removed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(r.path).name for r in report.results)


def test_scratch_folder_removes_what_killed_exports_left(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{SCRATCH_PREFIX}{finished.stdout.strip()}-x1"
    (dead / "edgekit-savedmodel-1").mkdir(parents=True)
    alive = tmp_path / f"{SCRATCH_PREFIX}{os.getppid()}-x2"  # another live process's work is left alone
    alive.mkdir()
    with scratch_folder() as folder:
        assert tempfile.gettempdir() == str(folder) and folder.parent == tmp_path
        Path(tempfile.mkstemp()[1]).write_text("temporary")
    assert tempfile.gettempdir() == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]


def test_native_output_goes_to_the_debug_log_not_the_terminal(capfd, caplog):
    from runtimes.quiet import quiet_native

    caplog.set_level(logging.DEBUG, logger="edgekit.native")
    with quiet_native("probe"):
        os.write(2, b"C++ says hello\n")
        os.write(1, b"fully_quantize: 0\n")
        print("a python print")
        warnings.warn("a library warning", stacklevel=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    logged = [r.getMessage() for r in caplog.records]
    assert "[probe] C++ says hello" in logged and "[probe] fully_quantize: 0" in logged
    assert "[probe] a python print" in logged and "[probe] UserWarning: a library warning" in logged


@pytest.mark.slow  # trains a model
def test_training_prints_no_keras_bars_and_logs_one_line_per_epoch(tmp_path, capfd, caplog):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
    y = np.arange(48) % 2
    train, val = edgekit.ArrayDataset(x, y, ["dark", "light"], image_size=16).split(val=0.25, test=0.0, seed=0)[:2]
    caplog.set_level(logging.INFO, logger="edgekit")
    before = _state()
    edgekit.train(train, val, "small_cnn", epochs=2, out_dir=tmp_path, seed=0)
    assert _state() == before
    out, err = capfd.readouterr()
    assert "step" not in out + err and "Epoch" not in out + err  # Keras' own bars are off
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(epochs) == 2 and epochs[0].startswith("epoch 1/2  ") and "val_loss" in epochs[0]


@pytest.mark.slow  # trains a model
def test_the_demo_prints_under_60_lines_and_none_of_the_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "PYTEST"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgekit.cli",
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--n-per-class",
            "60",
            "--epochs",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env=env,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(lines) < 60, result.stdout
    for pattern in NOISE:
        hits = [line for line in lines if re.search(pattern, line)]
        assert not hits, (pattern, hits)
    assert lines[0] == "1/4 generating the shapes dataset (60 images per class)"
    assert sum(line.startswith("epoch ") for line in lines) == 4
    assert len(lines) - 4 + 20 < 60  # the full demo's 20 epoch lines fit too
    assert any(line.startswith("tflite:int8    ok") for line in lines)
    assert any(line.startswith("int8 model says") for line in lines)


@pytest.mark.slow  # trains a model
def test_the_detection_demo_prints_its_table_and_none_of_the_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "PYTEST"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgekit.cli",
            "demo",
            "detection",
            "--out",
            str(tmp_path / "demo"),
            "--images",
            "60",
            "--image-size",
            "64",
            "--epochs",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env=env,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout[-3000:]
    for pattern in NOISE:
        hits = [line for line in lines if re.search(pattern, line)]
        assert not hits, (pattern, hits)
    assert lines[0] == "1/4 generating the shapes-detection dataset (60 scenes at 64 px)"
    assert sum(line.startswith("epoch ") for line in lines) == 2 and len(lines) - 2 + 24 < 60
    assert any(line.startswith("tflite:int8    ok") for line in lines)
    assert any(line.startswith("coreml:fp16    ok") for line in lines)  # checked by the reference executor
    assert any(line.startswith("int8 model on ") for line in lines)
    assert (tmp_path / "demo" / "predicted.png").stat().st_size > 1000


def test_verbose_shows_the_debug_log_with_third_party_output(tmp_path, tiny_tflite):
    quiet = subprocess.run(
        [sys.executable, "-m", "edgekit.cli", "info", str(tiny_tflite)], capture_output=True, text=True
    )
    loud = subprocess.run(
        [sys.executable, "-m", "edgekit.cli", "-v", "info", str(tiny_tflite)], capture_output=True, text=True
    )
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr == ""
    assert "DEBUG edgekit.native: [LiteRT]" in loud.stderr  # the interpreter's own start-up line, kept for -v


def test_an_unexpected_error_is_one_line_naming_the_file(tiny_tflite, monkeypatch, capsys):
    from edgekit import cli

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr("edgekit.cli.info.run", broken)  # each command is a module: edgekit.cli.<command>
    before = _state()
    assert cli.main(["info", str(tiny_tflite)]) == 2
    assert _state() == before  # main() in-process puts the caller's logging back
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"edgekit info: unexpected error with {tiny_tflite}: KeyError: 'boom'")
    assert "report it with the output of the same command run with -v" in err[0]


def test_quiet_native_runs_the_block_when_no_temp_file_can_be_made(monkeypatch, capfd):
    from runtimes import quiet as _quiet

    def refuse():
        raise OSError("read-only file system")

    monkeypatch.setattr(_quiet.tempfile, "TemporaryFile", refuse)
    ran = []
    with _quiet.quiet_native("probe"):
        ran.append(True)
        os.write(2, b"visible\n")
    assert ran == [True] and capfd.readouterr().err == "visible\n"
