"""Work that several targets of one export share, done once per model.

Exporting one model to every target repeats the same expensive steps: a SavedModel for
each TFLite mode, a float ONNX graph for each ONNX mode, a converted ML program for each
CoreML compression. Inside `shared_work()` a converter asks `intermediate(model, key, make)`
and gets the result made by the first target that needed it. Outside the block nothing is
kept, so a model trained further between two calls is never served stale work.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator, TypeVar

T = TypeVar("T")


@dataclass
class _Session:
    stack: ExitStack = field(default_factory=ExitStack)
    values: dict[tuple[int, Hashable], tuple[Any, Any]] = field(default_factory=dict)  # key -> (model, value)


_SESSION: ContextVar[_Session | None] = ContextVar("edgekit_shared_work", default=None)


@contextmanager
def shared_work() -> Iterator[None]:
    """Within this block, converters reuse intermediate results for the same model object."""
    if _SESSION.get() is not None:  # nested: the outer session already shares
        yield
        return
    session = _Session()
    token = _SESSION.set(session)
    try:
        with session.stack:
            yield
    finally:
        _SESSION.reset(token)


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
