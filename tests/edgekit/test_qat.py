"""Quantization-aware training (`edgekit.quantize_aware`): the rewrite simulates what TFLite's int8 kernels
compute (BatchNorm folded as the converter folds it, activations fused, fixed sigmoid/softmax ranges), so the int8
file agrees with the fake-quantized Keras model it came from, without calibration data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit._tf import keras
from edgekit.errors import TrainingError
from edgekit.optimize.qat_graph import activation_ranges, folded_weights, plan_qat, qat_model

STEP = 1 / 256  # a softmax output's int8 step


def usual_layers_model(num_classes: int = 4):
    """A user's functional model from every layer QAT supports, on a non-square input (the same weights every
    run: near-ties between scores are what int8 may flip)."""
    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((24, 40, 3), name="pixels")
    x = k.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = k.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.ReLU(max_value=6.0)(x)
    y = k.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = k.layers.BatchNormalization()(y)
    y = k.layers.ReLU()(y)
    y = k.layers.SeparableConv2D(8, 3, padding="same", activation="relu")(y)
    x = k.layers.Add()([x, y])
    x = k.layers.Conv2D(12, 1, activation="hard_silu")(x)
    x = k.layers.MaxPooling2D(2)(x)
    z = k.layers.AveragePooling2D(2)(x)
    z = k.layers.UpSampling2D(2)(z)
    x = k.layers.Concatenate()([x, z])
    x = k.layers.ZeroPadding2D(1)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Reshape((24,))(x)
    x = k.layers.Dense(16, activation="relu")(x)
    x = k.layers.Dropout(0.1)(x)
    outputs = k.layers.Dense(num_classes, activation="softmax")(x)
    model = k.Model(inputs, outputs, name="usual")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # BatchNorm statistics far from the identity, so that folding matters
        if isinstance(layer, k.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2, w.shape).astype("float32") for w in layer.get_weights()])
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 3, bias])  # decided scores, as a trained model's
    return model


def pixels(count: int, shape=(24, 40)) -> np.ndarray:
    rng = np.random.default_rng(1)
    smooth = rng.uniform(0, 255, (count, shape[0] // 4, shape[1] // 4, 3)).astype("float32")
    return np.repeat(np.repeat(smooth, 4, 1), 4, 2) + rng.normal(0, 8, (count, *shape, 3)).astype("float32")


def test_the_plan_folds_batchnorm_fuses_relus_and_fixes_softmax():
    model = usual_layers_model()
    plan = plan_qat(model)
    names = {layer.name: type(layer).__name__ for layer in model.layers}
    assert sorted(names[n] for n in plan.folded) == ["BatchNormalization", "BatchNormalization"]
    assert sorted(names[n] for n in plan.folded.values()) == ["Conv2D", "DepthwiseConv2D"]
    fused = sorted(names[n] for n in plan.fused)
    assert fused == ["BatchNormalization", "BatchNormalization", "Conv2D", "DepthwiseConv2D"]  # then their ReLUs
    assert {names[n] for n in plan.split} == {"Conv2D", "Dense"}  # hard-swish and softmax run as their own ops
    assert {names[n] for n in plan.fixed} == {"Dense"}  # the softmax: TFLite's fixed 1/256 scale
    assert {names[n] for n in plan.kept} >= {"MaxPooling2D", "AveragePooling2D", "Reshape", "Dropout", "UpSampling2D"}


def test_folding_is_the_converters_fold():
    k = keras()
    model = usual_layers_model()
    conv, norm = model.layers[2], model.layers[3]
    kernel, bias = folded_weights(conv, norm)
    x = np.random.default_rng(2).normal(size=(2, 24, 40, 3)).astype("float32")
    expected = norm(conv(x), training=False).numpy()
    folded = k.layers.Conv2D(8, 3, padding="same")
    folded.build(x.shape)
    folded.set_weights([kernel, bias])
    np.testing.assert_allclose(folded(x).numpy(), expected, atol=1e-4)


def test_an_unsupported_layer_is_named():
    k = keras()
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(4, 3)(inputs)
    x = k.layers.Conv2DTranspose(4, 3, name="up")(x)
    model = k.Model(inputs, k.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(TrainingError, match=r"does not support layer 'up' \(Conv2DTranspose\); supported: .*Conv2D"):
        plan_qat(model)


def test_a_nested_model_is_refused_with_the_fix():
    k = keras()
    inner = k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(4, 3)], name="backbone")
    inputs = k.Input((8, 8, 3))
    model = k.Model(inputs, k.layers.GlobalAveragePooling2D()(inner(inputs)))
    with pytest.raises(TrainingError, match="'backbone' is a nested Sequential; build it inline"):
        plan_qat(model)


def test_a_saved_qat_model_loads_with_every_range(tmp_path):
    """Ranges inside two-op layers (Rescaling with an offset, SeparableConv2D) load with the model."""
    from edgekit.keras_io import load_keras, save_keras
    from runtimes.contract import ModelContract, Preprocessing

    aware, _ = qat_model(usual_layers_model(), (0.0, 255.0))
    data = pixels(16)
    aware(data, training=True)
    save_keras(aware, tmp_path / "model.keras", ModelContract(Preprocessing((24, 40), scale=1.0), ("a", "b", "c", "d")))
    loaded, _ = load_keras(tmp_path / "model.keras")
    between = {
        layer.name: float(layer.between.range_max.numpy()) for layer in loaded.layers if hasattr(layer, "between")
    }
    assert len(between) == 2 and all(value > 0 for value in between.values()), between
    np.testing.assert_array_equal(loaded(data, training=False).numpy(), aware(data, training=False).numpy())


def test_the_int8_file_computes_what_the_fake_quantized_model_does(tmp_path):
    """Every usual layer: the TFLite file is integer everywhere and within 2 output steps of Keras' simulation."""
    from converters.tflite_integer import float_tensors
    from runtimes.backends.tflite import interpreter_class

    model = usual_layers_model()
    aware, _ = qat_model(model, (0.0, 255.0))
    data = pixels(64)
    for start in range(0, 64, 16):
        aware(data[start : start + 16], training=True)  # ranges from the data
    assert all(float(layer.range_max.numpy()) > 0 for layer in activation_ranges(aware))
    tf = __import__("tensorflow")
    aware.export(tmp_path / "saved", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()
    assert float_tensors(flatbuffer) == []
    interpreter = interpreter_class()[0](model_content=flatbuffer)
    interpreter.allocate_tensors()
    (given,), (answer,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert given["quantization"] == (1.0, -128) and answer["quantization"][0] == pytest.approx(STEP)
    expected = aware(data, training=False).numpy()
    found = []
    for image in data:
        interpreter.set_tensor(given["index"], (np.clip(np.round(image), 0, 255) - 128).astype(np.int8)[None])
        interpreter.invoke()
        found.append((interpreter.get_tensor(answer["index"]).astype(np.float32) + 128) * STEP)
    found = np.concatenate(found)
    assert np.abs(found - expected).max() <= 2 * STEP + 1e-6
    top2 = np.sort(expected, 1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 2 * STEP  # untrained: near-ties only an int8 step apart may flip
    assert decided.sum() >= 32 and np.all(found.argmax(1)[decided] == expected.argmax(1)[decided])


def test_the_coreml_int8_program_is_w8a8_with_the_trained_ranges(tmp_path):
    """coreml:int8 of a QAT model: activations through int8 quantize/dequantize pairs at the fake-quant ops' ranges,
    every weight stored as int8 on QAT's grid, and the reference executor within 2 output steps of Keras."""
    from converters.coreml import MODES, convert_coreml
    from runtimes.contract import ModelContract, Preprocessing
    from runtimes.reference.mil_program import load_program

    aware, _ = qat_model(usual_layers_model(), (0.0, 255.0))
    data = pixels(64)
    for start in range(0, 64, 16):
        aware(data[start : start + 16], training=True)
    contract = ModelContract(Preprocessing((24, 40), scale=1.0), ("a", "b", "c", "d"))
    contract = contract.with_quantization(aware_training={"epochs": 1, "ranges": "moving average"})
    artifact = convert_coreml(aware, tmp_path / "aware.mlpackage", MODES["int8"], contract=contract, progress=False)
    assert artifact.contract.quantization["activations"] == "int8"
    assert artifact.contract.quantization["aware_training"]["epochs"] == 1
    assert artifact.notes[0].endswith("(W8A8, iOS17 or later)")
    program = load_program(artifact.path)
    sources = weight_sources(artifact.path)
    assert sources == ["constexpr_affine_dequantize"] * 7  # 5 convolutions (the separable one is two), 2 dense
    assert program.op_counts["constexpr_affine_dequantize"] == 7
    assert program.op_counts["quantize"] >= len([r for r in activation_ranges(aware) if r.fixed is None])
    expected = aware(data, training=False).numpy()
    with edgekit.load(artifact.path, backend="reference") as model:
        found = model.run(data)
    steps = np.abs(found - expected) / STEP  # float16 arithmetic between the int8 tensors (as the Neural Engine)
    assert np.mean(steps <= 2 + 1e-3) >= 0.98 and steps.max() <= 4, (np.mean(steps <= 2 + 1e-3), steps.max())
    top2 = np.sort(expected, 1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 2 * STEP
    assert np.all(found.argmax(1)[decided] == expected.argmax(1)[decided])


def weight_sources(path: Path) -> list[str]:
    """The op that makes each conv's, matmul's and linear's weight in a saved ML program."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = ct.models.MLModel(str(path), skip_model_load=True)
    program = load(spec.get_spec(), spec.get_spec().specificationVersion, spec.weights_dir)
    weighted = [op for op in program.functions["main"].operations if op.op_type in ("conv", "matmul", "linear")]
    return [(op.inputs.get("weight") or op.inputs["y"]).op.op_type for op in weighted]


@pytest.fixture(scope="module")
def aware(trained, shapes_root, tmp_path_factory):
    """The suite's trained small CNN after 2 epochs of quantization-aware fine-tuning, by `edgekit qat`, on the
    split the model was trained with (the same seed and fractions): (the run's model path, what it printed)."""
    import contextlib
    import io

    from edgekit.cli import main

    out = tmp_path_factory.mktemp("qat") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["qat", str(trained.model_path), str(shapes_root), "--epochs", "2", "--out", str(out)]) == 0
    return out / "model.keras", printed.getvalue()


@pytest.mark.slow
def test_the_qat_command_reports_its_simulated_int8_accuracy(aware, trained):
    path, printed = aware
    lines = printed.splitlines()
    test_line = next(line for line in lines if line.strip().startswith("test accuracy (int8 simulated):"))
    simulated = float(test_line.split(":")[1].strip().rstrip("%")) / 100
    assert simulated >= trained.metrics["accuracy"]["test"] - 0.015  # 180 test images: 2 of them
    assert lines[-1].startswith(f"wrote {path} (quantization-aware: export tflite:int8 without --calibration)")


@pytest.mark.slow
def test_a_qat_model_exports_full_integer_without_calibration(aware, trained, shapes_splits, tmp_path):
    from converters.tflite_integer import float_tensors
    from edgekit.keras_io import load_keras, read_keras_contract

    _, _, test = shapes_splits
    record = read_keras_contract(aware[0]).quantization["aware_training"]
    assert record["epochs"] == 2 and "frozen for 1" in record["ranges"]
    targets = ["tflite:int8", "tflite:uint8", "onnx:int8", "coreml:int8"]
    report = edgekit.export(aware[0], targets, check=test, out_dir=tmp_path)
    simulated, contract = load_keras(aware[0])
    tensors = test.tensors(contract.preprocessing)
    expected = simulated.predict(tensors, verbose=0)
    float_accuracy = trained.metrics["accuracy"]["test"]
    for result in report.results:
        assert result.status == "ok", result.error
        if result.target.startswith("tflite"):
            assert float_tensors(Path(result.path).read_bytes()) == []
        elif result.target.startswith("coreml"):  # W8A8: int8 weights, activations through quantize ops
            assert weight_sources(Path(result.path)) == ["constexpr_affine_dequantize"] * 5
        else:  # every convolution's and the dense layer's weights stored as integers
            weighted, integer = integer_weights(Path(result.path))
            assert weighted == integer == 5  # small_cnn: 4 convolutions and the scores layer
        assert result.agreement >= 0.995  # against the fake-quantized Keras model it came from
        assert result.accuracy >= float_accuracy - 0.015  # and against the float model it was fine-tuned from
        with edgekit.load(result.path, backend="reference" if result.target.startswith("coreml") else None) as model:
            assert "aware_training" in model.contract.quantization
            steps = np.abs(model.run(tensors) - expected) / STEP
        # int8 kernels round where the simulation's float ops do not (TFLite's softmax is a lookup table; ONNX
        # Runtime requantizes between its QDQ pairs): a 1-step change in a logit moves a sharp softmax several steps
        within, worst = np.mean(steps <= 2 + 1e-3), steps.max()
        # CoreML computes between its int8 tensors in float16 (as the Neural Engine does): a little further off
        floor = 0.95 if result.target.startswith("coreml") else 0.98
        assert within >= floor and worst <= 16, (result.target, within, worst)  # 16 steps: 6% of the score range
    assert any("quantization-aware training" in note for note in report.results[0].notes)
    # besides its own Keras model, each file against the float model QAT started from (the record names it)
    assert record["float_model"] == str(Path(trained.model_path).resolve())
    assert report.float_accuracy == pytest.approx(float_accuracy, abs=1e-6)
    assert re.search(r"^keras float +before QAT", report.table(), re.M)
    assert not any("outside QuantizeLinear" in note for note in report.result("onnx:int8").notes)  # integer
    for result in report.results:
        delta = (result.accuracy - float_accuracy) * 100
        assert f"{report.metric} {float_accuracy:.1%}): {delta:+.1f} points" in result.notes[-1], result.notes


def integer_weights(path: Path) -> tuple[int, int]:
    """(weighted ONNX nodes, those whose weights come through a DequantizeLinear of an integer initializer)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    weighted = [node for node in graph.node if node.op_type in ("Conv", "MatMul") and len(node.input) > 1]
    integer = [
        node
        for node in weighted
        if (source := producers.get(node.input[1])) is not None
        and source.op_type == "DequantizeLinear"
        and initializers[source.input[0]].dtype == np.uint8
    ]
    return len(weighted), len(integer)


@pytest.mark.slow
def test_a_model_not_trained_aware_still_needs_calibration(trained, tmp_path):
    with pytest.raises(edgekit.ExportError, match="full-integer modes need calibration data"):
        edgekit.export(trained.model_path, ["tflite:int8"], out_dir=tmp_path)


@pytest.mark.slow
def test_edgekit_export_loads_a_qat_model_in_a_fresh_process_without_calibration(aware, tmp_path):
    """The QAT layers are Keras-registered wherever edgekit loads a .keras file, and --calibration is optional."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "edgekit.cli", "export", str(aware[0]), "-t", "tflite:int8", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        re.search(r"^tflite:int8 +unchecked", done.stdout, re.M) and (tmp_path / "small_cnn_int8.tflite").is_file()
    ), done.stdout
    assert "int8 ranges from quantization-aware training" in done.stdout
