"""Lazy imports of optional packages with an error that names the extra to install."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from runtimes.errors import MissingDependencyError
from runtimes.quiet import quiet_native

# packages whose first import prints C++ start-up lines (oneDNN, CUDA probes, absl) or warnings
NOISY_IMPORTS = ("tensorflow", "keras", "tf2onnx", "coremltools", "onnxruntime")


def _import(module: str) -> ModuleType:
    top = module.split(".")[0]
    if top not in NOISY_IMPORTS or top in sys.modules and module in sys.modules:
        return importlib.import_module(module)
    with quiet_native(f"import {module}"):
        imported = importlib.import_module(module)
        if top == "tensorflow" and module == "tensorflow":
            imported.config.list_physical_devices()  # the CUDA probe prints here, once
        return imported


def require(module: str, *, extra: str, package: str | None = None) -> ModuleType:
    """Import `module` or raise an error that says which pip extra provides it."""
    try:
        return _import(module)
    except ImportError as exc:
        pip_name = package or module.split(".")[0]
        raise MissingDependencyError(
            f"{pip_name} is required for this but is not installed ({exc}). "
            f'Install it with: pip install "edgekit[{extra}]"'
        ) from exc
