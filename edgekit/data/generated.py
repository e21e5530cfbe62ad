"""`edgekit.datasets`: the generated datasets, written on the fly, no download needed (one namespace over the
modules that draw them)."""

from edgekit.data.synthetic import (
    SHAPE_CLASSES,
    TrackingClip,
    make_shapes,
    make_shapes_detection,
    make_shapes_keypoints,
    make_tracking_video,
)
from edgekit.data.synthetic_segmentation import SEGMENTATION_CLASSES, make_shapes_segmentation

__all__ = [
    "SEGMENTATION_CLASSES",
    "SHAPE_CLASSES",
    "TrackingClip",
    "make_shapes",
    "make_shapes_detection",
    "make_shapes_keypoints",
    "make_shapes_segmentation",
    "make_tracking_video",
]
