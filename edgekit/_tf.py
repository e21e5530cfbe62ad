"""Lazy, quiet access to Keras/TensorFlow for the host-side modules."""

from __future__ import annotations

import os
from types import ModuleType

from runtimes._deps import require


def keras() -> ModuleType:
    """Import Keras (TensorFlow backend) on first use, with TensorFlow's C++ chatter muted."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    require("tensorflow", extra="train")
    return require("keras", extra="train", package="tensorflow")
