"""The live view's engine: one thread runs `Model.stream` on the source and publishes the latest frame.

The camera loop never waits for a viewer: each result is drawn, JPEG-encoded once and stored as
the latest (the previous one is dropped). Viewers wait for a newer frame than the one they sent
last and take whatever is latest then, so a slow client skips frames instead of holding the loop
or a queue. A video file loops (a demo source) at its own frame rate (a file read as fast as it
decodes would take every core for no viewer's benefit); a camera that fails is reopened after a
pause. Camera URLs are shown with their credentials masked, in the log and in /healthz.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2

from runtimes.display import draw_overlay
from runtimes.sources.base import redact_credentials

log = logging.getLogger("edgekit.serve")

RETRY_SECONDS = 2.0
FILE_FPS = 30.0  # the pace of a video file that does not say its own


@dataclass
class Published:
    """The latest frame as served: its number, JPEG bytes and the result as a JSON-ready record."""

    number: int = 0
    jpeg: bytes = b""
    record: dict[str, Any] = field(default_factory=dict)


class LiveFeed:
    """Runs the stream in a daemon thread; `latest`/`wait_newer` hand its output to any number of viewers."""

    def __init__(
        self,
        model: Any,
        source: Any,
        open_source: Callable[[Any], Any],
        stream_options: dict[str, Any] | None = None,
        jpeg_quality: int = 80,
        loop_files: bool = True,
        realtime_files: bool = True,
        threshold: float | None = None,
    ) -> None:
        self.model, self.source_spec, self._open = model, source, open_source
        self.threshold = threshold  # a classifier's "uncertain" line in the records and the overlay
        self.options = dict(stream_options or {})
        self.jpeg_quality, self.loop_files, self.realtime_files = jpeg_quality, loop_files, realtime_files
        self._condition = threading.Condition()
        self._published = Published()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: Any = None
        self.frames_dropped_by_viewers = 0
        self.error: str | None = None
        self.fps = self.latency_ms = 0.0

    def start(self) -> "LiveFeed":
        self._thread = threading.Thread(target=self._run, name="edgekit-live", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and release the camera (the stream's source is closed before this returns, unless the camera
        hangs for over `timeout` seconds). A server calls it off its event loop."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        with self._condition:
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def latest(self) -> Published:
        with self._condition:
            return self._published

    def wait_newer(self, number: int, timeout: float) -> Published:
        """The latest frame once it is newer than `number` (or the current one after `timeout` seconds)."""
        with self._condition:
            self._condition.wait_for(lambda: self._published.number > number or self._stop.is_set(), timeout)
            return self._published

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                source = self._open(self.source_spec)
            except Exception as exc:  # a camera not there yet, an RTSP server down: retry, say why once
                self._failed(f"cannot open {self.source_spec}: {exc}")
                continue
            try:
                self._stream = self.model.stream(source, **self.options)
                pace = None if source.live or not self.realtime_files else 1.0 / (getattr(source, "fps", 0) or FILE_FPS)
                due = time.monotonic()
                for result in self._stream:
                    if self._stop.is_set():
                        break
                    self._publish(result)
                    if pace is not None:  # a file plays at its own frame rate
                        due = max(due + pace, time.monotonic() - pace)
                        self._stop.wait(max(0.0, due - time.monotonic()))
                self.error = None
            except Exception as exc:  # the loop must outlive a bad source; the next open may work
                if self._stop.is_set():  # stop() closed the source under the read: not a failure
                    break
                self._failed(f"the stream from {self.source_spec} failed: {type(exc).__name__}: {exc}")
                continue
            finally:
                if self._stream is not None:
                    self._stream.close()
                self._stream = None
            if source.live or not self.loop_files:
                self._stop.wait(RETRY_SECONDS)  # a camera that ended: reopen after a pause

    def _failed(self, message: str) -> None:
        message = redact_credentials(message)  # the spec, and OpenCV's and FFmpeg's words, may hold a URL's password
        if message != self.error:
            log.warning("%s; retrying every %.0f s", message, RETRY_SECONDS)
        self.error = message
        self._stop.wait(RETRY_SECONDS)

    def _publish(self, result: Any) -> None:
        task = self.model.task
        stream = self._stream
        canvas = draw_overlay(
            result.frame.image,
            result.result,
            result.fps,
            self.threshold,
            task=task,
            labels=self.model.labels,
            counter=stream.counter if stream is not None else None,
            latency_ms=result.latency_ms,
        )
        ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        record = task.record(
            result.frame.origin(),
            result.result,
            self.threshold,
            latency_ms=result.latency_ms,
            age_ms=result.age_ms,
            fps=result.fps,
        )
        if result.counts is not None:
            record["count"] = result.counts.to_dict()
        self.fps, self.latency_ms = result.fps, result.latency_ms
        with self._condition:
            self._published = Published(
                self._published.number + 1, encoded.tobytes(), {"sequence": self._published.number + 1, **record}
            )
            self._condition.notify_all()
