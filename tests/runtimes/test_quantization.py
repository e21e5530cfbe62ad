"""8-bit quantization (runtimes/quantization.py) value by value against the runtimes' own quantize ops.

A model whose input quantize op moved out of the graph (TFLite int8 I/O, ONNX int8_qinput) must get
from edgekit exactly what the op would have written. The oracles are the ops themselves: ONNX Runtime's
QuantizeLinear and LiteRT's QUANTIZE, each in a one-op graph, on every pixel value of each contract.
Fast and TensorFlow-free: bench/mutation.py runs this module against mutants of quantization.py.
"""

import flatbuffers
import numpy as np
import pytest
from helpers.needs import need_module

from runtimes.contract import Preprocessing
from runtimes.preprocess import normalize
from runtimes.quantization import dequantize, dequantized_codes, is_quantized, pixel_table, quantize, table_shift
from runtimes.tensors import QuantParams, TensorSpec

ort = need_module("onnxruntime", extra="onnx")
onnx = need_module("onnx", extra="onnx")
litert = need_module("ai_edge_litert.interpreter", extra="tflite")
schema = need_module("ai_edge_litert.schema_py_generated", extra="tflite")

CONTRACTS = {
    "0..1": Preprocessing(16),
    "-1..1": Preprocessing(16, scale=1 / 127.5, offset=-1.0),
    "mean/std": Preprocessing(16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255),
    "bgr -1..1": Preprocessing(16, color_order="bgr", scale=1 / 127.5, offset=-1.0),
}


def _calibrated(spec: Preprocessing, dtype: np.dtype) -> QuantParams:
    """The input quantization a min/max calibrator gives the contract's range (as TFLite's and ONNX's do)."""
    lows, highs = spec.output_range()
    low, high = min(0.0, *lows), max(0.0, *highs)
    scale = np.float32((high - low) / 255.0)
    q_min = -128 if dtype == np.int8 else 0
    return QuantParams(float(scale), int(np.clip(round(q_min - low / float(scale)), q_min, q_min + 255)))


def _pixels(spec: Preprocessing) -> np.ndarray:
    """Every pixel value (256 x C float32) as the contract normalizes it."""
    values = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], spec.channels, axis=2)
    return normalize(values, spec).reshape(256, spec.channels)


def _onnx_quantize_linear(values: np.ndarray, params: QuantParams, dtype: np.dtype) -> np.ndarray:
    from onnx import TensorProto, helper

    element = TensorProto.INT8 if dtype == np.int8 else TensorProto.UINT8
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "scale", "zero_point"], ["q"])],
        "quantize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(values.shape))],
        [helper.make_tensor_value_info("q", element, list(values.shape))],
        [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [params.scale]),
            helper.make_tensor("zero_point", element, [], [params.zero_point]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": values})[0]


def _litert_quantize(values: np.ndarray, params: QuantParams, dtype: np.dtype, resolver: str) -> np.ndarray:
    """LiteRT's QUANTIZE in a one-op model written with its schema's object API."""
    model = schema.ModelT()
    model.version, model.description = 3, "one QUANTIZE op"
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT() for _ in range(3)]
    source, target = schema.TensorT(), schema.TensorT()
    source.shape = target.shape = list(values.shape)
    source.type, source.buffer, source.name = schema.TensorType.FLOAT32, 1, "x"
    target.type = schema.TensorType.INT8 if dtype == np.int8 else schema.TensorType.UINT8
    target.buffer, target.name = 2, "q"
    target.quantization = schema.QuantizationParametersT()
    target.quantization.scale, target.quantization.zeroPoint = [params.scale], [params.zero_point]
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators, graph.name = (
        [source, target],
        [0],
        [1],
        [operator],
        "main",
    )
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    interpreter = litert.Interpreter(
        model_content=bytes(builder.Output()), experimental_op_resolver_type=getattr(litert.OpResolverType, resolver)
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], values)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _table_values(table: np.ndarray, channels: int, dtype: np.dtype) -> np.ndarray:
    """A pixel table (uint8 bits, one column or 1 x 256 x C) as 256 x C values of `dtype`."""
    columns = table.reshape(256, -1).view(dtype)
    return np.broadcast_to(columns, (256, channels)) if columns.shape[1] == 1 else columns


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
@pytest.mark.parametrize("contract", CONTRACTS, ids=list(CONTRACTS))
def test_the_pixel_table_is_exactly_what_each_runtimes_quantize_op_writes(contract, dtype):
    spec = CONTRACTS[contract]
    params = _calibrated(spec, np.dtype(dtype))
    input_spec = TensorSpec("input", (1, 16, 16, spec.channels), np.dtype(dtype), params)
    values = _pixels(spec)
    ours = _table_values(pixel_table(spec, input_spec), spec.channels, np.dtype(dtype))
    oracles = {
        "onnxruntime QuantizeLinear": _onnx_quantize_linear(values, params, np.dtype(dtype)),
        "LiteRT QUANTIZE (XNNPACK)": _litert_quantize(values, params, np.dtype(dtype), "AUTO"),
        "LiteRT QUANTIZE (built-in)": _litert_quantize(
            values, params, np.dtype(dtype), "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
        ),
    }
    for name, expected in oracles.items():
        differ = np.argwhere(ours != expected)
        assert not len(differ), f"{name}: {len(differ)} of {ours.size} values differ, first pixel {differ[0].tolist()}"
    np.testing.assert_array_equal(quantize(values, input_spec), oracles["onnxruntime QuantizeLinear"])


