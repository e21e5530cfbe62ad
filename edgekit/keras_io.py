"""`.keras` files that carry edgekit's contract inside the archive.

Keras ignores extra entries in its zip, so the contract travels with the trained model
exactly as it does with every exported artifact.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from converters.base import ordinary_permissions
from edgekit._tf import keras
from edgekit.errors import ModelLoadError
from edgekit.layers import fake_quant
from runtimes.contract import ModelContract

CONTRACT_ENTRY = "edgekit_contract.json"


def save_keras(model: Any, path: str | Path, contract: ModelContract) -> Path:
    """Save a Keras model with its contract inside, atomically: a failure leaves no half-written .keras file.

    Args:
        model: the keras.Model.
        path: the .keras file to write (its folder is made).
        contract: the `ModelContract` to embed (an extra entry of the archive).

    Returns:
        `path`.

    Raises:
        OSError: the file cannot be written (nothing is left behind).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".keras-save-", dir=path.parent))
    try:
        staged = staging / path.name
        model.save(staged)
        with zipfile.ZipFile(staged, "a") as archive:
            archive.writestr(CONTRACT_ENTRY, contract.to_signed_json())
        ordinary_permissions(staged)
        staged.replace(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def read_keras_contract(path: str | Path) -> ModelContract | None:
    """The contract inside a .keras file, read without importing Keras."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if CONTRACT_ENTRY not in archive.namelist():
                return None
            return ModelContract.from_json(archive.read(CONTRACT_ENTRY))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(f"{path} is not a readable .keras file ({exc})") from None


def load_keras(path: str | Path) -> tuple[Any, ModelContract | None]:
    """Load a .keras model with safe_mode=True (no arbitrary code) and its contract, if any.

    Args:
        path: a .keras file (edgekit's carry their contract; any other Keras 3 file loads without one).

    Returns:
        (the keras.Model, its `ModelContract` or None).

    Raises:
        ModelLoadError: a missing file, another suffix, or a file Keras cannot load.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"Keras model file not found: {path}")
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path} is not a .keras file; save Keras 3 models with model.save('name.keras')")
    contract = read_keras_contract(path)
    fake_quant.register()  # a quantization-aware model holds edgekit's layers
    try:
        model = keras().saving.load_model(
            path, safe_mode=True, compile=False
        )  # training recompiles; custom losses need no lookup
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError for bad archives
        raise ModelLoadError(f"cannot load Keras model {path}: {exc}") from exc
    return model, contract
