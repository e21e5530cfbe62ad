"""A detector's raw outputs, in any layout edgekit or TFLite's postprocess writes, read as boxes, scores and
classes: the part of decoding that depends on the model's output tensors, built once per model."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from runtimes.errors import InferenceError
from runtimes.heads.detection import DetectionHead, output_roles
from runtimes.quantization import dequantize
from runtimes.tasks.detection_maps import decode_maps
from runtimes.tensors import TensorSpec


class OutputReader:
    """A detector's outputs in any layout -> boxes (N, K, 4) x0 y0 x1 y1 normalized, float scores (N, K), integer
    classes (N, K). Padding past a postprocess model's count gets score -1, below every threshold.

    Built once per model (roles, which outputs are quantized, the box order): predict() reads
    a camera's every frame through it.
    """

    def __init__(self, specs: Sequence[TensorSpec], head: DetectionHead, roles: dict[str, int] | None = None) -> None:
        roles = roles or output_roles(specs, head.layout)
        if roles is None:
            raise InferenceError(
                f"outputs are not a {head.layout}-layout detector's "
                f"({', '.join(f'{list(s.shape)} {np.dtype(s.dtype).name}' for s in specs)})"
            )
        self.roles = roles
        self.specs = {role: specs[i] if specs[i].quantization is not None else None for role, i in roles.items()}
        self.yxyx = head.box_format == "yxyx"
        self.max_detections = head.max_detections
        self._decoded: tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def _maps(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The `maps` layout's heat and box sides decoded once per batch (boxes, scores, classes)."""
        heat = outputs[self.roles["heat"]]
        if self._decoded is None or self._decoded[0] is not heat:
            decoded = decode_maps(self.read(outputs, "heat"), self.read(outputs, "sides"), self.max_detections)
            self._decoded = (heat, decoded)
        return self._decoded[1]

    def read(self, outputs: Sequence[np.ndarray], role: str) -> np.ndarray:
        """One output as float (or integer classes): raw quantized outputs are dequantized, run_all's are not."""
        array, spec = np.asarray(outputs[self.roles[role]]), self.specs[role]
        return dequantize(array, spec) if spec is not None and array.dtype.kind in "iu" else array

    def scores(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) float32 scores: a float output as it is, without a copy; past a count, -1."""
        scores = self._maps(outputs)[1] if "heat" in self.roles else self.read(outputs, "scores")
        if scores.dtype != np.float32:
            scores = scores.astype(np.float32)
        if "count" in self.roles:
            count = np.rint(self.read(outputs, "count").reshape(len(scores), -1)[:, 0])  # a dequantized 2.99 is 3
            scores = np.where(np.arange(scores.shape[1])[None, :] < count[:, None], scores, np.float32(-1.0))
        return scores

    def boxes(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K, 4) float32 boxes, x0 y0 x1 y1 normalized."""
        if "heat" in self.roles:
            return self._maps(outputs)[0]
        boxes = np.asarray(self.read(outputs, "boxes"), np.float32)
        return boxes[..., [1, 0, 3, 2]] if self.yxyx else boxes

    def classes(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) int64 class indices (the postprocess layout's float classes rounded)."""
        if "heat" in self.roles:
            return self._maps(outputs)[2]
        classes = self.read(outputs, "classes")
        return np.asarray(np.rint(classes) if "count" in self.roles else classes, np.int64)

    def __call__(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.boxes(outputs), self.scores(outputs), self.classes(outputs)


def decoded_outputs(
    outputs: Sequence[np.ndarray],
    specs: Sequence[TensorSpec],
    head: DetectionHead,
    roles: dict[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's raw outputs in any layout, read once (see `OutputReader`, which a model keeps)."""
    return OutputReader(specs, head, roles)(outputs)
