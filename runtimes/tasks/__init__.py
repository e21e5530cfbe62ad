"""Tasks as modules: what a model's outputs mean, how they become results, how results are drawn.

One module per task, registered here; `Model` binds the contract's task to a per-model `Decoder`, and
streams, the runner, the server and the overlay look the task up instead of branching on it. The
contract's fields per task are `runtimes.heads`; the host side (`edgekit.host_tasks`) adds metrics,
the comparison with Keras, serving graphs and int8 policy for the same names.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from runtimes.registry import Registry
from runtimes.tasks.binding import ModelInfo
from runtimes.tasks.classification import ClassificationTask
from runtimes.tasks.detection import DetectionTask
from runtimes.tasks.keypoints import KeypointsTask
from runtimes.tasks.segmentation import SegmentationTask


class Decoder(Protocol):
    """One model's decoding, made by `Task.bind` when the model loads; it owns its caches (output readers,
    defaults, box mappings)."""

    problem: str | None  # why predict() cannot read this model's outputs as the task's result (None when it can)

    def options(self, options: dict[str, Any]) -> Any:
        """predict()'s keyword options, checked once per call (InputError names the valid ones)."""

    def results(
        self,
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: Any,
    ) -> list[Any]:
        """The backend's raw outputs for a batch -> one result per image (sizes: each source image's height, width)."""


class Task(Protocol):
    """What a task module provides to the device side: decoding (through `bind`), drawing, text and JSON.

    The contract fields a task reads live in `runtimes.heads`; what only the host needs (TensorFlow graph
    pieces for serving, int8 export policy, metrics, the comparison with Keras) in `edgekit.host_tasks`.
    """

    name: str
    role: str  # what a model of this task is called: "classifier", "detector"
    record_help: str  # what one JSON line of the runner holds, for a bundle's README
    trackable: bool  # results have boxes that `runtimes.tracking` can follow across frames
    command_line_defaults: dict[str, Any]  # predict() options the CLI sets when their flags are not given

    def bind(self, model: ModelInfo) -> Decoder:
        """The decoder for one loaded model."""

    def serving_prediction(self, result: Any, labels: Sequence[str], head: dict[str, Any]) -> dict[str, Any]:
        """One result as the SavedModel serving signature's named outputs for one image (JSON-ready): what
        `edgekit serve` answers, so a TF Serving client reads both alike. predict() needs `serving_options`."""

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        """predict() options that give `serving_prediction` everything it reports (a classifier's every score)."""

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        """The serving signature's outputs: name -> (TensorFlow dtype name, shape with -1 for the batch)."""

    def draw(self, image: np.ndarray, result: Any, labels: Sequence[str]) -> None:
        """Draw `result` onto the BGR `image` in place."""

    def lines(self, result: Any, threshold: float = 0.0) -> list[str]:
        """The overlay's text for `result`."""

    def occupied(self, result: Any) -> np.ndarray:
        """(n, 4) x0 y0 x1 y1 source-pixel regions `draw` marks, which the overlay's text must not cover."""

    def summary(self, result: Any) -> dict[str, Any]:
        """`result` as JSON-ready data."""

    def record(self, origin: dict[str, Any], result: Any, threshold: float | None, **extra: float) -> dict[str, Any]:
        """One result as a JSON line's object after its origin (``source``, and ``frame`` for a stream's)."""

    def line(self, record: dict[str, Any]) -> str:
        """The human-readable line for a record."""

    def side_images(self, result: Any) -> dict[str, np.ndarray]:
        """Images `--save` writes beside each annotated one, by name (a segmentation's class mask); often none."""


TASKS: Registry[Task] = Registry("task")


def task_for(name: str) -> Task:
    return TASKS.get(name)


TASKS.register("classification")(ClassificationTask())
TASKS.register("detection")(DetectionTask())
TASKS.register("keypoints")(KeypointsTask())
TASKS.register("segmentation")(SegmentationTask())
