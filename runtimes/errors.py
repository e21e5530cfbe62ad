"""One error hierarchy for the whole SDK, rooted here so the device side owns it too: every error the device
side raises on purpose. The converters' errors are `converters.errors`, the host's `edgekit.errors`, which
re-exports all of them."""

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


class UnsupportedOpError(ModelLoadError):
    """A program uses an op the reference executor does not implement."""


class IntegrityError(EdgekitError):
    """A file does not match the SHA-256 it was shipped with: it is damaged or was changed."""


class SourceError(EdgekitError):
    """A source cannot be opened, or a live source stopped and could not be reopened."""


class RequestError(EdgekitError):
    """A request edgekit refuses: its HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ServeConfigError(EdgekitError, ValueError):
    """`edgekit serve` was asked to start in a way that is unsafe or cannot work (no token on an open address)."""
