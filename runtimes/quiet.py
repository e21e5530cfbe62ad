"""Keep third-party chatter out of the user's terminal and in the debug log.

TensorFlow, LiteRT, coremltools and tf2onnx write from C++ straight to file descriptors 1
and 2 (start-up lines, `fully_quantize: ...`, progress bars), which no logging setting
reaches. `quiet_native` points both descriptors at a temporary file for the length of one
third-party call, restores them, and sends what was written to the debug log (`-v` shows
it). Python warnings raised in the block go to the same log. Standard library only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Iterator

native_log = logging.getLogger("edgekit.native")


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


@contextmanager
def quiet_native(what: str, logger: logging.Logger = native_log) -> Iterator[None]:
    """Run the block with fds 1/2 and Python warnings captured into `logger` at DEBUG.

    Only around third-party calls: edgekit's own progress, logged inside the block, would be
    captured too (and so would another thread's writes in that moment). Nested blocks nest;
    the descriptors are always restored. Without a writable temp dir it captures nothing.
    """
    _flush_python_streams()
    try:
        sink = tempfile.TemporaryFile()
    except OSError:  # no writable temp dir (a read-only device): run as is rather than fail the call
        yield
        return
    try:
        saved = (os.dup(1), os.dup(2))
    except OSError:  # no descriptors to redirect (an embedded interpreter): run as is
        sink.close()
        yield
        return
    python_text = io.StringIO()  # prints to a sys.stdout/stderr that is not a descriptor (a caller's StringIO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                with contextlib.redirect_stdout(python_text), contextlib.redirect_stderr(python_text):
                    yield
            finally:
                _flush_python_streams()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
        sink.seek(0)
        text = sink.read().decode("utf-8", errors="replace") + python_text.getvalue()
        if logger.isEnabledFor(logging.DEBUG):
            for line in text.replace("\r", "\n").splitlines():
                if line.strip():
                    logger.debug("[%s] %s", what, line.rstrip())
            for warning in caught:
                logger.debug("[%s] %s: %s", what, warning.category.__name__, warning.message)
    finally:
        for fd in saved:
            os.close(fd)
        sink.close()


@contextmanager
def warnings_to_debug_log(what: str, logger: logging.Logger = native_log) -> Iterator[None]:
    """Python warnings raised in the block go to `logger` at DEBUG (file descriptors untouched, so edgekit's own
    progress still shows); the caller's warning filters are restored after."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        logger.debug("[%s] %s: %s", what, warning.category.__name__, warning.message)
