"""What a detector's contract says about its outputs (the contract's ``head``): box format and coordinates,
where decoding and NMS ran, the default thresholds and the output layout. Checked whenever a contract is built;
read by the detection task, the metadata writers and the converters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Sequence

import numpy as np

from runtimes.errors import ContractError
from runtimes.tensors import TensorSpec

# How a detector's outputs are laid out (the contract's head.layout):
#   "edgekit": boxes (N, K, 4) x0 y0 x1 y1, scores (N, K), integer classes (N, K); class-aware NMS runs in runtimes
#   "postprocess": TFLite_Detection_PostProcess's outputs, in its order: boxes (N, K, 4) as y0 x0 y1 x1, float
#     classes (N, K), scores (N, K) and the number of detections (N,), with NMS in the graph. What MediaPipe
#     Tasks' ObjectDetector, the TFLite Task Library and Frigate read.
LAYOUTS = {
    "edgekit": ("xyxy", ("boxes", "scores", "classes")),
    "postprocess": ("yxyx", ("boxes", "classes", "scores", "count")),
    # the raw maps, decoded in runtimes: a full-integer file for accelerators (no float op for peaks and boxes)
    "maps": ("xyxy", ("heat", "sides")),
}


@dataclass(frozen=True)
class DetectionHead:
    """What a detector's outputs mean; stored in the contract's ``head``.

    Attributes:
        box_format: The order of a box's four numbers ("xyxy": x0, y0, x1, y1).
        box_coordinates: "normalized": fractions of the model input's width and height.
        decoding_in_graph: True when the model computes peaks, top-k and boxes itself.
        nms: How overlapping boxes are suppressed, in words.
        score_threshold: The default lowest score kept.
        iou_threshold: The default IoU above which a lower-scored box is dropped.
        max_detections: The default largest number of objects per image.
        outputs: The output tensors' names, in order.
        layout: Which output layout decodes them (see `LAYOUTS`).
    """

    box_format: str = "xyxy"  # x0, y0, x1, y1
    box_coordinates: str = "normalized"  # fractions of the model input's width and height
    decoding_in_graph: bool = True  # peaks, top-k and boxes computed by the model itself
    nms: str = "3x3 peak suppression in graph; class-aware IoU NMS in runtimes (NumPy)"
    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_detections: int = 50
    outputs: tuple[str, ...] = ("boxes", "scores", "classes")  # (1, K, 4) float, (1, K) float, (1, K) int
    layout: str = "edgekit"  # see LAYOUTS

    def __post_init__(self) -> None:
        if not 0 <= self.score_threshold <= 1 or not 0 < self.iou_threshold <= 1:
            raise ContractError(
                f"detection thresholds out of range: score {self.score_threshold}, iou {self.iou_threshold}; "
                "both are fractions in [0, 1]"
            )
        if not isinstance(self.max_detections, int) or not 1 <= self.max_detections <= 10_000:
            raise ContractError(f"invalid max_detections {self.max_detections!r}; give an integer in 1..10000")
        if self.layout not in LAYOUTS:
            raise ContractError(f"unknown detection output layout {self.layout!r}; valid: {', '.join(LAYOUTS)}")
        box_format, outputs = LAYOUTS[self.layout]
        if self.box_format != box_format or self.box_coordinates != "normalized" or tuple(self.outputs) != outputs:
            raise ContractError(
                f"unsupported boxes {self.box_format}/{self.box_coordinates} with outputs {list(self.outputs)} "
                f"for the {self.layout} layout; edgekit writes {box_format}/normalized with {list(outputs)}"
            )

    @classmethod
    def maps(cls, head: "DetectionHead") -> "DetectionHead":
        """`head` for the same model exported with its raw heat and box-side maps, decoded in runtimes (NumPy)."""
        box_format, outputs = LAYOUTS["maps"]
        return replace(
            head,
            layout="maps",
            box_format=box_format,
            outputs=outputs,
            decoding_in_graph=False,
            nms="3x3 peak suppression and class-aware IoU NMS in runtimes (NumPy)",
        )

    @classmethod
    def postprocess(cls, head: "DetectionHead") -> "DetectionHead":
        """`head` for the same model exported with TFLite_Detection_PostProcess-style outputs (NMS in the graph)."""
        box_format, outputs = LAYOUTS["postprocess"]
        return replace(
            head,
            layout="postprocess",
            box_format=box_format,
            outputs=outputs,
            nms="3x3 peak suppression and class-aware IoU NMS in graph (padded; count valid)",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outputs"] = list(self.outputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectionHead":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ContractError(f"detection head has unknown field(s) {sorted(unknown)}; upgrade edgekit")
        values = dict(data)
        if "outputs" in values:
            values["outputs"] = tuple(values["outputs"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ContractError(f"detection head is malformed: {exc}") from None


def output_roles(specs: Sequence[TensorSpec], layout: str = "edgekit") -> dict[str, int] | None:
    """Role ("boxes", "scores", "classes", and "count" in the postprocess layout) -> output index, or None.

    Formats name and order outputs their own way; shapes and types say which is which. In the
    postprocess layout classes and scores are both float (N, K): TFLite_Detection_PostProcess's
    order (classes before scores), which edgekit keeps in the file, tells them apart.
    """
    if layout == "maps":  # (N, Gh, Gw, classes) heat then (N, Gh, Gw, 4) box sides, in the file's order
        grids = [i for i, s in enumerate(specs) if len(s.shape) == 4]
        if (
            len(specs) == 2
            and len(grids) == 2
            and specs[1].shape[-1] == 4
            and specs[0].shape[1:3] == specs[1].shape[1:3]
        ):
            return {"heat": 0, "sides": 1}
        return None
    boxes = [i for i, s in enumerate(specs) if len(s.shape) == 3 and s.shape[-1] == 4]
    pairs = [i for i, s in enumerate(specs) if len(s.shape) == 2 and s.shape[-1] != 1]
    if layout == "postprocess":
        counts = [i for i, s in enumerate(specs) if len(s.shape) == 1 or (len(s.shape) == 2 and s.shape[-1] == 1)]
        if len(specs) == 4 and len(boxes) == len(counts) == 1 and len(pairs) == 2:
            return {"boxes": boxes[0], "classes": pairs[0], "scores": pairs[1], "count": counts[0]}
        return None
    classes = [i for i in pairs if np.issubdtype(specs[i].dtype, np.integer) and specs[i].quantization is None]
    scores = [i for i in pairs if i not in classes]
    if len(specs) == 3 and len(boxes) == len(classes) == len(scores) == 1:
        return {"boxes": boxes[0], "scores": scores[0], "classes": classes[0]}
    return None


class DetectionHeadSchema:
    """The detection task's contract fields: checked, described, named in standard metadata."""

    name = "detection"
    scores_per_label = False  # boxes, scores and classes: not one score per label

    def check(self, head: dict[str, Any]) -> None:
        DetectionHead.from_dict(head)

    def standard_outputs(self, specs: Sequence[TensorSpec], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Each output's role in standard metadata, in the file's order."""
        parsed = DetectionHead.from_dict(head or {})
        roles = output_roles(specs, parsed.layout)
        if roles is None:
            raise ContractError(
                f"a detector in the {parsed.layout} layout needs outputs {', '.join(parsed.outputs)}; "
                f"got {[list(s.shape) for s in specs]}"
            )
        names = {
            index: {
                "heat": "heatmap",
                "sides": "box_sides",
                "scores": "detection_scores",
                "boxes": "boxes_yxyx" if parsed.box_format == "yxyx" else "boxes",
            }.get(role, role)
            for role, index in roles.items()
        }
        return tuple(names[i] for i in range(len(specs)))

    def describe(self, head: dict[str, Any]) -> list[str]:
        h = DetectionHead.from_dict(head)
        return [
            f"outputs: {', '.join(h.outputs)}; boxes {h.box_format}, {h.box_coordinates} to the input size",
            f"decoding: {'in the graph' if h.decoding_in_graph else 'in runtimes (NumPy)'}; NMS: {h.nms}",
            f"defaults: score >= {h.score_threshold:g}, IoU {h.iou_threshold:g}, at most {h.max_detections} detections",
        ]
