"""TFLite's integer paths: mixed precision (named scopes in float), a quantization-aware model's int8 (its own
ranges) and the full-integer check accelerators need (no float tensor, static shapes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from converters.base import AWARE_TRAINING, ConversionConfig, ConversionError, Quantization, in_float_scopes
from runtimes.contract import ModelContract
from runtimes.quiet import quiet_native

AWARE_NOTE = "int8 ranges from quantization-aware training: no calibration data, integer everywhere"


def _aware_int8(tf: Any, converter: Any, config: ConversionConfig) -> bytes:
    """A quantization-aware model's int8 file: every range from its fake-quant ops, every tensor integer.

    Not `supported_ops = TFLITE_BUILTINS_INT8`: the converter's own check wants a representative dataset then,
    though the graph needs none. Integer everywhere is verified on the result instead.
    """
    io_type = {"int8": tf.int8, "uint8": tf.uint8}[config.io_dtype]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    try:
        with quiet_native("TFLite converter int8 (quantization-aware)"):
            flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises many unrelated types
        raise ConversionError(f"TFLite conversion of the quantization-aware model failed: {exc}") from exc
    left = float_tensors(flatbuffer)
    if left:
        raise ConversionError(
            f"the quantization-aware model left {len(left)} float tensor(s) in the int8 file ({', '.join(left[:4])}): "
            "a layer without an int8 range; quantize_aware names the layers it supports"
        )
    return flatbuffer


def aware_int8(config: ConversionConfig, contract: ModelContract) -> bool:
    """True for an int8 conversion of a model trained quantization-aware: its ranges, integer everywhere."""
    return config.quantization is Quantization.INT8 and AWARE_TRAINING in contract.quantization


def _full_integer(flatbuffer: bytes) -> bytes:
    """`flatbuffer` when it is what accelerators take: no float tensor, batch 1 and static shapes; else an error
    naming what is not."""
    tensors, boundary = _details(flatbuffer)
    left = _floating(tensors)
    if left:
        raise ConversionError(
            f"not full integer: {len(left)} float tensor(s) left ({', '.join(left[:4])}); an accelerator would run "
            "them on the CPU or refuse the file"
        )
    dynamic = _dynamic(boundary)
    if dynamic:
        raise ConversionError(f"not static: tensor(s) {', '.join(dynamic[:4])} have dynamic dimensions")
    return flatbuffer


def _details(flatbuffer: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(every tensor's details, the inputs' and outputs' details) of `flatbuffer`, read by one interpreter."""
    from runtimes.backends.tflite import interpreter_class

    with quiet_native("LiteRT"):
        interpreter = interpreter_class()[0](model_content=flatbuffer)
    return interpreter.get_tensor_details(), interpreter.get_input_details() + interpreter.get_output_details()


def _floating(details: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in details if np.issubdtype(d["dtype"], np.floating)]


def _dynamic(details: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in details if any(size < 0 for size in list(d["shape_signature"])[1:])]


def dynamic_tensors(flatbuffer: bytes) -> list[str]:
    """The input and output tensors of `flatbuffer` with a dynamic dimension other than a batch of 1."""
    return _dynamic(_details(flatbuffer)[1])


def float_tensors(flatbuffer: bytes) -> list[str]:
    """The names of `flatbuffer`'s floating-point tensors (none in a full-integer file)."""
    return _floating(_details(flatbuffer)[0])


def _mixed_int8(tf: Any, converter: Any, config: ConversionConfig, scopes: tuple[str, ...]) -> tuple[bytes, int]:
    """Integer everywhere except the ops under `scopes` (a detector's box sides and decoding), and how many.

    What TFLite's QuantizationDebugger does for selective quantization, without its layer-by-layer
    debug run: calibrate only, then quantize with those ops denylisted. The input keeps the
    requested integer type; outputs computed in float stay float32.
    """
    from tensorflow.lite.python import convert as lite_convert

    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=calibrated)
    outputs = {detail["name"] for detail in interpreter.get_output_details()}  # the scope's results, kept float too
    denied = sorted(
        detail["name"]
        for detail in interpreter.get_tensor_details()
        if in_float_scopes(detail["name"], scopes) or detail["name"] in outputs
    )
    if not any(in_float_scopes(name, scopes) for name in denied):
        raise ConversionError(f"no op under {scopes} in the graph")
    io_type = {"int8": tf.int8, "uint8": tf.uint8}[config.io_dtype]
    flatbuffer = lite_convert.mlir_quantize(
        calibrated, fully_quantize=False, input_data_type=io_type, output_data_type=tf.float32, denylisted_nodes=denied
    )
    return flatbuffer, len(denied)
