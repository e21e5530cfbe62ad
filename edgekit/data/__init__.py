"""Datasets edgekit trains and checks on: image folders and arrays, detection annotations, each in memory or
streamed, and generated ones.

The dataset classes are re-exported here (``from edgekit.data import ImageFolder``); the modules hold the rest:
`images` (in memory), `image_streaming` (tf.data) and `folders` for classification; `detection`,
`detection_streaming` and `annotations` (YOLO, COCO, Pascal VOC) for detection; `synthetic` for generated
scenes (``edgekit.datasets``).
"""

from edgekit.data.annotations import load_detection
from edgekit.data.detection import DetectionData, DetectionDataset
from edgekit.data.folders import ImageFolder
from edgekit.data.image_streaming import StreamingImageDataset
from edgekit.data.images import ArrayDataset, ImageDataset

__all__ = [
    "ArrayDataset",
    "DetectionData",
    "DetectionDataset",
    "ImageDataset",
    "ImageFolder",
    "StreamingImageDataset",
    "load_detection",
]
