"""CoreML packages run by edgekit's numpy reference executor: a correctness check, not a speed path.

Apple's CoreML predicts only on macOS. This backend evaluates the package's ML program op by
op (`runtimes.reference.mil_program`), including its ImageType scale/bias and its compressed weights,
so a converted package can be compared with its Keras model on Linux CI. Open it with
``edgekit.load("m.mlpackage", backend="reference")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtimes.backends.coreml import CoreMLRuntime
from runtimes.reference.mil_program import MILProgram, load_program


class CoreMLReferenceRuntime(CoreMLRuntime):
    """An ML program evaluated with numpy, float16 ops in float16 (see `runtimes.reference.mil_program`)."""

    backend_name = "reference"
    is_reference = True

    def _can_predict(self) -> bool:
        return True

    def _open_predictor(self, ct: Any) -> MILProgram:
        return load_program(self.path)

    @property
    def program(self) -> MILProgram:
        return self._model

    def _predict_one(self, pixels: np.ndarray) -> dict[str, Any]:
        program: MILProgram = self._model
        ((image_name, (shape, _)),) = program.inputs.items()
        feed = np.transpose(pixels.astype(np.float32), (2, 0, 1))[
            None
        ]  # HxWxC 0..255 -> 1xCxHxW, the program's image layout
        return program.run({image_name: feed.reshape(shape)})
