"""An SSD-anchor detector's contract options: MediaPipe's SsdAnchorsCalculator and TensorsToDetectionsCalculator
options, by their names, as the keypoints head carries them (`runtimes.tasks.ssd_anchors` decodes with them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AnchorOptions:
    """SsdAnchorsCalculator's options (the same names and defaults), for anchors on a grid per stride."""

    input_size_height: int
    input_size_width: int
    strides: tuple[int, ...]
    min_scale: float
    max_scale: float
    num_layers: int = 0  # 0: one per stride
    aspect_ratios: tuple[float, ...] = (1.0,)
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    fixed_anchor_size: bool = False
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnchorOptions":
        values = dict(data)
        for key in ("strides", "aspect_ratios"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class SsdDecoding:
    """TensorsToDetectionsCalculator's options for the raw outputs: where boxes and keypoints sit in each anchor's
    row, their order and scales, and how scores are read."""

    num_coords: int
    num_keypoints: int = 0
    box_coord_offset: int = 0
    keypoint_coord_offset: int = 4
    num_values_per_keypoint: int = 2
    reverse_output_order: bool = True  # x, y, w, h (MediaPipe's models); False: y, x, h, w
    x_scale: float = 1.0
    y_scale: float = 1.0
    w_scale: float = 1.0
    h_scale: float = 1.0
    apply_exponential_on_box_size: bool = False
    sigmoid_score: bool = True
    score_clipping_thresh: float | None = None
    anchors: AnchorOptions | None = field(default=None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SsdDecoding":
        values = dict(data)
        if values.get("anchors") is not None:
            values["anchors"] = AnchorOptions.from_dict(values["anchors"])
        return cls(**values)
