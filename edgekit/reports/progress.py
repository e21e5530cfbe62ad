"""edgekit's own progress: one bar per long stage on a terminal, plain log lines elsewhere.

A bar redraws one line in place (`\\r`), so it is drawn only when stderr is a terminal: in a
log file or CI it would be hundreds of updates. What a log should keep (one line per epoch,
per exported target) goes through `logging`, which the CLI shows and a library caller
configures as they like.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import IO, Any, Iterator

log = logging.getLogger(__name__)


class UserFormatter(logging.Formatter):
    """edgekit's own lines as plain text; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


@contextlib.contextmanager
def shown_progress(verbose: int, stream: IO[str] | None = None) -> Iterator[None]:
    """edgekit's INFO lines (progress, summaries) on stderr for one call when the caller set up no logging.

    A library call that trains for minutes must not be silent, and must not configure the caller's logging
    either: when no handler would receive the ``edgekit`` loggers' records (no `logging` setup anywhere, the
    plain-script case), one is attached to the ``edgekit`` logger for the duration of the call and removed
    after, levels put back. Where the caller configured logging (the CLI, an application), their setup
    decides. `verbose=0` adds nothing.
    """
    own = logging.getLogger("edgekit")
    if not verbose or own.hasHandlers():
        yield
        return
    native = logging.getLogger("edgekit.native")  # captured C++ output: never by default
    saved = (own.level, native.level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(UserFormatter())
    own.addHandler(handler)
    own.setLevel(logging.INFO)
    native.setLevel(max(native.level, logging.WARNING))
    try:
        yield
    finally:
        own.removeHandler(handler)
        own.setLevel(saved[0])
        native.setLevel(saved[1])


def is_terminal(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """An in-place bar on a terminal; does nothing when the stream is not one (or `enabled` is False)."""

    WIDTH = 24

    def __init__(self, label: str, total: int, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.label, self.total = label, max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.active = enabled and is_terminal(self.stream)
        self._drawn = False

    def update(self, done: int, suffix: str = "") -> None:
        if not self.active:
            return
        filled = self.WIDTH * min(done, self.total) // self.total
        self.stream.write(
            f"\r\033[K{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} {suffix}"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the bar: the stage's result line takes its place."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False


def epoch_progress(keras: Any, epochs: int, steps: int, enabled: bool = True, logger: logging.Logger = log) -> Any:
    """A Keras callback: a bar per epoch on a terminal, and one log line per epoch everywhere.

    It replaces Keras' own `verbose=1` output, whose per-step bars become hundreds of
    carriage-return updates in a log file.
    """

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()
            self.bar = ProgressBar(f"epoch {epoch + 1}/{epochs}", steps, enabled=enabled)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            self.bar.update(batch + 1, f"loss {loss:.4f}" if loss is not None else "")

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.bar.close()
            metrics = "  ".join(
                f"{name} {float(value):.4f}"
                for name, value in (logs or {}).items()
                if name
                in (
                    "loss",
                    "accuracy",
                    "val_loss",
                    "val_accuracy",
                    "hard_label_accuracy",
                    "val_hard_label_accuracy",
                    "val_map",
                    "val_map50",
                    "val_oks_map",
                    "val_pck",
                    "val_miou",
                    "val_pixel_accuracy",
                )
            )
            if enabled:
                logger.info("epoch %d/%d  %s  (%.1f s)", epoch + 1, epochs, metrics, time.perf_counter() - self.started)

    return EpochProgress()
