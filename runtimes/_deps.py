"""Lazy imports of optional packages with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from runtimes.errors import MissingDependencyError


def require(module: str, *, extra: str, package: str | None = None) -> ModuleType:
    """Import `module` or raise an error that says which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pip_name = package or module.split(".")[0]
        raise MissingDependencyError(
            f"{pip_name} is required for this but is not installed ({exc}). "
            f'Install it with: pip install "edgekit[{extra}]"'
        ) from exc
