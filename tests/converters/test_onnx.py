"""ONNX: every architecture converts to a working file, quantized modes, the runtime backend."""

import subprocess
import sys

import numpy as np
import pytest
from helpers.needs import need_module

import edgekit
from converters.onnx import MODES, convert_onnx
from runtimes.contract import ModelContract
from runtimes.errors import ModelLoadError, UnknownNameError

need_module("onnxruntime", extra="onnx")


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model, tiny_contract, tiny_calibration, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return {
        mode: convert_onnx(
            tiny_model, out / f"tiny_{mode}.onnx", config, contract=tiny_contract, calibration=tiny_calibration
        )
        for mode, config in MODES.items()
    }


# Every architecture's ONNX export (Keras export, or the TFLite route for EfficientNet) is checked against
# Keras in tests/edgekit/test_hygiene.py, which exports each architecture to every format once.


@pytest.mark.parametrize("mode", list(MODES))
def test_modes_carry_the_contract_and_track_keras(tiny_onnx, tiny_model, tiny_calibration, tiny_contract, mode):
    with edgekit.load(tiny_onnx[mode].path, num_threads=1) as model:
        assert model.backend == "onnxruntime" and model.runtime.providers == ["CPUExecutionProvider"]
        assert model.contract.labels == tiny_contract.labels
        assert model.contract.quantization["mode"] == MODES[mode].quantization.value
        x = tiny_calibration.samples[:16]
        assert np.abs(model.run(x) - np.asarray(tiny_model(x))).max() < (1e-5 if mode == "fp32" else 0.05)


def test_quantized_graphs_hold_int8_weights(tiny_onnx):
    import onnx

    ops = {mode: {node.op_type for node in onnx.load(str(a.path)).graph.node} for mode, a in tiny_onnx.items()}
    assert "QuantizeLinear" in ops["int8"] and "DequantizeLinear" in ops["int8"]  # QDQ format
    assert {"ConvInteger", "MatMulInteger"} & ops["dynamic"]
    assert not {"QuantizeLinear", "ConvInteger"} & ops["fp32"]


