"""Host side of tasks as modules: how a task is deployed, scored and compared with Keras.

`runtimes.tasks` says how outputs become results on the device; each module here adds
what needs the host (Keras, pycocotools): the graph that is exported, calibration
samples, the Keras reference on check data, the check of an artifact against it, the
report's columns and the evaluation of an artifact on a labelled dataset. The exporter,
`edgekit.evaluate` and the CLI look the contract's task up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runtimes._registry import Registry


@dataclass
class Verdict:
    """An artifact against Keras on check data, in the report's terms (the headline metric is the task's)."""

    quality: float  # accuracy or mAP@[.5:.95], as a fraction
    quality_delta: float  # points: artifact minus Keras
    agreement: float  # top-1 agreement, or detection agreement (both directions)
    max_error: float  # largest score difference, or largest box error in pixels
    latency_ms: float
    details: dict[str, Any] = field(default_factory=dict)


class HostTask(Protocol):
    name: str
    metric: str  # the headline metric's name: what max_drop gates, in points
    header: list[str]  # the report's quality columns

    def deployable(self, model: Any, contract: Any) -> Any:
        """The Keras model that converters convert (a detector gets its decoding appended)."""

    def for_config(self, model: Any, contract: Any, config: Any) -> tuple[Any, Any]:
        """The deployable model and contract one target converts (a detector's output layout differs per config)."""

    def load(self, path: Any, preprocessing: Any) -> Any:
        """The task's labelled dataset at `path`, read at the contract's geometry (CLI --check, --data)."""

    def calibration(self, dataset: Any, contract: Any, count: int) -> Any:
        """CalibrationData from `count` samples of `dataset`."""

    def reference(self, model: Any, dataset: Any, contract: Any) -> Any:
        """Keras' outputs on the check data (the deployable model's)."""

    def reference_quality(self, dataset: Any, reference: Any, contract: Any) -> float:
        """Keras' headline metric on the check data."""

    def check(self, loaded: Any, dataset: Any, reference: Any) -> Verdict:
        """The artifact through its runtime against the reference."""

    def cells(self, result: Any) -> list[str]:
        """The report's quality cells for one ExportResult."""

    def evaluate(self, loaded: Any, dataset: Any) -> Any:
        """The task's metrics of an artifact on a labelled dataset."""

    def headline(self, metrics: Any) -> float:
        """The `metric` value of what `evaluate` returned, as a fraction."""


HOST_TASKS: Registry[HostTask] = Registry("task")


def host_task(name: str) -> HostTask:
    return HOST_TASKS.get(name)


def _register() -> None:
    from edgekit.tasks.classification import ClassificationHost
    from edgekit.tasks.detection import DetectionHost

    HOST_TASKS.register("classification")(ClassificationHost())
    HOST_TASKS.register("detection")(DetectionHost())


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


_register()

__all__ = ["HOST_TASKS", "HostTask", "Verdict", "host_task", "pct"]
