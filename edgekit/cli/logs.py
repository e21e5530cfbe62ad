"""The CLI's logging: edgekit's own lines plain, third-party chatter in the debug log (-v), put back after."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from edgekit.reports.progress import UserFormatter

OWN_LOGGERS = ("edgekit", "converters", "runtimes", "edgekit.native")


@contextlib.contextmanager
def logging_for_the_cli(verbose: bool) -> Iterator[None]:
    """The CLI sets up logging for its command (the library never does) and puts it back after,
    so `main()` called in-process (tests, a host program) leaves the caller's logging as it was.

    Default: edgekit's progress and results at INFO, everyone else's warnings hidden (they are
    in the debug log). -v: everything at DEBUG with logger names, third-party output included.
    """
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {name: logging.getLogger(name).level for name in OWN_LOGGERS})
    handler = logging.StreamHandler(sys.stderr)
    root.handlers[:] = [handler]
    if verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    else:
        handler.setFormatter(UserFormatter())
        root.setLevel(logging.ERROR)  # third-party loggers (tf2onnx, coremltools, absl): errors only
        for name in ("edgekit", "converters", "runtimes"):
            logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger("edgekit.native").setLevel(logging.WARNING)  # captured C++ output: -v only
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
