"""Work that several targets of one export share, done once per model.

Exporting one model to every target repeats the same expensive steps: a SavedModel for
each TFLite mode, a float ONNX graph for each ONNX mode, a converted ML program for each
CoreML compression. Inside `shared_work()` a converter asks `intermediate(model, key, make)`
and gets the result made by the first target that needed it. Outside the block nothing is
kept, so a model trained further between two calls is never served stale work.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

SCRATCH_PREFIX = "edgekit-scratch-"


@dataclass
class _Session:
    stack: ExitStack = field(default_factory=ExitStack)
    values: dict[tuple[int, Hashable], tuple[Any, Any]] = field(default_factory=dict)  # key -> (model, value)


_SESSION: ContextVar[_Session | None] = ContextVar("edgekit_shared_work", default=None)


@contextmanager
def shared_work() -> Iterator[None]:
    """Within this block, converters reuse intermediate results for the same model object.

    Every temporary file of the block (edgekit's SavedModels and graphs, and what TensorFlow's
    autograph, tf2onnx and coremltools write) goes into one scratch folder that is removed at
    the end; a folder left by a killed process is removed by the next export.
    """
    if _SESSION.get() is not None:  # nested: the outer session already shares
        yield
        return
    session = _Session()
    token = _SESSION.set(session)
    try:
        with scratch_folder(), session.stack:
            yield
    finally:
        _SESSION.reset(token)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a platform that cannot tell: leave it
    return True


def remove_stale_scratch(root: Path) -> list[Path]:
    """Remove scratch folders under `root` whose process is gone (a killed export's leftovers)."""
    removed = []
    for folder in root.glob(f"{SCRATCH_PREFIX}*"):
        pid_text = folder.name[len(SCRATCH_PREFIX) :].split("-")[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.debug("removed %d scratch folder(s) left by killed exports", len(removed))
    return removed


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A private temporary folder that is the process's temp dir for the block, then removed.

    `tempfile.tempdir` is restored afterwards, so the caller's own temp files go where they did.
    """
    root = Path(tempfile.gettempdir())
    remove_stale_scratch(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root))
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def intermediate(model: Any, key: Hashable, make: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
    """The value `make()` yields for (`model`, `key`): made once per session, or once per call outside one.

    `make` returns a context manager so that temporary files live exactly as long as their users.
    """
    session = _SESSION.get()
    if session is None:
        with make() as value:
            yield value
        return
    slot = (id(model), key)
    if slot not in session.values:  # the model is held too, so its id cannot be reused meanwhile
        session.values[slot] = (model, session.stack.enter_context(make()))
    yield session.values[slot][1]


def sharing() -> bool:
    """True inside `shared_work()`."""
    return _SESSION.get() is not None
