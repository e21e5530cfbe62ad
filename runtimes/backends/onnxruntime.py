"""ONNX Runtime backend: execution providers and threads settable."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from runtimes.backends.base import RuntimeBase
from runtimes.deps import require
from runtimes.errors import ContractError, InferenceError, InputError, ModelLoadError, UnknownNameError
from runtimes.metadata.onnx import CONTRACT_METADATA_KEY, INPUT_QUANTIZATION_KEY
from runtimes.quiet import quiet_native
from runtimes.tensors import QuantParams, TensorSpec

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
}
PROVIDER_INSTALL = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (with a matching CUDA and cuDNN)",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu and the TensorRT libraries",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino",
    "CoreMLExecutionProvider": "the standard onnxruntime wheel on macOS",
    "DmlExecutionProvider": "pip install onnxruntime-directml (Windows)",
}

_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _spec(node: object, quantization: QuantParams | None = None) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else -1 for d in node.shape)  # symbolic dims -> -1
    dtype = np.dtype(_ONNX_TYPES.get(node.type, np.float32))
    return TensorSpec(node.name, shape, dtype, quantization if np.issubdtype(dtype, np.integer) else None)


def _input_quantization(stored: str | None, path: Path) -> QuantParams | None:
    """The input's {"scale", "zero_point"} metadata, validated: a bad one would quantize every pixel wrong."""
    if stored is None:
        return None
    try:
        data = json.loads(stored)
    except (ValueError, RecursionError):
        raise ContractError(
            f"{path.name}: its input quantization metadata is not valid JSON: {stored[:80]!r}"
        ) from None
    scale = data.get("scale") if isinstance(data, dict) else None
    zero_point = data.get("zero_point") if isinstance(data, dict) else None
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not math.isfinite(scale)
        or scale <= 0
        or isinstance(zero_point, bool)
        or not isinstance(zero_point, int)
        or not -128 <= zero_point <= 255
    ):
        raise ContractError(
            f"{path.name}: invalid input quantization {stored[:80]!r}; it needs a finite scale > 0 "
            "and an 8-bit integer zero_point: export the model again"
        )
    return QuantParams(float(scale), zero_point)


class OnnxRuntime(RuntimeBase):
    """Runs an .onnx file. `providers` are tried in order (default: CPU); `num_threads` sets intra-op threads."""

    backend_name = "onnxruntime"

    def __init__(
        self,
        path: Path,
        providers: Sequence[str] | None = None,
        num_threads: int | None = None,
        allow_fallback: bool = False,
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
            log.warning(
                "%s: providers %s are not available; falling back to %s",
                self.path.name,
                missing,
                [p for p in requested if p in available] or ["CPUExecutionProvider"],
            )
            requested = [p for p in requested if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            with quiet_native("ONNX Runtime"):  # it prints "EP Error" banners for files it cannot load
                self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=requested)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelLoadError(
                f"cannot load {self.path}: the ONNX model is corrupt, truncated or invalid ({exc})"
            ) from None
        self.providers = self._session.get_providers()
        try:  # names and metadata are decoded from the file: damaged bytes surface here
            inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
            self._input_names = [i.name for i in inputs]
            self._metadata = dict(self._session.get_modelmeta().custom_metadata_map)
            self._input_quantization = _input_quantization(self._metadata.get(INPUT_QUANTIZATION_KEY), self.path)
            self._input_specs = [_spec(node, self._input_quantization) for node in inputs]
            self._output_specs = [_spec(node) for node in outputs]
        except (UnicodeDecodeError, RuntimeError, ValueError) as exc:
            if isinstance(exc, ContractError):
                raise
            raise ModelLoadError(f"cannot load {self.path}: its tensor names or metadata are corrupt ({exc})") from None
        if not self._input_specs or not self._output_specs:
            raise ModelLoadError(f"cannot load {self.path}: the ONNX graph has no input or no output")

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._input_specs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        return list(self._output_specs)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._session is None:
            raise InputError(f"{self.path.name} was closed; open it again with edgekit.load")
        if len(inputs) != len(self._input_names):
            raise InputError(f"{self.path.name} takes {len(self._input_names)} input(s), got {len(inputs)}")
        if inputs and inputs[0].ndim and inputs[0].shape[0] == 0:
            raise InputError(f"{self.path.name} got an empty batch (0 images); pass at least one")
        try:
            return self._session.run(None, dict(zip(self._input_names, inputs)))
        except Exception as exc:  # onnxruntime's Fail, InvalidArgument, RuntimeException...
            kind = type(exc).__name__
            if "InvalidArgument" in kind:
                raise InputError(f"{self.path.name} cannot take this input: {str(exc).strip()[:300]}") from None
            raise InferenceError(
                f"{self.path.name} failed while running ({kind}): {str(exc).strip()[:300]}; "
                "the file may be damaged: export or copy it again"
            ) from None

    def embedded_contract(self) -> bytes | None:
        value = self._metadata.get(CONTRACT_METADATA_KEY)
        return value.encode() if value is not None else None

    def close(self) -> None:
        self._session = None
