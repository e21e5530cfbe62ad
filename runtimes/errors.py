"""One error hierarchy for the whole SDK, rooted here so the device side owns it too."""

from __future__ import annotations


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""


class MissingDependencyError(EdgekitError, ImportError):
    """An optional package is not installed; the message names the extra to install."""


class ModelLoadError(EdgekitError):
    """A model file is missing, truncated, corrupt or of an unknown type."""


class ContractError(EdgekitError, ValueError):
    """A preprocessing contract is invalid, missing or does not fit the model."""


class InputError(EdgekitError, ValueError):
    """An image or tensor handed to a model cannot be used as given."""


class UnknownNameError(EdgekitError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(EdgekitError):
    """The model opened, but this machine cannot execute it (e.g. CoreML off macOS)."""


class InferenceError(EdgekitError, RuntimeError):
    """The model ran but failed, or gave no valid result (non-finite scores): the file is damaged,
    or the input is far outside what the model was trained on."""
