"""What a keypoint model's outputs mean: the contract's ``head`` for the keypoints task.

Every object has a box, a label, a score and K named points. The head names the points, the skeleton drawn
between them, the flip map (which point becomes which when the image is mirrored, as training's flip needs) and
the per-point sigmas of the OKS metric, besides how the outputs are decoded. Layouts:

  "ssd": an SSD-anchor detector with keypoints (MediaPipe's BlazeFace, palm and pose detectors): raw boxes
         (1, N, num_coords) and raw scores (1, N, classes), decoded with the anchors and options in ``ssd``
         (`runtimes.tasks.ssd_anchors`), then weighted or plain NMS.
  "maps": edgekit's keypoint detector: one map of C heat, 4 box sides, 2K point offsets and K visibilities per
         stride-4 cell (the detector's peaks; each object's points read at its peak cell).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

from runtimes.errors import ContractError
from runtimes.heads.ssd_options import SsdDecoding
from runtimes.tensors import TensorSpec

LAYOUTS = ("ssd", "maps")
DECODING = {"ssd": "SSD anchors", "maps": "3x3 heat peaks, points at each peak cell"}
MAPS_ROLES = ("heat", "sides", "offsets", "visibility")  # the maps layout's outputs, in the file's order
STANDARD_NAMES = {  # each role's name in standard metadata (TFLite's output tensors, ONNX's docs)
    "boxes": "raw_boxes_and_keypoints",
    "scores": "raw_scores",
    "heat": "heatmap",
    "sides": "box_sides",
    "offsets": "keypoint_offsets",
    "visibility": "keypoint_visibility",
}
NMS = ("weighted", "plain")


@dataclass(frozen=True)
class KeypointHead:
    """What a keypoint model's outputs mean; stored in the contract's ``head``.

    Attributes:
        keypoint_names: Each point's name, in the outputs' order.
        skeleton: Pairs of point indices joined when drawn.
        flip_idx: For each point, the point it becomes in a mirrored image (identity when empty).
        sigmas: Each point's OKS sigma (how far off a point may be, relative to the object's size).
        score_threshold: The default lowest score kept.
        iou_threshold: The default IoU above which overlapping objects merge or are dropped.
        max_detections: The default largest number of objects per image.
        nms: "weighted" (MediaPipe's: a cluster averaged by score) or "plain".
        layout: Which output layout decodes them (see the module's list).
        ssd: The "ssd" layout's anchors and decoding options (`SsdDecoding`'s fields).
    """

    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_idx: tuple[int, ...] = ()
    sigmas: tuple[float, ...] = ()
    score_threshold: float = 0.5
    iou_threshold: float = 0.3
    max_detections: int = 100
    nms: str = "weighted"
    layout: str = "ssd"
    ssd: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        count = len(self.keypoint_names)
        if not count or len(set(self.keypoint_names)) != count:
            raise ContractError(f"keypoint_names must be unique names, got {list(self.keypoint_names)}")
        for a, b in self.skeleton:
            if not (0 <= a < count and 0 <= b < count):
                raise ContractError(f"skeleton edge ({a}, {b}) names a point outside 0..{count - 1}")
        if self.flip_idx and sorted(self.flip_idx) != list(range(count)):
            raise ContractError(f"flip_idx must reorder the {count} points, got {list(self.flip_idx)}")
        if self.sigmas and (len(self.sigmas) != count or min(self.sigmas) <= 0):
            raise ContractError(f"sigmas must be {count} positive numbers, got {list(self.sigmas)}")
        if not 0 <= self.score_threshold <= 1 or not 0 < self.iou_threshold <= 1:
            raise ContractError(
                f"keypoint thresholds out of range: score {self.score_threshold}, iou {self.iou_threshold}"
            )
        if not isinstance(self.max_detections, int) or not 1 <= self.max_detections <= 10_000:
            raise ContractError(f"invalid max_detections {self.max_detections!r}; give an integer in 1..10000")
        if self.nms not in NMS or self.layout not in LAYOUTS:
            raise ContractError(f"unknown keypoint nms {self.nms!r} or layout {self.layout!r}; valid: {NMS}, {LAYOUTS}")
        if self.layout == "maps" and self.nms != "plain":
            raise ContractError("the maps layout's objects are heat peaks: give nms 'plain' (class-aware IoU NMS)")
        if self.layout == "ssd":
            decoding = self.decoding()
            if decoding.num_keypoints != count or decoding.anchors is None:
                raise ContractError(
                    f"the ssd decoding must give {count} keypoints and its anchors, got "
                    f"{decoding.num_keypoints} and {decoding.anchors}"
                )

    def decoding(self) -> SsdDecoding:
        """The ssd layout's `SsdDecoding`."""
        try:
            return SsdDecoding.from_dict(self.ssd or {})
        except TypeError as exc:
            raise ContractError(f"the keypoint head's ssd options are malformed: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keypoint_names"] = list(self.keypoint_names)
        data["skeleton"] = [list(edge) for edge in self.skeleton]
        data["flip_idx"], data["sigmas"] = list(self.flip_idx), list(self.sigmas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KeypointHead":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ContractError(f"keypoint head has unknown field(s) {sorted(unknown)}; upgrade edgekit")
        values = dict(data)
        for key in ("keypoint_names", "flip_idx", "sigmas"):
            if key in values:
                values[key] = tuple(values[key])
        if "skeleton" in values:
            values["skeleton"] = tuple(tuple(edge) for edge in values["skeleton"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ContractError(f"keypoint head is malformed: {exc}") from None


def output_roles(specs: Sequence[TensorSpec], head: KeypointHead) -> dict[str, int] | None:
    """Role -> output index, or None when the outputs are not the head's layout. "ssd": the output whose rows are
    num_coords long holds the boxes and keypoints ("boxes"), the other the scores ("scores"). "maps": heat
    (N, Gh, Gw, C), box sides (..., 4), point offsets (..., 2K) and visibilities (..., K), in the file's order."""
    if head.layout == "maps":
        count = len(head.keypoint_names)
        grids = {tuple(spec.shape[1:3]) for spec in specs if len(spec.shape) == 4}
        channels = [spec.shape[-1] for spec in specs]
        if len(specs) == 4 and len(grids) == 1 and channels[1:] == [4, 2 * count, count]:
            return {role: i for i, role in enumerate(MAPS_ROLES)}
        return None
    if len(specs) != 2:
        return None
    coords = head.decoding().num_coords
    rows = [i for i, spec in enumerate(specs) if len(spec.shape) == 3 and spec.shape[-1] == coords]
    if len(rows) != 1 or specs[rows[0]].shape[1] != specs[1 - rows[0]].shape[1]:
        return None
    return {"boxes": rows[0], "scores": 1 - rows[0]}


class KeypointHeadSchema:
    """The keypoints task's contract fields: checked, described, named in standard metadata."""

    name = "keypoints"
    scores_per_label = False

    def check(self, head: dict[str, Any]) -> None:
        if not head:
            raise ContractError("a keypoints contract needs a head: keypoint_names and the layout's options")
        KeypointHead.from_dict(head)

    def standard_outputs(self, specs: Sequence[TensorSpec], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        parsed = KeypointHead.from_dict(head or {})
        roles = output_roles(specs, parsed)
        if roles is None:
            expected = (
                "raw boxes and scores" if parsed.layout == "ssd" else "heat, box-side, offset and visibility maps"
            )
            raise ContractError(f"a keypoint model's outputs are {expected}; got {[s.shape for s in specs]}")
        names = {index: STANDARD_NAMES[role] for role, index in roles.items()}
        return tuple(names[i] for i in range(len(specs)))

    def describe(self, head: dict[str, Any]) -> list[str]:
        h = KeypointHead.from_dict(head)
        return [
            f"keypoints: {', '.join(h.keypoint_names)}"
            + (f"; skeleton of {len(h.skeleton)} edges" if h.skeleton else ""),
            f"decoding: {h.layout} ({DECODING[h.layout]}) in runtimes (NumPy), {h.nms} NMS",
            f"defaults: score >= {h.score_threshold:g}, IoU {h.iou_threshold:g}, at most {h.max_detections} objects",
        ]