def test_a_minus_one_to_one_contract_puts_pixels_on_rounding_ties():
    """The premise that makes the test above able to fail: 64 pixel values land exactly on a .5 step in float32,
    so half-up or half-away rounding, a multiplication by 1/scale, or the zero point added before rounding differ."""
    spec = CONTRACTS["-1..1"]
    params = _calibrated(spec, np.dtype(np.int8))
    steps = _pixels(spec)[:, 0] / np.float32(params.scale)
    ties = np.flatnonzero(np.abs(steps - np.floor(steps)) == 0.5)
    assert len(ties) >= 32
    half_up = np.clip(np.floor(steps + np.float32(0.5)) + params.zero_point, -128, 127)
    assert (half_up != _onnx_quantize_linear(_pixels(spec), params, np.dtype(np.int8))[:, 0]).sum() >= 16


def test_quantize_round_trip_and_clipping():
    spec = TensorSpec("x", (1, 4), np.dtype(np.int8), QuantParams(scale=1 / 255, zero_point=-128))
    values = np.array([0.0, 0.502, 1.0, 2.0], np.float32)
    q = quantize(values, spec)
    assert q.dtype == np.int8 and q.tolist() == [-128, 0, 127, 127]
    assert dequantize(q, spec)[:3] == pytest.approx([0.0, 128 / 255, 1.0], abs=1e-6)
    assert dequantize(q, spec).dtype == np.float32


