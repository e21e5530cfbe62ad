"""TFLite hardware delegates by name or by library path, with errors that say what to install.

A delegate spec is a name (``"edgetpu"``, ``"gpu"``, ``"xnnpack"``), optionally with options
(``"edgetpu:device=usb"``), or the path of a delegate shared library.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from runtimes.errors import BackendUnavailableError, InputError
from runtimes.registry import Registry

EDGETPU_OP = b"edgetpu-custom-op"  # the custom op edgetpu_compiler puts in a compiled model


@dataclass(frozen=True)
class DelegateSpec:
    """A named delegate: its shared library per platform and how to get it."""

    name: str
    libraries: tuple[str, ...]  # tried in order; empty for delegates built into the interpreter
    install: str


DELEGATES: Registry[DelegateSpec] = Registry("TFLite delegate")
for _spec in (
    DelegateSpec(
        "edgetpu",
        ("libedgetpu.so.1", "libedgetpu.1.dylib", "edgetpu.dll"),
        "the Edge TPU runtime: `sudo apt install libedgetpu1-std` (https://coral.ai/software/) and a Coral device",
    ),
    DelegateSpec(
        "gpu",
        ("libtensorflowlite_gpu_delegate.so",),
        "a TFLite GPU delegate library built for this device "
        "(bazel build //tensorflow/lite/delegates/gpu:libtensorflowlite_gpu_delegate.so), or pass its path",
    ),
    DelegateSpec(
        "xnnpack", (), "nothing: XNNPACK is built into LiteRT and tflite-runtime (num_threads sets its threads)"
    ),
):
    DELEGATES.register(_spec.name)(_spec)


def parse_delegate(spec: str) -> tuple[str, dict[str, str]]:
    """'edgetpu:device=usb' -> ('edgetpu', {'device': 'usb'}); a path is returned as its own name."""
    if os.sep in spec or spec.endswith((".so", ".dylib", ".dll")) or ".so." in spec:
        return spec, {}
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"invalid delegate option {item!r} in {spec!r}; use NAME:KEY=VALUE[,KEY=VALUE]")
        options[key] = value
    if name not in DELEGATES:
        raise InputError(f"unknown TFLite delegate {name!r}; valid: {', '.join(DELEGATES.names())}, or a library path")
    return name, options


def load_delegates(specs: list[str], interpreter_module: str) -> tuple[list[Any], dict[str, str]]:
    """Loaded delegate objects for `specs`, and options that go to the interpreter itself (xnnpack)."""
    load_delegate = getattr(importlib.import_module(interpreter_module), "load_delegate", None)
    loaded, interpreter_options = [], {}
    for spec in specs:
        name, options = parse_delegate(spec)
        if name == "xnnpack":
            interpreter_options.update(options)
            continue
        entry = DELEGATES.get(name) if name in DELEGATES else DelegateSpec(name, (name,), f"the library {name}")
        if load_delegate is None:
            raise BackendUnavailableError(f"{interpreter_module} cannot load delegates; install ai-edge-litert")
        errors = []
        for library in entry.libraries:
            try:
                loaded.append(load_delegate(library, options))
                break
            except (ValueError, OSError, RuntimeError) as exc:
                errors.append(f"{library}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        else:
            raise BackendUnavailableError(
                f"TFLite delegate {name!r} could not be loaded ({'; '.join(errors)}). Install {entry.install}"
            )
    return loaded, interpreter_options


def compiled_for_edgetpu(model: bytes) -> bool:
    """True for models compiled by edgetpu_compiler: they only run with the edgetpu delegate."""
    return EDGETPU_OP in model
