"""CoreML backend: predicts through coremltools on macOS; elsewhere it opens, describes, refuses to run.

Apple's CoreML runtime exists only on macOS. On Linux the package is still opened (without
loading it for prediction) so its inputs, outputs, contract and compute units can be read.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtimes.backends.base import RuntimeBase
from runtimes.contract import ModelContract
from runtimes.deps import require
from runtimes.errors import BackendUnavailableError, ContractError, InputError, ModelLoadError
from runtimes.metadata.coreml import COMPUTE_UNITS, CONTRACT_METADATA_KEY
from runtimes.tensors import TensorSpec

_COLOR_SPACES = {10: "gray", 20: "rgb", 30: "bgr"}  # CoreML ImageFeatureType.ColorSpace
_ARRAY_TYPES = {
    65552: np.float16,
    65568: np.float32,
    65600: np.float64,
    131104: np.int32,
}  # ArrayFeatureType.ArrayDataType


def prediction_supported() -> bool:
    return sys.platform == "darwin"


class CoreMLRuntime(RuntimeBase):
    """An ML program package. `compute_units` (ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY) defaults to the one exported."""

    backend_name = "coreml"

    def __init__(self, path: Path, compute_units: str | None = None, num_threads: int | None = None) -> None:
        # num_threads is accepted for a uniform call shape; CoreML schedules its own threads.
        self.path = Path(path)
        if self.path.suffix == ".mlpackage" and not (self.path / "Manifest.json").is_file():
            raise ModelLoadError(
                f"{self.path} is not a CoreML package (no Manifest.json): it is incomplete or of another type"
            )
        ct = require("coremltools", extra="coreml")
        self.can_run = self._can_predict()
        self.unavailable_reason = (
            ""
            if self.can_run
            else (
                f"CoreML prediction needs macOS; this machine runs {platform.system()}. The package was opened and "
                "its contract read, but it cannot execute here: verify it on a Mac, or check it numerically with "
                "edgekit.load(path, backend='reference')"
            )
        )
        try:
            probe = ct.models.MLModel(str(self.path), skip_model_load=True)
        except Exception as exc:  # coremltools raises many types for bad packages
            raise ModelLoadError(
                f"cannot load {self.path}: the CoreML package is corrupt or unreadable ({exc})"
            ) from None
        self._spec = probe.get_spec()
        self._contract_json = dict(self._spec.description.metadata.userDefined).get(CONTRACT_METADATA_KEY)
        self._contract = self._read_contract()
        exported_units = self._contract.quantization.get("compute_units") if self._contract else None
        self.compute_units = compute_units or exported_units or "ALL"
        if self.compute_units not in COMPUTE_UNITS:
            raise InputError(f"invalid compute_units {self.compute_units!r}; valid: {', '.join(COMPUTE_UNITS)}")
        self._model = self._open_predictor(ct)

    def _can_predict(self) -> bool:
        return prediction_supported()

    def _read_contract(self) -> ModelContract | None:
        """The embedded contract, validated with what this backend needs from it: the ImageType's
        scale and bias and labels that match the classifier's, so nothing invalid reaches run()."""
        if self._contract_json is None:
            return None
        contract = ModelContract.from_json(self._contract_json)
        quant = contract.quantization
        channels = contract.preprocessing.channels
        scale, bias = quant.get("image_scale"), quant.get("image_bias")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale == 0:
            raise ContractError(
                f"{self.path.name}: the contract's image_scale {scale!r} is missing or invalid; export the package "
                "again"
            )
        if not (
            isinstance(bias, list)
            and len(bias) == channels
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and np.isfinite(b) for b in bias)
        ):
            raise ContractError(
                f"{self.path.name}: the contract's image_bias {bias!r:.80} is missing or not {channels} finite numbers"
            )
        if not isinstance(quant.get("folded_std", False), bool):
            raise ContractError(f"{self.path.name}: the contract's folded_std must be true or false")
        classes = self.program_labels()
        if classes and list(contract.labels) != classes:
            raise ContractError(
                f"{self.path.name}: the contract's {len(contract.labels)} labels {list(contract.labels)[:5]} differ "
                "from the "
                f"classifier's {len(classes)} {classes[:5]}; the package is damaged or was edited: export it again"
            )
        return contract

    def program_labels(self) -> list[str]:
        """The class labels stored in the ML program's classify op (empty for a non-classifier)."""
        if not self._spec.HasField("mlProgram") or "main" not in self._spec.mlProgram.functions:
            return []
        function = self._spec.mlProgram.functions["main"]
        operations = list(function.block_specializations[function.opset].operations)
        consts = {op.outputs[0].name: op for op in operations if op.type == "const" and op.outputs}
        for op in operations:
            if op.type != "classify" or "classes" not in op.inputs:
                continue
            argument = op.inputs["classes"].arguments[0]
            if argument.HasField("value"):  # coremltools writes the labels inline, as a list of strings
                return [
                    str(v)
                    for item in argument.value.immediateValue.list.values
                    for v in item.immediateValue.tensor.strings.values
                ]
            const = consts.get(argument.name)
            if const is not None:
                return [str(v) for v in const.attributes["val"].immediateValue.tensor.strings.values]
        return []

    def _open_predictor(self, ct: Any) -> Any:
        """What run() predicts with: CoreML itself, on macOS."""
        if not self.can_run:
            return None
        return ct.models.MLModel(str(self.path), compute_units=getattr(ct.ComputeUnit, self.compute_units))

    @property
    def input_specs(self) -> list[TensorSpec]:
        specs = []
        for feature in self._spec.description.input:
            image = feature.type.imageType
            channels = 1 if _COLOR_SPACES.get(image.colorSpace) == "gray" else 3
            specs.append(
                TensorSpec(feature.name, (1, int(image.height), int(image.width), channels), np.dtype(np.float32))
            )
        return specs

    @property
    def is_classifier(self) -> bool:
        """A classifier package outputs a label -> probability dictionary; others output arrays."""
        return bool(self._spec.description.predictedProbabilitiesName)

    @property
    def output_specs(self) -> list[TensorSpec]:
        if self.is_classifier:
            name = self._spec.description.predictedProbabilitiesName
            labels = self._spec.neuralNetworkClassifier.stringClassLabels.vector or self._class_labels()
            return [TensorSpec(name, (1, len(labels)), np.dtype(np.float32))]
        return [
            TensorSpec(
                feature.name,
                tuple(int(d) for d in feature.type.multiArrayType.shape),
                np.dtype(_ARRAY_TYPES.get(feature.type.multiArrayType.dataType, np.float32)),
            )
            for feature in self._spec.description.output
        ]

    def _class_labels(self) -> list[str]:
        return list(self._contract.labels) if self._contract else self.program_labels()

    @property
    def input_color_space(self) -> str:
        return _COLOR_SPACES.get(self._spec.description.input[0].type.imageType.colorSpace, "rgb")

    def image_scale_and_bias(self) -> tuple[float, list[float]]:
        """The scale and per-channel bias the ML program applies to its image, read from its ops."""
        function = self._spec.mlProgram.functions["main"]
        operations = list(function.block_specializations[function.opset].operations)
        consts = {
            op.outputs[0].name: list(op.attributes["val"].immediateValue.tensor.floats.values)
            for op in operations
            if op.type == "const"
        }
        by_output = {op.outputs[0].name: op for op in operations if op.outputs}
        name = self._spec.description.input[0].name

        def operand(op_name: str) -> list[float] | None:
            op = by_output.get(op_name)
            return consts.get(op.inputs["y"].arguments[0].name) if op is not None else None

        channels = self.input_specs[0].shape[-1]
        scale = operand(f"{name}__scaled__") or [1.0]
        bias = operand(f"{name}__biased__") or [0.0] * channels
        return float(scale[0]), [float(b) for b in bias]

    def pixels(self, tensor: np.ndarray) -> np.ndarray:
        """The exact 0..255 pixels (HxWxC, contract colour order) whose ImageType input gives `tensor`.

        The ImageType applies p * scale + bias; the contract's float tensor is that value
        (divided by a folded std), so inverting it recovers the pixels.
        """
        if self._contract is None:
            raise InputError(f"{self.path.name} has no edgekit contract, so its image scaling cannot be inverted")
        quant = self._contract.quantization
        scale, bias = float(quant["image_scale"]), np.asarray(quant["image_bias"], np.float32)
        if quant.get("folded_std"):
            tensor = tensor * np.asarray(self._contract.preprocessing.std, np.float32)
        return np.clip(np.rint((tensor - bias) / scale), 0, 255).astype(np.uint8)

    def _labels(self) -> list[str]:
        return self._class_labels()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not self.can_run:
            raise BackendUnavailableError(f"{self.path.name}: {self.unavailable_reason}")
        predictions = [self._predict_one(self.pixels(tensor)) for tensor in inputs[0]]
        if self.is_classifier:
            name, labels = self._spec.description.predictedProbabilitiesName, self._labels()
            return [np.asarray([[p[name][label] for label in labels] for p in predictions], np.float32)]
        return [
            np.concatenate([np.asarray(p[spec.name]).reshape(spec.shape) for p in predictions]).astype(spec.dtype)
            for spec in self.output_specs
        ]

    def _predict_one(self, pixels: np.ndarray) -> dict[str, Any]:
        """The package's outputs for one image's 0..255 pixels (HxWxC, contract colour order)."""
        pil = require("PIL.Image", extra="coreml", package="pillow")
        mode = "L" if pixels.shape[-1] == 1 else "RGB"
        image = pil.fromarray(
            pixels[..., 0] if mode == "L" else pixels[..., ::-1] if self.input_color_space == "bgr" else pixels, mode
        )
        return self._model.predict({self._spec.description.input[0].name: image})

    def embedded_contract(self) -> bytes | None:
        return self._contract_json.encode() if self._contract_json else None

    def close(self) -> None:
        self._model = None
