"""The issue's bars, measured on the shared small CNN: quantized artifacts stay faithful to the Keras model.

The keras.applications MobileNetV2 bars are in test_quality_mobilenetv2.py."""

import pytest

import edgekit


def test_every_mode_was_exported_and_checked(exported):
    assert [r.target for r in exported.results] == [
        "tflite:fp32",
        "tflite:fp16",
        "tflite:dynamic",
        "tflite:int8",
        "tflite:uint8",
        "onnx:fp32",
        "onnx:dynamic",
        "onnx:int8",
    ]
    assert all(r.status == "ok" and r.agreement is not None for r in exported.results)
    assert exported.check_samples == 180


@pytest.mark.parametrize("target", ["tflite:fp32", "onnx:fp32"])
def test_float32_agrees_with_keras(exported, target):
    fp32 = exported.result(target)
    assert fp32.agreement >= 0.99
    assert fp32.max_abs_error < 1e-4
    assert fp32.accuracy == pytest.approx(exported.keras_accuracy)


@pytest.mark.parametrize("target", ["tflite:int8", "tflite:uint8", "onnx:int8", "onnx:dynamic"])
def test_int8_accuracy_within_1_5_points_of_keras(exported, target):
    result = exported.result(target)
    assert abs(result.accuracy_delta) <= 1.5, result
    assert result.agreement >= 0.95


def test_int8_is_smaller_and_reports_its_ratio(exported):
    ratio = exported.result("tflite:int8").size_bytes / exported.result("tflite:fp32").size_bytes
    print(f"small_cnn int8/fp32 size ratio: {ratio:.3f}")  # fixed overhead weighs more in small models
    assert ratio < 0.35


def test_int8_model_predicts_files_through_edgekit_load(exported, shapes_splits):
    test = shapes_splits[2]
    with edgekit.load(exported.result("tflite:int8").path) as model:
        results = model.predict(list(test.sources[:60]))
    correct = sum(r.label == test.labels[t] for r, t in zip(results, test.targets[:60]))
    assert correct / 60 >= 0.85
