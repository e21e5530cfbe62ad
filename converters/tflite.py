"""Keras -> TFLite in float32, float16, dynamic-range and full-integer int8."""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from pathlib import Path
from typing import Any

from converters.base import (
    Artifact,
    ConversionConfig,
    ConversionError,
    Quantization,
    atomic_output,
    describe,
    register_converter,
)
from converters.calibration import CalibrationData, require_calibration
from runtimes._deps import require
from runtimes.contract import ModelContract
from runtimes.tflite_metadata import write_metadata

log = logging.getLogger(__name__)

MODES = {
    "fp32": ConversionConfig(Quantization.FLOAT32),
    "fp16": ConversionConfig(Quantization.FLOAT16),
    "dynamic": ConversionConfig(Quantization.DYNAMIC),
    "int8": ConversionConfig(Quantization.INT8, io_dtype="int8"),
    "uint8": ConversionConfig(Quantization.INT8, io_dtype="uint8"),
}


def _progress(total: int) -> Any:
    keras = require("keras", extra="tflite", package="tensorflow")
    bar = keras.utils.Progbar(total, unit_name="calibration sample")
    state = {"done": 0}

    def step() -> None:
        state["done"] += 1
        bar.update(state["done"])

    return step


@register_converter(
    "tflite", suffix=".tflite", modes=MODES, fallbacks={"int8": "dynamic", "uint8": "dynamic", "dynamic": "fp16"}
)
def convert_tflite(
    model: Any,
    output_path: str | Path,
    config: ConversionConfig,
    *,
    contract: ModelContract,
    calibration: CalibrationData | None = None,
    progress: bool = True,
) -> Artifact:
    """Convert a Keras model to a .tflite file with `contract` embedded in its metadata.

    Example:
        >>> convert_tflite(model, "m.tflite", MODES["int8"], contract=c, calibration=data)
    """
    tf = require("tensorflow", extra="tflite")
    output_path = Path(output_path)
    started = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    quant = config.quantization
    notes: list[str] = []
    if quant is not Quantization.FLOAT32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant is Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if quant is Quantization.INT8:
        data, lint = require_calibration(calibration, contract.preprocessing, config.calibration_samples)
        notes.extend(lint)
        converter.representative_dataset = data.representative_dataset(_progress(len(data)) if progress else None)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = {"int8": tf.int8, "uint8": tf.uint8}[config.io_dtype]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    chatter = io.StringIO()  # Keras prints its SavedModel signature; keep it in the debug log
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises many unrelated types
        raise ConversionError(f"TFLite conversion ({quant.value}) failed: {exc}") from exc
    finally:
        log.debug("converter output: %s", chatter.getvalue())
    embedded = describe(contract, config)
    flatbuffer = write_metadata(flatbuffer, embedded.to_json().encode())
    with atomic_output(output_path) as tmp:
        tmp.write_bytes(flatbuffer)
    seconds = time.perf_counter() - started
    log.info("wrote %s (%.1f kB, %.1f s)", output_path, len(flatbuffer) / 1024, seconds)
    mode = "uint8" if config.io_dtype == "uint8" else quant.value  # the MODES key this config came from
    return Artifact(output_path, f"tflite:{mode}", config, embedded, len(flatbuffer), seconds, tuple(notes))
