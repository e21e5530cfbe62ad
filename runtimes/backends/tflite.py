"""TFLite / LiteRT backend: ai-edge-litert, else tflite-runtime, else tensorflow.lite."""

from __future__ import annotations

import importlib
import logging
import re
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from runtimes.backends.base import RuntimeBase, read_model_file
from runtimes.backends.tflite_delegates import compiled_for_edgetpu, load_delegates, parse_delegate
from runtimes.errors import ContractError, InferenceError, InputError, MissingDependencyError, ModelLoadError
from runtimes.metadata.tflite import is_tflite, read_metadata
from runtimes.quiet import quiet_native
from runtimes.tensors import QuantParams, TensorSpec

log = logging.getLogger(__name__)

INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite.python.interpreter")


def interpreter_class() -> tuple[type, str]:
    """The first TFLite interpreter available, and the module it came from."""
    for module_name in INTERPRETER_MODULES:
        try:
            return importlib.import_module(module_name).Interpreter, module_name
        except ImportError:
            continue
    raise MissingDependencyError(
        "no TFLite interpreter is installed (tried ai-edge-litert, tflite-runtime, tensorflow). "
        'Install one with: pip install "edgekit[runtime]"'
    )


def _spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"tensor {detail['name']!r} has quantization scale {scale}")
    quant = QuantParams(float(scale), int(zero_point)) if scale else None
    return TensorSpec(detail["name"], tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]), quant)


