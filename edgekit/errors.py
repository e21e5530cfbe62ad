"""edgekit's errors: one hierarchy under `EdgekitError`, every class importable from here (and from `edgekit`).

The device's errors are defined in `runtimes.errors` and the converters' in `converters.errors`; the host's
own (data, training, export, deploy) here.
"""

from converters.errors import CalibrationError, ConversionError, UnknownTargetError
from runtimes.errors import (
    BackendUnavailableError,
    ContractError,
    EdgekitError,
    InferenceError,
    InputError,
    IntegrityError,
    MissingDependencyError,
    ModelLoadError,
    RequestError,
    ServeConfigError,
    SourceError,
    UnknownNameError,
    UnsupportedOpError,
)


class DatasetError(EdgekitError, ValueError):
    """A dataset path or array cannot be used; the message says what to fix."""


class ExportError(EdgekitError, ValueError):
    """Export options that cannot work together (e.g. an accuracy gate without check data)."""


class TrainingError(EdgekitError, ValueError):
    """Training cannot start with the given model, data or options."""


class DeployError(EdgekitError, ValueError):
    """A bundle cannot be made (unsupported model, unsafe archive)."""


__all__ = [
    "BackendUnavailableError",
    "CalibrationError",
    "ContractError",
    "ConversionError",
    "DatasetError",
    "DeployError",
    "EdgekitError",
    "ExportError",
    "InferenceError",
    "InputError",
    "IntegrityError",
    "MissingDependencyError",
    "ModelLoadError",
    "RequestError",
    "ServeConfigError",
    "SourceError",
    "TrainingError",
    "UnknownNameError",
    "UnknownTargetError",
    "UnsupportedOpError",
]
