"""Lazy, quiet access to Keras/TensorFlow for the host-side modules."""

from __future__ import annotations

import logging
import os
from types import ModuleType

from runtimes.deps import require


def keras() -> ModuleType:
    """Import Keras (TensorFlow backend) on first use, with TensorFlow's C++ chatter muted.

    Import-time lines are captured into the debug log; C++ log lines during training are
    not (fd 2 cannot be redirected while edgekit's own progress is written there), so
    TensorFlow's C++ errors are muted too (oneDNN's one-off "supports DT_INT32 only ...")
    unless edgekit logs at DEBUG (`-v`).
    """
    verbose = logging.getLogger("edgekit").isEnabledFor(logging.DEBUG)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if verbose else "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    require("tensorflow", extra="train")
    return require("keras", extra="train", package="tensorflow")


def tensorflow() -> ModuleType:
    """TensorFlow itself (its ops that Keras 3 does not wrap: fake quantization), imported as `keras()` does."""
    keras()
    return require("tensorflow", extra="train")
