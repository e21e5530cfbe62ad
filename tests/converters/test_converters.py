"""TFLite converter: every mode, the contract inside, calibration checks, atomic writes."""

import numpy as np
import pytest

import edgekit
from converters import CONVERTERS, CalibrationData, CalibrationError, ConversionConfig, all_targets, parse_target
from converters.base import atomic_output
from converters.errors import ConversionError, UnknownTargetError
from converters.tflite import MODES, convert_tflite
from runtimes.metadata.tflite import read_metadata, write_metadata

EXPECTED_INPUT = {
    "fp32": np.float32,
    "fp16": np.float32,
    "dynamic": np.float32,
    "int8": np.int8,
    "uint8": np.uint8,
    "mediapipe": np.float32,
    "mediapipe_int8": np.uint8,
    "int8_full": np.int8,
}  # a classifier's mediapipe files are its fp32 and uint8 ones


@pytest.mark.parametrize("mode", list(MODES))
def test_every_tflite_mode_carries_the_contract_and_runs(mode, tiny_model, tiny_contract, tiny_calibration, tmp_path):
    path = tmp_path / f"tiny_{mode}.tflite"
    artifact = convert_tflite(
        tiny_model, path, MODES[mode], contract=tiny_contract, calibration=tiny_calibration, progress=False
    )
    assert artifact.path == path and artifact.size_bytes == path.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing else left behind
    with edgekit.load(path) as model:
        assert model.input_spec.dtype == EXPECTED_INPUT[mode]
        assert model.contract.labels == tiny_contract.labels
        assert model.contract.quantization["mode"] == MODES[mode].quantization.value
        assert model.contract.quantization["io_dtype"] == MODES[mode].io_dtype
        x = tiny_calibration.samples[:8]
        reference = np.asarray(tiny_model(x))
        assert np.abs(model.run(x) - reference).max() < (0.02 if mode in ("fp32", "fp16") else 0.08)


def test_int8_needs_calibration_and_writes_nothing_without_it(tiny_model, tiny_contract, tmp_path):
    with pytest.raises(CalibrationError, match="int8 quantization needs calibration data"):
        convert_tflite(tiny_model, tmp_path / "m.tflite", MODES["int8"], contract=tiny_contract)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "samples, message",
    [
        (
            np.random.default_rng(0).random((20, 32, 32, 3), dtype=np.float32),
            r"shape \(32, 32, 3\) but the model's contract produces \(16, 16, 3\)",
        ),
        (np.full((20, 16, 16, 3), 0.5, np.float32), "calibration samples are constant"),
        (
            np.random.default_rng(0).uniform(100, 255, (20, 16, 16, 3)).astype(np.float32),
            r"every calibration value lies outside the range the contract produces \[0, 1\]",
        ),
        (np.full((20, 16, 16, 3), np.nan, np.float32), "NaN or infinite"),
    ],
    ids=["shape", "constant", "unscaled-pixels", "nan"],
)
def test_wrong_calibration_data_is_refused_before_converting(samples, message, tiny_model, tiny_contract, tmp_path):
    with pytest.raises(CalibrationError, match=message):
        convert_tflite(
            tiny_model,
            tmp_path / "m.tflite",
            MODES["int8"],
            contract=tiny_contract,
            calibration=CalibrationData(samples),
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_few_calibration_samples_warn(tiny_contract, tiny_calibration):
    report = tiny_calibration.limit(10).check(tiny_contract.preprocessing)
    assert report.samples == 10
    assert report.warnings == ("only 10 calibration samples; 100 or more are recommended for stable int8 ranges",)
    assert report.in_range_fraction == 1.0


def test_failed_conversion_leaves_no_file(tiny_model, tiny_contract, tmp_path, monkeypatch):
    import tensorflow as tf

    class CrashingConverter:
        def convert(self):
            raise RuntimeError("converter crashed")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_keras_model", lambda model: CrashingConverter())
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", lambda path: CrashingConverter())
    target = tmp_path / "m.tflite"
    with pytest.raises(ConversionError, match="TFLite conversion \\(fp32\\) failed: converter crashed"):
        convert_tflite(tiny_model, target, MODES["fp32"], contract=tiny_contract)
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_metadata_round_trip_replaces_existing_entry(tiny_tflite):
    data = tiny_tflite.read_bytes()
    assert b'"labels": ["a", "b", "c"]' in read_metadata(data)
    rewritten = write_metadata(data, b"second")
    assert read_metadata(rewritten) == b"second"
    assert read_metadata(rewritten, "missing") is None
    assert read_metadata(rewritten, "min_runtime_version").startswith(b"1.")


def test_targets_parse_and_unknown_ones_list_the_valid_ones():
    entry, mode, config = parse_target("tflite:uint8")
    assert entry is CONVERTERS.get("tflite") and mode == "uint8" and config.io_dtype == "uint8"
    assert "tflite:int8" in all_targets()
    with pytest.raises(
        UnknownTargetError,
        match=(
            "unknown target 'tflite:int4'; valid targets: .*onnx:int8, onnx:int8_qinput, onnx:int8_full, "
            "savedmodel:fp32, tflite:fp32, tflite:fp16"
        ),
    ):
        parse_target("tflite:int4")
    with pytest.raises(UnknownTargetError, match="unknown target 'tensorrt:fp16'"):
        parse_target("tensorrt:fp16")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(quantization="int4"), "invalid quantization 'int4'; valid: fp32, fp16, dynamic, int8"),
        (dict(quantization="fp16", io_dtype="uint8"), "io_dtype 'uint8' needs full-integer quantization"),
        (dict(io_dtype="int16"), "invalid io_dtype 'int16'"),
        (dict(calibration_samples=0), "calibration_samples must be >= 1"),
    ],
)
def test_conflicting_conversion_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConversionConfig(**kwargs)