class TFLiteRuntime(RuntimeBase):
    """Runs a .tflite file; `num_threads` sets the CPU threads (None: the interpreter's default).

    `delegates` are names ("edgetpu", "gpu", "xnnpack:num_threads=4"), with options, or library
    paths; a delegate that cannot be loaded is an error naming the library and what to install.
    """

    backend_name = "tflite"

    def __init__(self, path: Path, num_threads: int | None = None, delegates: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self._model = read_model_file(self.path)
        if not is_tflite(self._model):
            raise ModelLoadError(
                f"{self.path} is not a TFLite model (no TFL3 identifier): the file is empty, "
                "truncated or of another type"
            )
        interpreter_type, self.interpreter_module = interpreter_class()
        self.delegates = [parse_delegate(d)[0] for d in delegates]
        if compiled_for_edgetpu(self._model) and "edgetpu" not in self.delegates:
            raise ModelLoadError(
                f"{self.path.name} was compiled for the Edge TPU (it holds edgetpu-custom-op): open it with "
                "delegates=['edgetpu'] (CLI: --delegate edgetpu) on a machine with a Coral device and libedgetpu.so.1"
            )
        loaded, interpreter_options = load_delegates(list(delegates), self.interpreter_module)
        if "num_threads" in interpreter_options:
            num_threads = int(interpreter_options["num_threads"])
        try:
            with quiet_native("LiteRT"):  # "Created TensorFlow Lite XNNPACK delegate" and kernel notes: debug log
                self._interpreter = interpreter_type(
                    model_content=self._model,
                    num_threads=num_threads,
                    **({"experimental_delegates": loaded} if loaded else {}),
                )
                self._interpreter.allocate_tensors()
        except Exception as exc:  # the interpreter raises ValueError, RuntimeError and others for bad files
            custom = re.search(r"unresolved custom op: ([^\s.]+)", str(exc))
            if custom:
                raise ModelLoadError(
                    f"cannot run {self.path.name}: the file is a valid TFLite model, but it needs the custom op "
                    f"{custom.group(1)!r}, which {self.interpreter_module} does not have. Run it where that op is "
                    "registered (MediaPipe graphs bring their own; Edge TPU models need delegates=['edgetpu'])"
                ) from None
            raise ModelLoadError(f"cannot load {self.path}: the TFLite model is corrupt or truncated ({exc})") from None
        self._read_details()
        if not self._inputs or not self._outputs or any(len(d["shape"]) == 0 for d in self._inputs):
            raise ModelLoadError(f"cannot load {self.path}: the TFLite model has no usable input or output tensor")
        self._batch = int(self._inputs[0]["shape"][0])
        log.debug("opened %s with %s", self.path, self.interpreter_module)

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._input_specs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        return list(self._output_specs)

    def _read_details(self) -> None:
        """Tensor details from the interpreter; a damaged name or shape is a ModelLoadError."""
        try:
            self._inputs = self._interpreter.get_input_details()
            self._outputs = self._interpreter.get_output_details()
            self._input_specs = [_spec(d) for d in self._inputs]
            self._output_specs = [_spec(d) for d in self._outputs]
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"cannot load {self.path}: its tensor descriptions are corrupt ({exc})") from None
        self._input_indices = [d["index"] for d in self._inputs]
        self._output_indices = [d["index"] for d in self._outputs]

    def _ensure_batch(self, batch: int) -> None:
        """Resize the interpreter once per batch size change, not per call."""
        if batch == self._batch:
            return
        if batch < 1:
            raise InputError(f"{self.path.name} got an empty batch (0 images); pass at least one")
        try:
            for detail in self._inputs:
                self._interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InferenceError(f"{self.path.name} cannot run a batch of {batch}: {exc}") from None
        self._read_details()
        self._batch = batch

    def _invoke(self, interpreter: Any) -> list[np.ndarray]:
        try:
            interpreter.invoke()
        except RuntimeError as exc:
            raise InferenceError(f"{self.path.name} failed while running: {str(exc).strip()[:300]}") from None
        return [interpreter.get_tensor(index) for index in self._output_indices]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        interpreter = self._live_interpreter()
        if len(inputs) != len(self._inputs):
            raise InputError(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        if inputs[0].shape[0] != self._batch:
            self._ensure_batch(int(inputs[0].shape[0]))
        try:
            for index, array in zip(self._input_indices, inputs):
                interpreter.set_tensor(index, array)
        except ValueError as exc:  # wrong dtype or shape for the tensor
            raise InputError(f"{self.path.name} cannot take this input: {exc}") from None
        return self._invoke(interpreter)

    def _live_interpreter(self) -> Any:
        if self._interpreter is None:
            raise InputError(f"{self.path.name} was closed; open it again with edgekit.load")
        return self._interpreter

    def run_filled(self, shape: tuple[int, ...], fill: Callable[[np.ndarray], object]) -> list[np.ndarray]:
        """`fill` writes straight into the interpreter's input tensor: no set_tensor copy."""
        interpreter = self._live_interpreter()
        if len(self._inputs) != 1:
            raise InputError(f"{self.path.name} takes {len(self._inputs)} inputs; run_filled feeds one")
        self._ensure_batch(int(shape[0]))
        view = interpreter.tensor(self._input_indices[0])()
        try:
            if view.shape != tuple(shape):
                raise InputError(f"{self.path.name} expects input of shape {view.shape}, got {tuple(shape)}")
            fill(view)
        except BaseException as error:
            # invoke() refuses while any view of the interpreter's memory is alive, and a kept
            # exception keeps fill's frame (and its view) alive: clear those frames' locals
            traceback.clear_frames(error.__traceback__)
            raise
        finally:
            del view
        return self._invoke(interpreter)

    def standard_contract(self) -> Any:
        """The contract TFLite Support metadata (as MediaPipe reads it) describes, for third-party models."""
        from runtimes.metadata.standard import STANDARD_METADATA_NAME, associated_files, derive_contract, parse_metadata

        try:
            buffer = read_metadata(self._model, STANDARD_METADATA_NAME)
            if buffer is None:
                return None
            metadata = parse_metadata(buffer, associated_files(self._model))
        except ValueError as exc:
            if isinstance(exc, ContractError):
                raise
            raise ModelLoadError(f"cannot load {self.path}: its standard metadata is corrupt ({exc})") from None
        classes = self._output_specs[0].shape[-1] if self._output_specs else 0
        return derive_contract(metadata, tuple(self._input_specs[0].shape), classes)

    def embedded_contract(self) -> bytes | None:
        try:
            return read_metadata(self._model)
        except ValueError as exc:
            raise ModelLoadError(f"cannot load {self.path}: its metadata is corrupt ({exc})") from None

    def close(self) -> None:
        self._interpreter = None
