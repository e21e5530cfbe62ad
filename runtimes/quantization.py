"""Affine 8-bit quantization as the runtimes' own quantize ops compute it, and the pixel tables built on it.

An int8 model whose input quantization moved out of the graph (TFLite's int8 I/O, ONNX's
`int8_qinput`) expects exactly what its quantize op would have written. ONNX Runtime's
QuantizeLinear and LiteRT's QUANTIZE both compute `q = saturate(rint(x / scale) + zero_point)`:
a float32 division, rounding half to even, and the zero point added as an integer after rounding.
A [-1, 1] contract puts every pixel on a tie (p - 127.5 steps), so the order matters: multiplying by
1/scale, or adding the zero point before rounding, moves one level on 32 of the 256 pixel values.
tests/runtimes/test_quantization.py compares every value with both runtimes' ops.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtimes.contract import Layout, Preprocessing
from runtimes.preprocess import normalize
from runtimes.tensors import TensorSpec

EIGHT_BIT_DEPTHS = {np.dtype(np.int8): cv2.CV_8S, np.dtype(np.uint8): cv2.CV_8U}


def is_quantized(spec: TensorSpec) -> bool:
    """True for an integer tensor with affine quantization parameters."""
    return spec.quantization is not None and np.issubdtype(spec.dtype, np.integer)


def quantize(
    x: np.ndarray, spec: TensorSpec, out: np.ndarray | None = None, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Float -> the integer type of `spec`: saturate(rint(x / scale) + zero_point), as the runtimes' quantize ops.

    The division and the rounding (half to even) are float32, the zero point is added after rounding.
    With `out` (integer) and `scratch` (float32) buffers of x's shape, nothing is allocated.
    """
    q = spec.quantization
    out = np.empty(x.shape, spec.dtype) if out is None else out
    scratch = np.empty(x.shape, np.float32) if scratch is None else scratch
    np.divide(x, np.float32(q.scale), out=scratch, dtype=np.float32)
    np.rint(scratch, out=scratch)
    depth = EIGHT_BIT_DEPTHS.get(np.dtype(spec.dtype))
    if depth is not None and scratch.size and scratch.flags.c_contiguous and out.flags.c_contiguous:
        # integral floats + zero point, saturated to 8 bits in one OpenCV pass into `out` (exact: nothing left to round)
        columns = x.shape[-1] if x.ndim else 1
        cv2.addWeighted(
            scratch.reshape(-1, columns),
            1.0,
            scratch.reshape(-1, columns),
            0.0,
            float(q.zero_point),
            dst=out.reshape(-1, columns),
            dtype=depth,
        )
        return out
    info = np.iinfo(spec.dtype)
    scratch += np.float32(q.zero_point)
    np.clip(scratch, info.min, info.max, out=scratch)
    np.copyto(out, scratch, casting="unsafe")
    return out


def dequantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer -> float32: (q - zero_point) * scale."""
    q = spec.quantization
    return (x.astype(np.float32) - q.zero_point) * np.float32(q.scale)


def pixel_table(preprocessing: Preprocessing, input_spec: TensorSpec) -> np.ndarray | None:
    """uint8 pixel -> the model's input value, per channel, for every one of the 256 pixel values.

    Scaling, normalization and quantization are elementwise, so the table is exact: it is the
    slow path evaluated once per value. One column when all channels map alike (cv2's single-table
    LUT is faster), else 1 x 256 x C (its per-channel table); None where no table applies (NCHW,
    float16 or wider integer inputs). Quantized 8-bit inputs come back as their uint8 bits.
    """
    if preprocessing.layout is not Layout.NHWC:
        return None
    channels = preprocessing.channels
    values = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], channels, axis=2)  # 1 x 256 x C
    scaled = normalize(values, preprocessing).reshape(256, channels)  # float32, exactly what each pixel gets
    if is_quantized(input_spec) and input_spec.dtype in EIGHT_BIT_DEPTHS:
        table = quantize(scaled, input_spec).view(np.uint8)
    elif not is_quantized(input_spec) and input_spec.dtype == np.float32:
        table = scaled
    else:
        return None
    if (table == table[:, :1]).all():
        return np.ascontiguousarray(table[:, 0])
    return np.ascontiguousarray(table[None])


def table_shift(table: np.ndarray | None) -> int | None:
    """k when an 8-bit pixel table is p -> (p + k) mod 256 for every p, else None.

    Common and exact: pixels/255 with an input scale of 1/255 gives k = 0 for uint8 inputs and
    k = 128 (p - 128 as int8 bits) for int8 inputs; so do 0..255 contracts with scale 1.
    """
    if table is None or table.dtype != np.uint8 or table.ndim != 1:
        return None
    shift = int(table[0])
    return shift if np.array_equal(table, (np.arange(256) + shift).astype(np.uint8)) else None


def dequantized_codes(spec: TensorSpec) -> list[float] | None:
    """Every 8-bit code's dequantized float32 value, indexed by the code's unsigned bits (None unless 8-bit
    quantized)."""
    if not is_quantized(spec) or spec.dtype not in EIGHT_BIT_DEPTHS:
        return None
    return dequantize(np.arange(256, dtype=np.uint8).view(spec.dtype), spec).tolist()
