"""ONNX Runtime quantization of a float ONNX file for `converters.onnx`: dynamic-range int8 and static int8 (QDQ,
per-channel weights, calibrated on edgekit's calibration data), and moving the quantized input out of the graph
so the runtime feeds camera pixels straight to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import ConversionConfig, Quantization, in_float_scopes
from converters.calibration import CalibrationData
from runtimes.contract import ModelContract
from runtimes.deps import require

log = logging.getLogger("converters.onnx")

ACTIVATION_TYPES = ("uint8", "int8")


INTEGER_INPUTS = ("pixels", "always", "never")


@dataclass(frozen=True)
class OnnxConfig(ConversionConfig):
    """ONNX options. `activation_type` is the static int8 mode's activation type (weights are int8).

    uint8 activations (U8S8) take ONNX Runtime's fastest x86 kernels: 0.55-0.62 of float32
    latency for MobileNetV2 against 0.84-1.0 with int8 activations (bench/quantization.py).
    Choose int8 (S8S8) for ARM targets or x86 CPUs without VNNI, where U8S8 can saturate.

    `reduce_range` stores U8S8 weights in 7 bits. x86 CPUs without VNNI (AVX2, and AVX-512 before
    Cascade Lake) multiply uint8 by int8 with VPMADDUBSW, whose int16 pair sums saturate when
    two products near 255 x 127 meet. A pruned small CNN (larger surviving weights) lost 5
    accuracy points in ONNX int8 on one CI host and none on a VNNI one. With 7-bit weights a pair
    stays under 2^15 everywhere, so one file gives the same answers on every x86 machine, as
    ONNX Runtime's quantization guide advises.
    """

    activation_type: str = "uint8"
    reduce_range: bool = True  # U8S8 only: 7-bit weights, which no x86 kernel can saturate
    # static int8: "pixels" moves the input's QuantizeLinear to the runtime only where the quantized input
    # is exactly the raw 0..255 pixels (any reader can feed it); "always" also where it is not (the
    # reader must quantize: the int8_qinput mode); "never" keeps the float input
    integer_input: str = "pixels"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation_type not in ACTIVATION_TYPES:
            raise ValueError(f"invalid activation_type {self.activation_type!r}; valid: {', '.join(ACTIVATION_TYPES)}")
        if self.integer_input not in INTEGER_INPUTS:
            raise ValueError(f"invalid integer_input {self.integer_input!r}; valid: {', '.join(INTEGER_INPUTS)}")

    @property
    def mode(self) -> str:
        """The MODES key this config stands for."""
        if self.full_integer:
            return "int8_full"
        if self.quantization is Quantization.INT8 and self.integer_input == "always":
            return "int8_qinput"
        return self.quantization.value


class CalibrationReader:
    """Adapts CalibrationData to onnxruntime's CalibrationDataReader (get_next / rewind)."""

    def __init__(self, data: CalibrationData, input_name: str) -> None:
        self.data, self.input_name = data, input_name
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._iterator, None)
        return None if feed is None else {self.input_name: feed[self.data.input_name]}

    def rewind(self) -> None:
        self._iterator = iter(self.data)


def quantize_onnx(
    float_path: Path,
    output: Path,
    config: OnnxConfig,
    calibration: CalibrationData | None,
    value_range: tuple[float, float],
    float_scopes: tuple[str, ...] = (),
) -> int:
    """Quantize `float_path` into `output`; nodes under `float_scopes` stay float. Returns how many did."""
    quantization = require("onnxruntime.quantization", extra="onnx", package="onnxruntime")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = output.with_name("prepared.onnx")
    # ONNX's own shape inference: edgekit's graphs have static shapes, and ONNX Runtime's symbolic one, where it
    # fails (TopK, Gather in decoders), saves its half-inferred model with external data into the working folder
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    if config.quantization is Quantization.DYNAMIC:  # activations are uint8 at run time: U8S8 kernels
        quantization.quantize_dynamic(
            str(prepared),
            str(output),
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
            reduce_range=config.reduce_range,
        )
        return 0
    ort = require("onnxruntime", extra="onnx")
    input_name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    onnx = require("onnx", extra="onnx")
    value_range = {"rmin": np.float32(value_range[0]), "rmax": np.float32(value_range[1])}
    # the input's range is the contract's (pixel 0 to 255), not what the samples happen to reach; it is
    # quantized after any layout ops, which keep its values
    graph = onnx.load(str(prepared)).graph
    overrides = {name: [dict(value_range)] for name in _layout_chain(graph, input_name)[0]}
    excluded = [node.name for node in graph.node if in_float_scopes(node.name, float_scopes)]
    activation_type = config.activation_type
    quantization.quantize_static(
        str(prepared),
        str(output),
        CalibrationReader(calibration, input_name),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type={"uint8": quantization.QuantType.QUInt8, "int8": quantization.QuantType.QInt8}[activation_type],
        weight_type=quantization.QuantType.QInt8,
        extra_options={"TensorQuantOverrides": overrides},
        nodes_to_exclude=excluded,
        reduce_range=config.reduce_range and activation_type == "uint8",
    )
    return len(excluded)