def test_shared_zero_points_are_lossless_and_smaller(tiny_model, tiny_calibration):
    """write_metadata stores each distinct int64 zero-point vector once; outputs must not change."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    converter = tf.lite.TFLiteConverter.from_keras_model(tiny_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = tiny_calibration.representative_dataset()
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    raw = converter.convert()
    shared = write_metadata(raw, b"{}")
    assert len(shared) < len(raw)  # the payload is tiny; the saving is the shared zero points
    outputs = []
    for data in (raw, shared):
        interpreter = Interpreter(model_content=data)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tiny_calibration.samples[:1])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("target", ["tflite:int8", "tflite:uint8", "onnx:int8"])
def test_int8_input_range_is_the_contracts_not_the_samples(
    target, tiny_model, tiny_contract, tiny_calibration, tmp_path
):
    """Dim calibration images (pixels 40..200) still give an input step of one pixel level: exact, no saturation."""
    dim = CalibrationData(tiny_calibration.samples * (160 / 255) + 40 / 255)
    assert dim.spanning(0.0, 1.0).samples.min() == 0.0 and dim.samples.min() > 0.15  # the caller's data is untouched
    name, mode = target.split(":")
    entry = CONVERTERS.get(name)
    path = tmp_path / f"dim_{mode}{entry.suffix}"
    artifact = entry.convert(
        tiny_model, path, entry.modes[mode], contract=tiny_contract, calibration=dim, progress=False
    )
    assert any(
        note.startswith("int8 input range set from the contract, [0, 1]; the calibration samples reach only [0.1569, ")
        for note in artifact.notes
    )
    with edgekit.load(path) as model:
        quantization = model.input_spec.quantization
        assert quantization.scale == pytest.approx(1 / 255, rel=1e-6)
        assert quantization.zero_point == (-128 if model.input_spec.dtype == np.int8 else 0)
        assert model.pixel_path == "add"
        bright = np.full((1, 16, 16, 3), 1.0, np.float32)
        assert model.run(bright).shape == (1, 3)
