"""What every host task provides (`HostTask`), and the verdict of one artifact against Keras."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol


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

    def train(self, train: Any, val: Any, arch: Any, options: Any) -> Any:
        """This task's training loop (`edgekit.train` with a `TrainOptions`): a TrainResult."""

    def deployable(self, model: Any, contract: Any) -> Any:
        """The Keras model that converters convert (a detector gets its decoding appended)."""

    def for_config(self, model: Any, contract: Any, config: Any) -> tuple[Any, Any, Any]:
        """The deployable model, contract and conversion config one target converts: a detector's output layout
        differs per config, and the task's export policy (int8 float scopes, the serving signature's outputs)
        goes into the config, so converters never look a task up."""

    float_scopes: tuple[str, ...]  # graph scopes int8 keeps in float (mixed precision): measured to lose accuracy

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Any, head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """A SavedModel serving signature's named outputs from the model's `outputs`, as TensorFlow ops (what
        `runtimes.tasks`' `serving_spec` declares and `edgekit serve` answers)."""

    def load(self, path: Any, preprocessing: Any) -> Any:
        """The task's labelled dataset at `path`, read at the contract's geometry (CLI --check, --data)."""

    defaults: "DataDefaults"  # the geometry `edgekit train` reads this task's data at unless told otherwise
    written: str  # what a training run writes besides model.keras, for the CLI's last line

    def read(self, path: Any, geometry: dict[str, Any], stream: Any, cache_dir: Any) -> Any:
        """The task's training data at `path` (`edgekit train DATA`): `geometry` holds image_size, color_order,
        resize and interpolation; `stream` and `cache_dir` as `load_detection`'s, where the task streams."""

    def metric_lines(self, metrics: dict[str, Any]) -> list[str]:
        """A training run's headline metrics per split, one line each (`edgekit train`)."""

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


@dataclass(frozen=True)
class DataDefaults:
    """The geometry a task's training data is read at by default: input size, resize and interpolation."""

    image_size: tuple[int, int]
    resize: str
    interpolation: str


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def with_export_policy(config: Any, task: HostTask) -> Any:
    """`config` carrying the task's export policy: the int8 float scopes and, for a SavedModel, its serving
    outputs. Converters read both from the config, so they never look a task up."""
    names = {f.name for f in fields(config)}
    changes: dict[str, Any] = {"float_scopes": tuple(task.float_scopes)}
    if "serving_outputs" in names:
        changes["serving_outputs"] = task.serving_outputs
    return replace(config, **changes)