LAYOUT_OPS = ("Transpose", "Reshape", "Identity")  # ops that take integer tensors and keep values


def reduced_range(config: OnnxConfig) -> bool:
    """True when the quantized weights are stored in 7 bits (U8S8 kernels: dynamic, or static uint8)."""
    return config.reduce_range and (config.quantization is Quantization.DYNAMIC or config.activation_type == "uint8")


def _layout_chain(graph: Any, name: str) -> tuple[list[str], list[Any]]:
    """The tensors from input `name` through the layout ops after it, and the consumers of the last one."""
    value, chain = name, [name]
    while True:
        consumers = [node for node in graph.node if value in node.input]
        if len(consumers) != 1 or consumers[0].op_type not in LAYOUT_OPS:
            return chain, consumers
        value = consumers[0].output[0]
        chain.append(value)


def _integer_input(proto: Any) -> dict[str, float | int] | None:
    """Move the input's QuantizeLinear out of the graph: the graph then takes uint8/int8 input.

    The runtime quantizes float batches itself with the stored scale and zero point, and
    `Model.predict` maps camera pixels straight to the quantized input through a 256-entry
    table, with no float tensor: the same fast path as int8 TFLite models. Returns the
    input's {"scale", "zero_point"}, or None (graph unchanged) when its input is not quantized
    by one per-tensor QuantizeLinear.
    """
    from onnx import numpy_helper

    graph = proto.graph
    initializers = {i.name: i for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return None
    chain, consumers = _layout_chain(graph, inputs[0].name)  # layout ops keep values: quantizing commutes with them
    if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear":
        return None
    value, quantize = chain[-1], consumers[0]
    if len(quantize.input) < 3 or quantize.input[0] != value:
        return None
    scale, zero_point = (initializers.get(n) for n in quantize.input[1:3])
    if scale is None or zero_point is None or numpy_helper.to_array(scale).size != 1:
        return None
    quantized = quantize.output[0]
    if any(output.name == quantized for output in graph.output):
        return None
    for node in graph.node:
        for index, used in enumerate(node.input):
            if used == quantized:
                node.input[index] = value
    graph.node.remove(quantize)
    for info in [*inputs, *(i for i in graph.value_info if i.name in chain)]:
        info.type.tensor_type.elem_type = zero_point.data_type
    return {"scale": float(numpy_helper.to_array(scale)), "zero_point": int(numpy_helper.to_array(zero_point))}


def choose_input(
    proto: Any, config: OnnxConfig, contract: ModelContract
) -> tuple[Any, dict[str, float | int], str] | None:
    """(graph with its input QuantizeLinear moved to the runtime, the input's quantization, its input_kind),
    when `config` asks for that here; None keeps the float input."""
    candidate = type(proto)()
    candidate.CopyFrom(proto)
    quantization = _integer_input(candidate)
    if quantization is None:
        return None
    kind = "pixels" if _takes_raw_pixels(quantization, config.activation_type, contract) else "quantized"
    if config.integer_input == "pixels" and kind != "pixels":
        return None  # a plain reader would have to quantize: keep the float input (int8_qinput moves it anyway)
    return candidate, quantization, kind


def _takes_raw_pixels(quantization: dict[str, float | int], activation_type: str, contract: ModelContract) -> bool:
    """True when quantizing the contract's tensor gives back every pixel value unchanged (uint8 input = pixels)."""
    from runtimes.quantization import pixel_table
    from runtimes.tensors import QuantParams, TensorSpec

    spec = contract.preprocessing
    if activation_type != "uint8":
        return False
    params = QuantParams(float(quantization["scale"]), int(quantization["zero_point"]))
    table = pixel_table(spec, TensorSpec("input", (1, *spec.input_shape), np.dtype(np.uint8), params))
    return table is not None and table.ndim == 1 and bool((table == np.arange(256)).all())
