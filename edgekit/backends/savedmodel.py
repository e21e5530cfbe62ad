"""A SavedModel on TensorFlow, behind the runtimes' backend protocol: host side only (it needs TensorFlow).

It runs the SavedModel's ``edgekit`` signature: uint8 pixels at the contract's geometry, scaled
in the graph, and the model's own outputs. So `edgekit.load` and the export's check treat a
SavedModel like every other artifact (the same preprocessing, the same task decoding).
Registered by folder: any folder holding ``saved_model.pb``. The device side never imports this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtimes.backends.base import RuntimeBase
from runtimes.deps import require
from runtimes.errors import InputError, ModelLoadError
from runtimes.metadata.savedmodel import CONTRACT_ASSET
from runtimes.metadata.savedmodel import EDGEKIT_SIGNATURE as SIGNATURE
from runtimes.quiet import quiet_native
from runtimes.tensors import QuantParams, TensorSpec


class SavedModelRuntime(RuntimeBase):
    """`tf.saved_model.load` of an edgekit SavedModel (TensorFlow's threads are process-wide: `num_threads` is not
    used)."""

    backend_name = "tensorflow"

    def __init__(self, path: str | Path, num_threads: int | None = None, **_: Any) -> None:
        self.path = Path(path)
        tf = require("tensorflow", extra="train")
        try:
            with quiet_native("tf.saved_model.load"):
                self._loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TensorFlow raises many types for a damaged folder
            raise ModelLoadError(
                f"cannot load the SavedModel {self.path}: {type(exc).__name__}: {str(exc)[:300]}"
            ) from None
        if SIGNATURE not in self._loaded.signatures:
            raise ModelLoadError(
                f"{self.path} has no {SIGNATURE!r} signature (signatures: {sorted(self._loaded.signatures)}): "
                "it was not exported by edgekit; call its serving_default signature with TensorFlow instead"
            )
        self._tf = tf
        self._function = self._loaded.signatures[SIGNATURE]
        ((name, spec),) = self._function.structured_input_signature[1].items()
        self._input_name = name
        self._input_specs = [TensorSpec(name, (-1, *spec.shape[1:]), np.dtype(np.uint8), QuantParams(1.0, 0))]
        contract = self.embedded_contract()
        order = json.loads(contract)["quantization"].get("outputs") if contract else None
        outputs = self._function.structured_outputs
        self._output_names = list(order or sorted(outputs))
        self._output_specs = [
            TensorSpec(
                n, tuple(-1 if d is None else d for d in outputs[n].shape), np.dtype(outputs[n].dtype.as_numpy_dtype)
            )
            for n in self._output_names
        ]

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._input_specs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        return list(self._output_specs)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != 1:
            raise InputError(f"{self.path.name} takes one input; got {len(inputs)}")
        batch = np.asarray(inputs[0])
        if batch.dtype != np.uint8:
            raise InputError(f"{self.path.name} takes uint8 pixels; got {batch.dtype}")
        outputs = self._function(**{self._input_name: self._tf.constant(batch)})
        return [outputs[name].numpy() for name in self._output_names]

    def embedded_contract(self) -> bytes | None:
        file = self.path / "assets" / CONTRACT_ASSET
        return file.read_bytes() if file.is_file() else None

    def close(self) -> None:
        self._loaded = self._function = None
