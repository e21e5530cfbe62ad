"""The issue's bars on keras.applications MobileNetV2: int8 size at 224x224, int8 accuracy within 2 points.

The accuracy bar is held here at 64x64 and by bench/quantization.py at 96x96 (the original issue's size): trained
from scratch, 96 px took 14.3 of the suite's 24.7 minutes on a 2-core host (64 px: 9.5 minutes).

A module of its own (it trains its own model, for about a quarter of the suite's time): the parallel
run (make test) gives it a worker from the start, beside the shared small CNN's training.
"""

import numpy as np
import pytest

import edgekit
from converters import CalibrationData
from converters.tflite import MODES, convert_tflite
from runtimes.contract import ModelContract
from runtimes.tensors import QuantParams


@pytest.mark.slow
def test_mobilenetv2_224_int8_is_at_most_0_3x_float32(shapes_root, tmp_path):
    """Weights dominate at 224x224: int8 must be <= 0.3x the float32 file."""
    from edgekit.training.architectures import ARCHITECTURES, _scale_residual_branches

    spec = ARCHITECTURES.get("mobilenetv2")
    dataset = edgekit.ImageFolder(shapes_root, image_size=224)
    preprocessing = spec.preprocessing(dataset.geometry)
    model = spec.build((224, 224, 3), 3, None)
    _scale_residual_branches(model, 1.0)  # from scratch they start at zero, and all-zero kernels would shrink the file
    contract = ModelContract(preprocessing, dataset.labels, model_name="mobilenetv2")
    calibration = CalibrationData(dataset.sample(100, seed=1).tensors(preprocessing))
    fp32 = convert_tflite(model, tmp_path / "fp32.tflite", MODES["fp32"], contract=contract)
    int8 = convert_tflite(
        model, tmp_path / "int8.tflite", MODES["int8"], contract=contract, calibration=calibration, progress=False
    )
    ratio = int8.size_bytes / fp32.size_bytes
    print(f"mobilenetv2 224x224 int8/fp32 size ratio: {ratio:.3f} ({int8.size_bytes} / {fp32.size_bytes} bytes)")
    assert ratio <= 0.3
    with edgekit.load(int8.path) as loaded:
        assert loaded.input_spec.shape == (1, 224, 224, 3) and loaded.input_spec.dtype == np.int8
        assert (loaded.contract.preprocessing.scale, loaded.contract.preprocessing.offset) == (
            1.0,
            0.0,
        )  # normalizes inside
        assert loaded.input_spec.quantization == QuantParams(1.0, -128) and loaded.pixel_path == "add"  # pixels exactly


@pytest.fixture(scope="module")
def mobilenetv2_64(tmp_path_factory):
    """MobileNetV2 at 64x64 trained from scratch until it has decided (val >= 93%, at most 12 epochs).

    From scratch it needs 1000 shapes per class: on 400 it memorizes the training images
    and stays near chance, where int8-vs-float deltas are noise. Identity-started residual blocks
    (edgekit's from-scratch default) and batches of 16 take it off by epoch 3 and to 93% by epoch 6
    (at 96 px: 11 minutes of training alone on a 2-core host; batches of 32 without the identity start took 10 epochs,
    14 minutes). At 64 px it learns more slowly, 93.1% at epoch 10 (val 0.85 at epoch 9), at about 50 s an epoch beside
    the other worker: 570 s for the fixture against 858 s at 96 px.
    """
    from edgekit._tf import keras

    class StopWhenDecided(keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (logs or {}).get("val_accuracy", 0.0) >= 0.93:
                self.model.stop_training = True

    out = tmp_path_factory.mktemp("mobilenetv2_64")
    root = edgekit.datasets.make_shapes(out / "shapes", n_per_class=1000, image_size=64, seed=0)
    train, val, test = edgekit.ImageFolder(root, image_size=64).split(val=0.15, test=0.15, seed=0)
    result = edgekit.train(
        train,
        val,
        "mobilenetv2",
        test=test,
        epochs=12,
        patience=12,
        batch_size=16,
        learning_rate=2e-3,
        out_dir=out,
        seed=0,
        verbose=1,
        callbacks=[StopWhenDecided()],
    )
    return edgekit.export(
        result.model_path,
        ["tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8"],
        out_dir=out / "export",
        calibration=train,
        check=test,
        progress=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite:fp32", "onnx:fp32"])
def test_mobilenetv2_64_float32_agrees_with_keras(mobilenetv2_64, target):
    result = mobilenetv2_64.result(target)
    print(f"mobilenetv2 64 {target}: agreement {result.agreement:.3f}, max error {result.max_abs_error:.2e}")
    assert result.agreement >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite:int8", "onnx:int8"])
def test_mobilenetv2_64_int8_within_2_points(mobilenetv2_64, target):
    result = mobilenetv2_64.result(target)
    print(
        f"mobilenetv2 64 {target}: keras {mobilenetv2_64.keras_accuracy:.3f}, int8 {result.accuracy:.3f}, "
        f"delta {result.accuracy_delta:+.1f} pts, agreement {result.agreement:.3f}"
    )
    assert mobilenetv2_64.keras_accuracy >= 0.85  # the bar means something only on a model that has learned
    assert abs(result.accuracy_delta) <= 2.0
