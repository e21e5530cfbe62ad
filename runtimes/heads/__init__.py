"""Each task's part of the contract: the ``head`` fields that say what a model's outputs mean.

The lowest task layer: `ModelContract` checks its ``head`` here, the metadata writers and converters
name outputs from it, and the task modules (`runtimes.tasks`) decode by it. One module per task; a
new task adds its schema here and its decoding in `runtimes.tasks`.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from runtimes.heads.classification import ClassificationHeadSchema
from runtimes.heads.detection import DetectionHeadSchema
from runtimes.heads.keypoints import KeypointHeadSchema
from runtimes.heads.segmentation import SegmentationHeadSchema
from runtimes.registry import Registry
from runtimes.tensors import TensorSpec


class HeadSchema(Protocol):
    """What a task's contract fields are, for every layer that reads a contract."""

    name: str
    scores_per_label: bool  # one output of one score per label (what CoreML's classifier and axis labels describe)

    def check(self, head: dict[str, Any]) -> None:
        """Raise ContractError when the contract's `head` fields are wrong for this task."""

    def standard_outputs(self, specs: Sequence[TensorSpec], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Each output's role in TFLite standard metadata, in the file's order (`head`: the contract's)."""

    def describe(self, head: dict[str, Any]) -> list[str]:
        """What the outputs mean, as `edgekit info` lines ("name: text")."""


HEADS: Registry[HeadSchema] = Registry("task")
HEADS.register("classification")(ClassificationHeadSchema())
HEADS.register("detection")(DetectionHeadSchema())
HEADS.register("keypoints")(KeypointHeadSchema())
HEADS.register("segmentation")(SegmentationHeadSchema())


def head_schema(task: str) -> HeadSchema:
    """The named task's contract schema (an unknown name lists the valid ones)."""
    return HEADS.get(task)


__all__ = ["HEADS", "HeadSchema", "head_schema"]
