"""The converters' errors, under `runtimes.errors.EdgekitError` (re-exported by `edgekit.errors`)."""

from __future__ import annotations

from runtimes.errors import EdgekitError


class ConversionError(EdgekitError):
    """A model could not be converted; nothing was written."""


class CalibrationError(EdgekitError, ValueError):
    """Calibration data cannot be what the model sees at inference."""


class UnknownTargetError(EdgekitError, ValueError):
    """A target string names no registered format or mode."""
