"""A quantization-aware model's CoreML int8 program: weights and activations in int8 (W8A8), with the ranges
training learned.

coremltools' TensorFlow frontend turns an activation's `FakeQuantWithMinMaxVars` into float arithmetic (clip,
divide, round, multiply): the ranges would be simulated, not carried. While the QAT model converts, that op becomes
a MIL `quantize` (int8, the fake-quant op's own nudged scale and zero point) and a `dequantize`, the pair Core ML
fuses into integer kernels on the Neural Engine (iOS 17 and later). The weights, which training already put on the
int8 grid (per output channel for convolutions, per tensor for dense layers), are then stored as int8 with the
same scales: coremltools' symmetric scale is max |w| / 127, as QAT's is, so no weight moves.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from runtimes.deps import require

AWARE_TARGET = "iOS17"  # the first opset with activation quantize / dequantize
TARGET_ORDER = ("iOS15", "iOS16", "iOS17", "iOS18")
PER_TENSOR_OPS = ("linear", "matmul")  # dense kernels: QAT quantized them per tensor, as TFLite's FULLY_CONNECTED


def aware_target(target: str) -> str:
    """The deployment target a W8A8 program needs: `target`, or iOS17 where `target` is older (macOS likewise)."""
    if target.startswith("macOS"):
        return target if target >= "macOS14" else "macOS14"
    return target if TARGET_ORDER.index(target) >= TARGET_ORDER.index(AWARE_TARGET) else AWARE_TARGET


def nudged_range(low: float, high: float, num_bits: int = 8) -> tuple[float, int]:
    """(scale, int8 zero point) of TensorFlow's fake-quant op over [low, high]: the range nudged so that zero is a
    grid point, as `tf.quantization.fake_quant_with_min_max_vars` nudges it."""
    levels = 2**num_bits - 1
    high = max(high, low + 1e-6)
    scale = (high - low) / levels
    zero_point = int(np.clip(np.round(-low / scale), 0, levels))  # in 0..255
    return scale, zero_point - 2 ** (num_bits - 1)


def _fake_quant_as_qdq(context: Any, node: Any) -> None:
    """The TF frontend's conversion of an activation fake-quant op: int8 quantize then dequantize."""
    mb = require("coremltools.converters.mil", extra="coreml", package="coremltools").Builder
    x = context[node.inputs[0]]
    low, high = (context[name].val for name in node.inputs[1:3])
    if low is None or high is None:
        raise ValueError(f"fake-quant op {node.name!r} has a range that is not a constant")
    scale, zero_point = nudged_range(float(low), float(high), int(node.attr.get("num_bits", 8)))
    dtype = np.float16 if x.dtype is not None and "fp16" in str(x.dtype) else np.float32
    quantized = mb.quantize(
        input=x, scale=dtype(scale), zero_point=np.int8(zero_point), output_dtype="int8", name=f"{node.name}_int8"
    )
    dequantized = mb.dequantize(input=quantized, scale=dtype(scale), zero_point=np.int8(zero_point), name=node.name)
    context.add(node.name, dequantized)


@contextlib.contextmanager
def fake_quant_as_int8() -> Iterator[None]:
    """While converting, activation fake-quant ops become int8 quantize/dequantize pairs; restored after."""
    registry = require(
        "coremltools.converters.mil.frontend.tensorflow.tf_op_registry", extra="coreml", package="coremltools"
    )._TF_OPS_REGISTRY
    name = "FakeQuantWithMinMaxVars"
    original = registry.get(name)
    registry[name] = _fake_quant_as_qdq
    try:
        yield
    finally:
        if original is None:
            registry.pop(name, None)
        else:
            registry[name] = original


def int8_weights(mlmodel: Any) -> Any:
    """`mlmodel` with every weight stored as int8 on QAT's grid: per output channel, dense layers per tensor."""
    optimize = require("coremltools.optimize.coreml", extra="coreml", package="coremltools")

    def config(granularity: str) -> Any:
        return optimize.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity=granularity, weight_threshold=0
        )

    chosen = optimize.OptimizationConfig(
        global_config=config("per_channel"), op_type_configs={op: config("per_tensor") for op in PER_TENSOR_OPS}
    )
    return optimize.linear_quantize_weights(mlmodel, chosen)
