"""edgekit's host side: one module per target format, registered by name.

Heavy packages (TensorFlow, coremltools, onnx) are imported only inside convert calls.
"""

from converters import coreml as _coreml  # noqa: F401  (converters register themselves)
from converters import onnx as _onnx  # noqa: F401
from converters import savedmodel as _savedmodel  # noqa: F401
from converters import tflite as _tflite  # noqa: F401
from converters.base import (
    CONVERTERS,
    Artifact,
    ConversionConfig,
    ConverterEntry,
    Quantization,
    all_targets,
    needing_calibration,
    parse_target,
    register_converter,
)
from converters.calibration import CalibrationData, CalibrationReport
from converters.errors import CalibrationError, ConversionError, UnknownTargetError

__all__ = [
    "CONVERTERS",
    "Artifact",
    "CalibrationData",
    "CalibrationError",
    "CalibrationReport",
    "ConversionConfig",
    "ConversionError",
    "ConverterEntry",
    "Quantization",
    "UnknownTargetError",
    "all_targets",
    "needing_calibration",
    "parse_target",
    "register_converter",
]
