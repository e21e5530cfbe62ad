"""The `Runtime` protocol every backend implements, and the backend registry."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from runtimes.errors import ModelLoadError
from runtimes.registry import Registry
from runtimes.tensors import TensorSpec


@runtime_checkable
class Runtime(Protocol):
    """A loaded model file on one backend; raw tensors in, raw tensors out."""

    path: Path
    backend_name: str
    can_run: bool
    unavailable_reason: str

    @property
    def input_specs(self) -> list[TensorSpec]: ...

    @property
    def output_specs(self) -> list[TensorSpec]: ...

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...

    def run_filled(self, shape: tuple[int, ...], fill: Callable[[np.ndarray], object]) -> list[np.ndarray]: ...

    def embedded_contract(self) -> bytes | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Runtime": ...

    def __exit__(self, *exc: object) -> None: ...


class RuntimeBase:
    """Shared plumbing: context manager and a readable repr."""

    path: Path
    backend_name = "base"
    can_run = True  # False where the model opens but cannot execute on this machine
    unavailable_reason = ""

    def run_filled(self, shape: tuple[int, ...], fill: Callable[[np.ndarray], object]) -> list[np.ndarray]:
        """Run a one-input model on what `fill(buffer)` writes into `buffer` (of `shape`).

        Lets callers quantize or look up pixels straight into the input memory. This default
        reuses one buffer per shape; a backend that exposes its own input memory overrides it
        so that nothing is copied on the way in. `fill` must not keep a reference to `buffer`.
        """
        buffer = self.__dict__.get("_filled_buffer")
        if buffer is None or buffer.shape != tuple(shape):
            buffer = self.__dict__["_filled_buffer"] = np.empty(shape, self.input_specs[0].dtype)
        fill(buffer)
        return self.run([buffer])

    def standard_contract(self) -> Any:
        """A contract derived from the format's standard metadata, with where each field came from,
        for files edgekit did not write: ``(ModelContract, {field: source})``, or None."""
        return None

    def close(self) -> None:
        """Release backend resources; safe to call twice."""

    def __enter__(self) -> "RuntimeBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path.name} on {self.backend_name}>"


def artifact_size(path: Path) -> int:
    """Bytes on disk of a model file or package folder (an .mlpackage is a folder)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


@dataclass(frozen=True)
class BackendEntry:
    """A backend by name: the file suffixes (or folder markers) it opens and where its class lives.

    `target` is "package.module:Class", imported on first use: registering a backend costs no import, so
    host-only backends (TensorFlow's SavedModel) and the CoreML reference executor are declared the same
    way as the device ones, and none is imported until a file of its kind is opened.
    """

    name: str
    suffixes: tuple[str, ...]
    target: str
    reference: bool = False  # a correctness check where the real runtime cannot run, never the default
    markers: tuple[str, ...] = ()  # files that make a folder without a suffix this backend's (saved_model.pb)

    def recognizes(self, path: Path) -> bool:
        if path.is_dir() and any((path / marker).is_file() for marker in self.markers):
            return True
        return path.suffix.lower() in self.suffixes

    @property
    def factory(self) -> Callable[..., Runtime]:
        """The backend's class, imported now."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


BACKENDS: Registry[BackendEntry] = Registry("backend")


def register_backend(
    name: str, suffixes: Sequence[str], target: str, reference: bool = False, markers: Sequence[str] = ()
) -> BackendEntry:
    """Make a backend openable by name and by file suffix (or, for a folder, by a marker file in it).

    `target` ("package.module:Class") is imported when a file of this kind is first opened. A `reference`
    backend is opened only by name, or by `reference_backend_for` to check an artifact whose own runtime
    cannot run on this machine.

    Args:
        name: the backend's name (`open_model(path, backend=name)`).
        suffixes: the file suffixes it opens (".tflite").
        target: "package.module:Class", a `Runtime` whose constructor takes the path and the backend's options.
        reference: a checking backend, opened only by name or for artifacts nothing else here can run.
        markers: for model folders, a file whose presence identifies the kind (saved_model.pb).

    Returns:
        The registered `BackendEntry`.

    Raises:
        ValueError: `name` is already registered.
    """
    entry = BackendEntry(name, tuple(s.lower() for s in suffixes), target, reference, tuple(markers))
    BACKENDS.register(name)(entry)
    return entry


def reference_backend_for(path: Path) -> BackendEntry | None:
    """The reference backend registered for `path`'s suffix, if any."""
    suffix = Path(path).suffix.lower()
    return next((entry for _, entry in BACKENDS.items() if entry.reference and suffix in entry.suffixes), None)


def backend_for(path: Path) -> BackendEntry:
    suffix = path.suffix.lower()
    for _, entry in BACKENDS.items():
        if entry.recognizes(path) and not entry.reference:
            return entry
    known = sorted({s for _, entry in BACKENDS.items() for s in entry.suffixes})
    folders = sorted({m for _, entry in BACKENDS.items() for m in entry.markers})
    raise ModelLoadError(
        f"cannot open {path}: unknown model file type {suffix or '(no suffix)'!r}; "
        f"supported: {', '.join(known)}" + (f", or a folder holding {', '.join(folders)}" if folders else "")
    )


FOLDER_SUFFIXES = (".mlpackage",)  # model formats that are folders; every other one is a file


def open_runtime(path: str | Path, backend: str | None = None, **options: Any) -> Runtime:
    """Open a model file on the backend registered for its suffix (or the one named), without a contract: the raw
    `Runtime` that `open_model` wraps.

    Args:
        path: the model file (or package folder).
        backend: a registered backend's name; None: the one registered for the suffix.
        **options: the backend's own (`num_threads`, `delegates`, `providers`, ...).

    Returns:
        The backend's `Runtime`: `run(batch)`, `input_spec`, `output_specs`, `close()`.

    Raises:
        ModelLoadError: a missing file, a folder given for a file (or the reverse), or a suffix no backend takes.
        BackendUnavailableError: the backend's package is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    folder = path.suffix.lower() in FOLDER_SUFFIXES or any(
        path.is_dir() and any((path / marker).is_file() for marker in entry.markers) for _, entry in BACKENDS.items()
    )
    if path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "a file"
        raise ModelLoadError(
            f"cannot open {path}: it is {kind}, but a {path.suffix or 'model'} model is "
            f"{'a package folder' if folder else 'a single file'}"
        )
    entry = BACKENDS.get(backend) if backend else backend_for(path)
    return entry.factory(path, **options)


def read_model_file(path: Path) -> bytes:
    """A model file's bytes; an unreadable file is a ModelLoadError that says why."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