@pytest.mark.parametrize(
    "dtype, zero_point", [(np.int8, -128), (np.int8, 5), (np.uint8, 0), (np.uint8, 128), (np.int16, 3)]
)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 9, 4, 3)])
def test_quantize_is_divide_round_even_shift_saturate_for_every_shape(dtype, zero_point, shape):
    spec = TensorSpec("x", shape, np.dtype(dtype), QuantParams(scale=0.02, zero_point=zero_point))
    values = np.random.default_rng(0).uniform(-4, 4, shape).astype(np.float32)
    values.flat[0], values.flat[-1] = 1e6, -1e6  # far outside: saturates
    values.flat[len(values.flat) // 2] = np.float32(0.03)  # 1.5 steps: a tie, rounds to the even 2
    steps = np.rint(values / np.float32(0.02))
    info = np.iinfo(dtype)
    expected = np.clip(steps.astype(np.float64) + zero_point, info.min, info.max).astype(dtype)
    out = np.empty(shape, dtype)
    assert quantize(values, spec, out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(quantize(values[..., ::2], spec), expected[..., ::2])  # strided input
    scratch = np.empty(shape, np.float32)
    np.testing.assert_array_equal(quantize(values, spec, scratch=scratch), expected)


def test_ties_round_to_even_on_both_sides_of_the_zero_point():
    spec = TensorSpec("x", (6,), np.dtype(np.int8), QuantParams(scale=0.5, zero_point=-3))
    values = np.array([0.25, 0.75, -0.25, -0.75, 1.25, -1.25], np.float32)  # 0.5, 1.5, -0.5, -1.5, 2.5, -2.5 steps
    assert quantize(values, spec).tolist() == [-3, -1, -3, -5, -1, -5]


def test_quantized_means_integer_with_parameters():
    params = QuantParams(0.1, 0)
    assert is_quantized(TensorSpec("x", (1,), np.dtype(np.int8), params))
    assert is_quantized(TensorSpec("x", (1,), np.dtype(np.int16), params))
    assert not is_quantized(TensorSpec("x", (1,), np.dtype(np.int8)))
    assert not is_quantized(TensorSpec("x", (1,), np.dtype(np.float32), params))


def test_pixel_tables_by_input_type_and_layout():
    spec = CONTRACTS["mean/std"]
    float_table = pixel_table(spec, TensorSpec("x", (1, 16, 16, 3), np.dtype(np.float32)))
    assert float_table.shape == (1, 256, 3) and float_table.dtype == np.float32  # per-channel: cv2's 3-channel table
    np.testing.assert_array_equal(float_table[0], _pixels(spec))
    shared = pixel_table(CONTRACTS["-1..1"], TensorSpec("x", (1, 16, 16, 3), np.dtype(np.float32)))
    assert shared.shape == (256,) and shared[0] == np.float32(-1.0) and shared[255] == np.float32(1.0)
    assert pixel_table(Preprocessing(16, layout="nchw"), TensorSpec("x", (1, 3, 16, 16), np.dtype(np.float32))) is None
    assert pixel_table(spec, TensorSpec("x", (1, 16, 16, 3), np.dtype(np.float16))) is None
    assert pixel_table(spec, TensorSpec("x", (1, 16, 16, 3), np.dtype(np.int16), QuantParams(0.1, 0))) is None
    int8 = pixel_table(
        Preprocessing(16), TensorSpec("x", (1, 16, 16, 3), np.dtype(np.int8), QuantParams(1 / 255, -128))
    )
    assert int8.dtype == np.uint8 and int8.shape == (256,)
    assert int8.view(np.int8).tolist() == list(range(-128, 128))  # p - 128: every pixel its own level


def test_only_exact_8bit_shifts_skip_the_lookup():
    shifted = (np.arange(256) + 5).astype(np.uint8)
    assert table_shift(shifted) == 5 and table_shift(np.arange(256).astype(np.uint8)) == 0
    assert table_shift((np.arange(256) + 128).astype(np.uint8)) == 128
    saturated = shifted.copy()
    saturated[-5:] = 255  # a clipped add is not a shift
    assert table_shift(saturated) is None
    assert table_shift(np.arange(256, dtype=np.float32)) is None  # float tables stay lookups
    assert table_shift(np.tile(shifted, (1, 3, 1)).reshape(1, 256, 3)) is None  # per-channel tables too
    assert table_shift(None) is None


@pytest.mark.parametrize("dtype, zero_point", [(np.int8, -5), (np.uint8, 130)])
def test_dequantized_codes_are_dequantize_of_every_code_by_its_unsigned_bits(dtype, zero_point):
    spec = TensorSpec("y", (1, 3), np.dtype(dtype), QuantParams(0.0123, zero_point))
    codes = dequantized_codes(spec)
    assert len(codes) == 256
    assert codes == dequantize(np.arange(256, dtype=np.uint8).view(dtype), spec).tolist()
    assert codes[200] == float((np.uint8(200).view(dtype).astype(np.float32) - zero_point) * np.float32(0.0123))
    assert dequantized_codes(TensorSpec("y", (1, 3), np.dtype(np.float32))) is None
    assert dequantized_codes(TensorSpec("y", (1, 3), np.dtype(np.int16), QuantParams(0.1, 0))) is None


def test_quantize_takes_float64_as_the_float32_the_ops_would_see_and_scalars():
    spec = TensorSpec("x", (), np.dtype(np.int8), QuantParams(0.5, 0))
    near_tie = np.array(0.25 + 1e-12)  # float64: 0.5000000000002 steps; as float32 exactly 0.5, a tie
    assert quantize(near_tie, spec).shape == () and int(quantize(near_tie, spec)) == 0
    assert int(quantize(np.float32(0.75), spec)) == 2  # a 0-d float32: 1.5 steps, to even
    spec = TensorSpec("x", (1,), np.dtype(np.int8), QuantParams(float(np.float32(0.1)), 0))
    x = np.array([-4.950000046760748])  # in float32 divided by 0.1f: -49 steps; divided in float64: -50
    assert quantize(x, spec).tolist() == [int(np.rint(np.float32(x[0]) / np.float32(0.1)))] == [-49]
    spec16 = TensorSpec("x", (), np.dtype(np.int16), QuantParams(0.5, 3))
    assert int(quantize(np.array(np.float32(0.75)), spec16)) == 5


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_quantize_into_given_buffers_allocates_nothing_and_its_own_scratch_is_float32(dtype):
    import tracemalloc

    spec = TensorSpec("x", (64, 64, 3), np.dtype(dtype), QuantParams(0.02, 1))
    values = np.random.default_rng(1).uniform(-2, 2, (64, 64, 3)).astype(np.float32)
    out, scratch = np.empty(values.shape, dtype), np.empty(values.shape, np.float32)
    quantize(values, spec, out, scratch)  # warm: first calls may cache
    tracemalloc.start()
    try:
        quantize(values, spec, out, scratch)
        _, given = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fresh = quantize(values, spec)
        _, own = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert given < 8192, f"{given} bytes allocated with out and scratch given"  # the smallest buffer is 12 kB
    assert own <= values.nbytes + fresh.nbytes + 4096  # one float32 scratch and the result, no float64 copy
    np.testing.assert_array_equal(fresh, out)
    steps = np.rint(values / np.float32(0.02)) + (
        1 if dtype == np.int16 else 0
    )  # 8-bit: the zero point added by OpenCV
    np.testing.assert_array_equal(scratch, steps)  # the given scratch did the work


def test_a_one_channel_contract_gets_one_table_column():
    spec = Preprocessing(16, "gray", scale=1 / 127.5, offset=-1.0)
    table = pixel_table(
        spec, TensorSpec("x", (1, 16, 16, 1), np.dtype(np.int8), QuantParams(float(np.float32(2 / 255)), -1))
    )
    assert table.shape == (256,)
    np.testing.assert_array_equal(
        table.view(np.int8),
        _onnx_quantize_linear(_pixels(spec), QuantParams(float(np.float32(2 / 255)), -1), np.dtype(np.int8))[:, 0],
    )
