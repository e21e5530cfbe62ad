"""edgekit: from Keras training to on-device inference, with the preprocessing contract inside.

Light names (data, contract, load) import eagerly; anything that needs TensorFlow is
resolved on first access, so ``import edgekit`` stays cheap on a device.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgekit import backends as _backends  # noqa: F401  (declares the SavedModel backend; imports nothing heavy)
from edgekit import deploy
from edgekit._version import __version__
from edgekit.api import load
from edgekit.data import ArrayDataset, DetectionData, DetectionDataset, ImageDataset, ImageFolder, load_detection
from edgekit.data import generated as datasets  # edgekit.datasets.make_shapes(...): the generated datasets
from edgekit.data.keypoint_datasets import KeypointDataset
from edgekit.data.keypoints import load_keypoints
from edgekit.data.segmentation import SegmentationDataset, load_segmentation
from edgekit.errors import (
    BackendUnavailableError,
    CalibrationError,
    ContractError,
    ConversionError,
    DatasetError,
    DeployError,
    EdgekitError,
    ExportError,
    InferenceError,
    InputError,
    IntegrityError,
    MissingDependencyError,
    ModelLoadError,
    RequestError,
    ServeConfigError,
    SourceError,
    TrainingError,
    UnknownNameError,
    UnknownTargetError,
    UnsupportedOpError,
)
from edgekit.training import distribution  # edgekit.distribution: light, used before Keras loads
from runtimes.contract import ColorOrder, Interpolation, Layout, ModelContract, Preprocessing, ResizeMode
from runtimes.heads.detection import DetectionHead
from runtimes.model import Model, TaskResult
from runtimes.tasks.classification import Classification
from runtimes.tasks.detection import Detection, Detections
from runtimes.tasks.segmentation import Segmentation

# name -> module that defines it; imported when first used (these pull in Keras/TensorFlow).
_LAZY = {
    "train": "edgekit.api",
    "TrainOptions": "edgekit.training.options",
    "TrainResult": "edgekit.training.options",
    "ARCHITECTURES": "edgekit.training.architectures",
    "export": "edgekit.api",
    "ExportReport": "edgekit.exporter",
    "evaluate": "edgekit.api",
    "bench": "edgekit.benchmarking.runner",
    "BenchReport": "edgekit.benchmarking.runner",
    "prune": "edgekit.optimize.pruning",
    "PruneResult": "edgekit.optimize.pruning",
    "distill": "edgekit.optimize.distillation",
    "quantize_aware": "edgekit.optimize.qat",
    "QATOptions": "edgekit.optimize.qat",
    "load_keras": "edgekit.keras_io",
    "save_keras": "edgekit.keras_io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


__all__ = [
    "ArrayDataset",
    "BackendUnavailableError",
    "CalibrationError",
    "Classification",
    "ColorOrder",
    "ContractError",
    "ConversionError",
    "DatasetError",
    "DeployError",
    "Detection",
    "DetectionData",
    "DetectionDataset",
    "DetectionHead",
    "Detections",
    "EdgekitError",
    "ExportError",
    "ImageDataset",
    "ImageFolder",
    "InferenceError",
    "InputError",
    "IntegrityError",
    "Interpolation",
    "Layout",
    "MissingDependencyError",
    "Model",
    "ModelContract",
    "ModelLoadError",
    "Preprocessing",
    "RequestError",
    "ResizeMode",
    "ServeConfigError",
    "SourceError",
    "TaskResult",
    "TrainingError",
    "UnknownNameError",
    "UnknownTargetError",
    "UnsupportedOpError",
    "__version__",
    "datasets",
    "deploy",
    "distribution",
    "load",
    "load_detection",
    "load_keypoints",
    "load_segmentation",
    "KeypointDataset",
    "Segmentation",
    "SegmentationDataset",
    *_LAZY,
]
