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
    MissingDependencyError,
    ModelLoadError,
    UnknownNameError,
)
from runtimes.model import Classification, Model, open_model
from runtimes.preprocess import preprocess, read_image
from runtimes.sources import Frame, FrameReader, LiveSource, Source, SourceError, open_source
from runtimes.stream import RateMeter, Stream, StreamResult
from runtimes.tensors import QuantParams, TensorSpec

open = open_model  # noqa: A001  (runtimes.open(path) reads naturally)

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "Classification",
    "ColorOrder",
    "ContractError",
    "EdgekitError",
    "InferenceError",
    "InputError",
    "Interpolation",
    "Layout",
    "MissingDependencyError",
    "Model",
    "ModelContract",
    "ModelLoadError",
    "Preprocessing",
    "QuantParams",
    "ResizeMode",
    "Runtime",
    "TensorSpec",
    "UnknownNameError",
    "open",
    "open_model",
    "open_runtime",
    "preprocess",
    "read_image",
    "register_backend",
    "Frame",
    "FrameReader",
    "LiveSource",
    "Source",
    "SourceError",
    "open_source",
    "RateMeter",
    "Stream",
    "StreamResult",
]
