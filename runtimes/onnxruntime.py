"""ONNX Runtime backend: execution providers and threads settable."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from runtimes._deps import require
from runtimes.base import QuantParams, RuntimeBase, TensorSpec, register_backend
from runtimes.errors import InputError, ModelLoadError, UnknownNameError
from runtimes.onnx_metadata import CONTRACT_METADATA_KEY, INPUT_QUANTIZATION_KEY

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider", "coreml": "CoreMLExecutionProvider", "directml": "DmlExecutionProvider",
}
PROVIDER_INSTALL = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (with a matching CUDA and cuDNN)",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu and the TensorRT libraries",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino",
    "CoreMLExecutionProvider": "the standard onnxruntime wheel on macOS",
    "DmlExecutionProvider": "pip install onnxruntime-directml (Windows)",
}

_ONNX_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
}


def _spec(node: object, quantization: QuantParams | None = None) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else -1 for d in node.shape)  # symbolic dims -> -1
    dtype = np.dtype(_ONNX_TYPES.get(node.type, np.float32))
    return TensorSpec(node.name, shape, dtype, quantization if np.issubdtype(dtype, np.integer) else None)


@register_backend("onnxruntime", suffixes=(".onnx",))
class OnnxRuntime(RuntimeBase):
    """Runs an .onnx file. `providers` are tried in order (default: CPU); `num_threads` sets intra-op threads."""

    backend_name = "onnxruntime"

    def __init__(
        self, path: Path, providers: Sequence[str] | None = None, num_threads: int | None = None, allow_fallback: bool = False
    ) -> None:
        ort = require("onnxruntime", extra="runtime-onnx")
        self.path = Path(path)
        available = ort.get_available_providers()
        requested = [PROVIDER_NAMES.get(p.lower(), p) for p in (providers or ["cpu"])]
        missing = [p for p in requested if p not in available]
        if missing and not allow_fallback:
            raise UnknownNameError(
                f"execution provider(s) {missing} are not available in this onnxruntime build; "
                f"available: {', '.join(available)}. "
                + " ".join(f"{p}: {PROVIDER_INSTALL[p]}." for p in missing if p in PROVIDER_INSTALL)
                + " Pass allow_fallback=True to run on what is available instead"
            )
        if missing:
            log.warning("%s: providers %s are not available; falling back to %s", self.path.name, missing,
                        [p for p in requested if p in available] or ["CPUExecutionProvider"])
            requested = [p for p in requested if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=requested)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelLoadError(f"cannot load {self.path}: the ONNX model is corrupt, truncated or invalid ({exc})") from None
        self.providers = self._session.get_providers()
        self._input_names = [i.name for i in self._session.get_inputs()]
        stored = self._session.get_modelmeta().custom_metadata_map.get(INPUT_QUANTIZATION_KEY)
        self._input_quantization = QuantParams(**json.loads(stored)) if stored else None

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [_spec(node, self._input_quantization) for node in self._session.get_inputs()]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [_spec(node) for node in self._session.get_outputs()]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._session is None:
            raise InputError(f"{self.path.name} was closed; open it again with edgekit.load")
        if len(inputs) != len(self._input_names):
            raise InputError(f"{self.path.name} takes {len(self._input_names)} input(s), got {len(inputs)}")
        return self._session.run(None, dict(zip(self._input_names, inputs)))

    def embedded_contract(self) -> bytes | None:
        value = self._session.get_modelmeta().custom_metadata_map.get(CONTRACT_METADATA_KEY)
        return value.encode() if value is not None else None

    def close(self) -> None:
        self._session = None
