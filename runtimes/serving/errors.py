"""The errors of `edgekit serve`: a request it refuses (with its HTTP status) and a server it will not start."""

from __future__ import annotations

from runtimes.errors import EdgekitError


class RequestError(EdgekitError):
    """A request edgekit refuses: its HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ServeConfigError(EdgekitError, ValueError):
    """`edgekit serve` was asked to start in a way that is unsafe or cannot work (no token on an open address)."""
