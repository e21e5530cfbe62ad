"""Tasks as modules: what a model's outputs mean, how they become results, how results are drawn.

One module per task registers a `Task` here; `Model.predict`, streams, the runner and
the overlay look the contract's task up instead of branching on it. The host side
(`edgekit.tasks`) adds metrics and the comparison with Keras for the same names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from runtimes._registry import Registry

if TYPE_CHECKING:
    from runtimes.model import Model


class Task(Protocol):
    """What a task module provides to the device side."""

    name: str
    role: str  # what a model of this task is called: "classifier", "detector"
    record_help: str  # what one JSON line of the runner holds, for a bundle's README
    scores_per_label: (
        bool  # one output of one score per label (what CoreML's classifier and axis-label metadata describe)
    )
    trackable: bool  # results have boxes that `runtimes.tracking` can follow across frames
    float_scopes: tuple[
        str, ...
    ]  # graph scopes (layer names) that int8 export keeps in float: measured to lose accuracy

    def standard_outputs(self, specs: Sequence[Any], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Each output's role in TFLite standard metadata, in the file's order (`head`: the contract's)."""

    def check_head(self, head: dict[str, Any]) -> None:
        """Raise ContractError when the contract's `head` fields are wrong for this task."""

    def serving_prediction(self, result: Any, labels: Sequence[str], head: dict[str, Any]) -> dict[str, Any]:
        """One result as the SavedModel serving signature's named outputs for one image (JSON-ready): what
        `edgekit serve` answers, so a TF Serving client reads both alike. predict() needs `serving_options`."""

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        """predict() options that give `serving_prediction` everything it reports (a classifier's every score)."""

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        """The serving signature's outputs: name -> (TensorFlow dtype name, shape with -1 for the batch)."""

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Sequence[str], head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """A SavedModel serving signature's named outputs from the model's `outputs`, as TensorFlow ops.

        `tf` is passed in by the converter (runtimes never imports TensorFlow); `to_source` maps
        (N, K, 4) boxes normalized to the model input to the request image's pixels, clipped to it.
        """

    def describe(self, head: dict[str, Any]) -> list[str]:
        """What the outputs mean, as `edgekit info` lines ("name: text")."""

    def problem(self, model: "Model") -> str | None:
        """Why predict() cannot read this model's outputs as this task's result (None when it can)."""

    def options(self, model: "Model", options: dict[str, Any]) -> Any:
        """predict()'s keyword options, checked once per call (InputError names the valid ones)."""

    def results(
        self,
        model: "Model",
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: Any,
    ) -> list[Any]:
        """The backend's raw outputs for a batch -> one result per image (sizes: each source image's height, width)."""

    def draw(self, image: np.ndarray, result: Any, labels: Sequence[str]) -> None:
        """Draw `result` onto the BGR `image` in place."""

    def lines(self, result: Any, threshold: float = 0.0) -> list[str]:
        """The overlay's text for `result`."""

    def summary(self, result: Any) -> dict[str, Any]:
        """`result` as JSON-ready data."""

    def cli_options(self, top_k: int | None, threshold: float | None) -> dict[str, Any]:
        """predict() options from the CLI's --top-k and --threshold."""

    def record(self, position: object, result: Any, threshold: float | None, **extra: float) -> dict[str, Any]:
        """One result as a JSON line's object (the CLI and the runner)."""

    def line(self, record: dict[str, Any]) -> str:
        """The human-readable line for a record."""


TASKS: Registry[Task] = Registry("task")


def task_for(name: str) -> Task:
    return TASKS.get(name)


def _register() -> None:
    from runtimes.tasks.classification import ClassificationTask
    from runtimes.tasks.detection import DetectionTask

    TASKS.register("classification")(ClassificationTask())
    TASKS.register("detection")(DetectionTask())


_register()
