"""What a segmentation model's outputs mean: the contract's ``head`` for the segmentation task.

One output per image: per-class scores over the model input (``output: "scores"``, (N, h, w, classes), softmax
probabilities or logits; h, w the input size or a fraction of it), or the class of each pixel computed in the graph
(``output: "category_mask"``, (N, h, w) integers: smaller and faster to read, no scores). Either way runtimes map
it back to the source image: scores are resized bilinearly to the source size (the letterbox undone), then each
pixel takes its best class; a category mask is resized by its nearest pixel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

from runtimes.errors import ContractError
from runtimes.tensors import TensorSpec

OUTPUTS = ("scores", "category_mask")
IGNORE = 255  # a label mask's "not labelled" value (Pascal VOC's borders, padding): never scored


@dataclass(frozen=True)
class SegmentationHead:
    """What a segmentation model's output means; stored in the contract's ``head``.

    Attributes:
        output: "scores" (per-class scores per pixel) or "category_mask" (each pixel's class, in the graph).
        background: The class index of "nothing" (drawn without colour, left out of areas' objects), or None.
    """

    output: str = "scores"
    background: int | None = 0

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ContractError(f"unknown segmentation output {self.output!r}; valid: {', '.join(OUTPUTS)}")
        if self.background is not None and (isinstance(self.background, bool) or not isinstance(self.background, int)):
            raise ContractError(f"background must be a class index or null, got {self.background!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SegmentationHead":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ContractError(f"segmentation head has unknown field(s) {sorted(unknown)}; upgrade edgekit")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ContractError(f"segmentation head is malformed: {exc}") from None


def output_problem(specs: Sequence[TensorSpec], head: SegmentationHead, classes: int) -> str | None:
    """Why `specs` are not the head's output (None when they are)."""
    shapes = [list(spec.shape) for spec in specs]
    if len(specs) != 1:
        return f"a segmentation model has one output; got {len(specs)} ({shapes})"
    shape = specs[0].shape
    if head.output == "scores" and (len(shape) != 4 or shape[-1] != classes):
        return f"its output {shapes[0]} is not per-class scores (1, height, width, {classes})"
    if head.output == "category_mask" and len(shape) != 3:
        return f"its output {shapes[0]} is not a category mask (1, height, width)"
    return None


class SegmentationHeadSchema:
    """The segmentation task's contract fields: checked, described, named in standard metadata."""

    name = "segmentation"
    scores_per_label = False

    def check(self, head: dict[str, Any]) -> None:
        SegmentationHead.from_dict(head or {})

    def standard_outputs(self, specs: Sequence[TensorSpec], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        parsed = SegmentationHead.from_dict(head or {})
        return ("segmentation_scores" if parsed.output == "scores" else "category_mask",)

    def describe(self, head: dict[str, Any]) -> list[str]:
        parsed = SegmentationHead.from_dict(head or {})
        what = {
            "scores": "per-class scores per pixel, resized bilinearly to the source image, then each pixel's best",
            "category_mask": "each pixel's class (argmax in the graph), resized by nearest pixel to the source",
        }[parsed.output]
        background = "none" if parsed.background is None else f"class {parsed.background}"
        return [f"outputs: {what}", f"background: {background}"]