@pytest.mark.parametrize("mode, bits", [("int8", 7), ("dynamic", 7), ("int8_qinput", 7)])
def test_uint8_activations_get_7_bit_weights_that_cannot_saturate_x86_kernels(tiny_onnx, mode, bits):
    """VPMADDUBSW (x86 without VNNI) saturates uint8 x int8 pair sums over 2^15 - 1: 7-bit weights never reach it."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(tiny_onnx[mode].path)).graph
    weights = [
        numpy_helper.to_array(i)
        for i in graph.initializer
        if i.data_type == onnx.TensorProto.INT8 and i.dims and len(i.dims) > 1
    ]
    assert weights and all(np.abs(w.astype(int)).max() <= 64 for w in weights)  # symmetric 7 bits: -64..64
    assert max(int(np.abs(w).max()) for w in weights) >= 60  # the 7-bit range is used, not just capped
    assert 2 * 255 * max(int(np.abs(w).max()) for w in weights) < 2**15
    assert tiny_onnx[mode].contract.quantization["weight_bits"] == bits
    assert any("7 bits (reduce_range)" in note for note in tiny_onnx[mode].notes)


@pytest.mark.parametrize("activation_type, onnx_type", [("uint8", 2), ("int8", 3)])  # TensorProto.UINT8 / INT8
def test_static_int8_activation_type_is_chosen_and_recorded(
    activation_type, onnx_type, tiny_model, tiny_contract, tiny_calibration, tmp_path
):
    import dataclasses

    import onnx

    config = dataclasses.replace(
        MODES["int8_qinput"], activation_type=activation_type
    )  # the input moves for both types
    artifact = convert_onnx(
        tiny_model, tmp_path / "m.onnx", config, contract=tiny_contract, calibration=tiny_calibration
    )
    assert artifact.target == "onnx:int8_qinput"
    graph = onnx.load(str(artifact.path)).graph
    zero_points = {i.name: i.data_type for i in graph.initializer}
    activation_zero_points = {zero_points[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear"}
    assert activation_zero_points == {onnx_type}
    assert graph.input[0].type.tensor_type.elem_type == onnx_type  # the input QuantizeLinear moved to the runtime
    with edgekit.load(artifact.path) as model:
        assert model.contract.quantization["activation_type"] == activation_type
        assert model.input_spec.dtype == np.dtype(activation_type) and model.direct_pixel_input
        assert model.input_spec.quantization.scale == pytest.approx(
            model.contract.quantization["input_quantization"]["scale"]
        )
        x = tiny_calibration.samples[:16]
        assert np.abs(model.run(x) - np.asarray(tiny_model(x))).max() < 0.05


def test_float_input_can_be_kept_for_static_int8(tiny_model, tiny_contract, tiny_calibration, tmp_path):
    import dataclasses

    config = dataclasses.replace(MODES["int8"], integer_input="never")
    artifact = convert_onnx(
        tiny_model, tmp_path / "m.onnx", config, contract=tiny_contract, calibration=tiny_calibration
    )
    with edgekit.load(artifact.path) as model:
        assert model.input_spec.dtype == np.float32 and not model.direct_pixel_input
        assert (
            "input_quantization" not in model.contract.quantization
            and model.contract.quantization["input_kind"] == "float"
        )
        x = tiny_calibration.samples[:16]
        assert np.abs(model.run(x) - np.asarray(tiny_model(x))).max() < 0.05


def test_invalid_onnx_activation_type_lists_the_valid_ones():
    import dataclasses

    with pytest.raises(ValueError, match="invalid activation_type 'int4'; valid: uint8, int8"):
        dataclasses.replace(MODES["int8"], activation_type="int4")


def test_missing_execution_provider_lists_the_available_ones(tiny_onnx):
    with pytest.raises(
        UnknownNameError,
        match=(
            r"execution provider\(s\) \['TensorrtExecutionProvider'\] are not available.*available: "
            r".*CPUExecutionProvider"
        ),
    ):
        edgekit.load(tiny_onnx["fp32"].path, providers=["TensorrtExecutionProvider"])


def test_corrupt_onnx_file_is_named(tiny_onnx, tmp_path):
    data = tiny_onnx["fp32"].path.read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="cannot load .*broken.onnx: the ONNX model is corrupt"):
        edgekit.load(broken)


def test_onnx_contract_is_read_without_tensorflow(tiny_onnx):
    code = (
        "import sys, numpy as np, runtimes\n"
        f"m = runtimes.open({str(tiny_onnx['int8'].path)!r})\n"
        "assert m.contract.labels == ('a', 'b', 'c')\n"
        "assert m.predict(np.zeros((9, 9, 3), np.uint8)).label in ('a', 'b', 'c')\n"
        "print(' '.join(k for k in ('tensorflow', 'keras', 'tf2onnx') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_portable_int8_keeps_float_input_where_pixels_would_not_be_exact(tiny_model, tiny_calibration, tmp_path):
    """A [-1, 1] contract puts pixels on rounding ties: the default int8 keeps the float input, int8_qinput moves it."""
    contract = ModelContract(edgekit.Preprocessing(16, scale=1 / 127.5, offset=-1.0), ("a", "b", "c"))
    calibration = type(tiny_calibration)(tiny_calibration.samples * 2 - 1)
    portable = convert_onnx(tiny_model, tmp_path / "p.onnx", MODES["int8"], contract=contract, calibration=calibration)
    fast = convert_onnx(
        tiny_model, tmp_path / "q.onnx", MODES["int8_qinput"], contract=contract, calibration=calibration
    )
    with edgekit.load(portable.path) as model:
        assert model.input_spec.dtype == np.float32 and model.contract.quantization["input_kind"] == "float"
    with edgekit.load(fast.path) as model:
        assert model.input_spec.dtype == np.uint8 and model.contract.quantization["input_kind"] == "quantized"
    assert "plain ONNX Runtime" in portable.consumers[0] and fast.consumers[0].startswith("edgekit only")
    # exact: edgekit quantizes the moved input as QuantizeLinear did, ties included, so both files answer alike
    rng = np.random.default_rng(0)
    images = [
        np.stack([rng.permutation(256).reshape(16, 16) for _ in range(3)], axis=-1).astype(np.uint8) for _ in range(4)
    ]
    with edgekit.load(portable.path) as float_input, edgekit.load(fast.path) as moved:
        for image in images:
            expected = float_input.run_all(float_input.preprocess(image))
            for name, values in moved.run_all(moved.preprocess(image)).items():
                np.testing.assert_array_equal(values, expected[name])
            assert moved.predict(image).top_k == float_input.predict(image).top_k


def test_invalid_integer_input_lists_the_valid_ones():
    import dataclasses

    with pytest.raises(ValueError, match="invalid integer_input 'false'; valid: pixels, always, never"):
        dataclasses.replace(MODES["int8"], integer_input="false")
