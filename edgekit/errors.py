"""edgekit's errors: one hierarchy under `EdgekitError` (shared with runtimes and converters)."""

from converters.base import CalibrationError, ConversionError, UnknownTargetError
from runtimes.errors import (
    ContractError,
    EdgekitError,
    InferenceError,
    InputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownNameError,
)


class DatasetError(EdgekitError, ValueError):
    """A dataset path or array cannot be used; the message says what to fix."""


class ExportError(EdgekitError, ValueError):
    """Export options that cannot work together (e.g. an accuracy gate without check data)."""


class TrainingError(EdgekitError, ValueError):
    """Training cannot start with the given model, data or options."""


__all__ = [
    "CalibrationError",
    "ContractError",
    "ConversionError",
    "DatasetError",
    "EdgekitError",
    "ExportError",
    "InferenceError",
    "InputError",
    "MissingDependencyError",
    "ModelLoadError",
    "TrainingError",
    "UnknownNameError",
    "UnknownTargetError",
]
