"""edgekit's device side: run exported models with numpy, OpenCV and one runtime.

Never imports TensorFlow. Backends register themselves by file suffix; `open` picks one.
"""

from runtimes.backends.base import BACKENDS, Runtime, open_runtime, register_backend
from runtimes.contract import ColorOrder, Interpolation, Layout, ModelContract, Preprocessing, ResizeMode
from runtimes.errors import (
    BackendUnavailableError,
    ContractError,
    EdgekitError,
    InferenceError,
    InputError,
    IntegrityError,
    MissingDependencyError,
    ModelLoadError,
    RequestError,
    ServeConfigError,
    SourceError,
    UnknownNameError,
    UnsupportedOpError,
)
from runtimes.loading import open_model
from runtimes.model import Model, TaskResult
from runtimes.preprocess import preprocess, read_image
from runtimes.sources import Frame, FrameReader, LiveSource, Source, open_source
from runtimes.stream import RateMeter, Stream, StreamResult
from runtimes.tasks.classification import Classification
from runtimes.tasks.detection import Detection, Detections
from runtimes.tensors import QuantParams, TensorSpec

open = open_model  # noqa: A001  (runtimes.open(path) reads naturally)

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "Classification",
    "ColorOrder",
    "ContractError",
    "Detection",
    "Detections",
    "EdgekitError",
    "Frame",
    "FrameReader",
    "InferenceError",
    "InputError",
    "IntegrityError",
    "Interpolation",
    "Layout",
    "LiveSource",
    "MissingDependencyError",
    "Model",
    "ModelContract",
    "ModelLoadError",
    "Preprocessing",
    "QuantParams",
    "RateMeter",
    "RequestError",
    "ResizeMode",
    "Runtime",
    "ServeConfigError",
    "Source",
    "SourceError",
    "Stream",
    "StreamResult",
    "TaskResult",
    "TensorSpec",
    "UnknownNameError",
    "UnsupportedOpError",
    "open",
    "open_model",
    "open_runtime",
    "open_source",
    "preprocess",
    "read_image",
    "register_backend",
]
