"""Datasets edgekit trains and checks on: image folders and arrays, detection annotations, each in memory or streamed.

The dataset classes are re-exported here (``from edgekit.data import ImageFolder``); the
modules hold the rest: `images` and `image_streaming` for classification, `detection` and
`detection_streaming` for detection (YOLO, COCO, Pascal VOC).
"""

from edgekit.data.detection import DetectionData, DetectionDataset, load_detection
from edgekit.data.images import ArrayDataset, ImageDataset, ImageFolder

__all__ = ["ArrayDataset", "DetectionData", "DetectionDataset", "ImageDataset", "ImageFolder", "load_detection"]
