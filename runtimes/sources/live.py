"""Live sources: webcams, RTSP/HTTP streams and the Pi camera, captured on a thread that keeps only the newest frame.

A live source that stops delivering is reopened with backoff a bounded number of times, then
ends with a clear error; frames replaced unseen are counted as dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterator, Protocol

import cv2
import numpy as np

from runtimes.errors import SourceError
from runtimes.sources.base import Frame, Source, redact_credentials

log = logging.getLogger(__name__)

STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://")


class FrameReader(Protocol):
    """Device access for a live source: open, read one frame (None on failure), close."""

    name: str

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class OpenCVReader:
    """A webcam index or a stream URL through cv2.VideoCapture, with a one-frame buffer."""

    def __init__(self, target: int | str) -> None:
        self.target = target
        self.name = f"camera {target}" if isinstance(target, int) else f"stream {redact_credentials(target)}"
        self.capture: Any = None

    def open(self) -> None:
        self.capture = cv2.VideoCapture(self.target)
        if not self.capture.isOpened():
            self.capture.release()
            self.capture = None
            hint = (
                "check the index (ls /dev/video*) and that no other program holds it"
                if isinstance(self.target, int)
                else "check the URL, credentials and that the stream is up"
            )
            raise SourceError(f"cannot open {self.name}: {hint}")
        self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # drivers that honour it keep no backlog

    def read(self) -> np.ndarray | None:
        ok, image = self.capture.read() if self.capture is not None else (False, None)
        return image if ok else None

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class Picamera2Reader:
    """The Raspberry Pi camera through libcamera's picamera2 (OpenCV cannot open it)."""

    def __init__(self, camera: int = 0, size: tuple[int, int] = (640, 480)) -> None:
        self.camera, self.size = camera, size
        self.name = f"picamera2 camera {camera}"
        self.device: Any = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # only on a Pi, only when asked for
        except ImportError as exc:
            raise SourceError(
                f"picamera2 is not importable ({exc}); on Raspberry Pi OS: sudo apt install python3-picamera2, "
                "and create the venv with --system-site-packages"
            ) from None
        try:
            self.device = Picamera2(self.camera)
            config = self.device.create_video_configuration(main={"size": self.size, "format": "BGR888"})
            self.device.configure(config)
            self.device.start()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError for absent cameras
            raise SourceError(f"cannot open {self.name}: {exc}") from None

    def read(self) -> np.ndarray | None:
        try:
            return self.device.capture_array("main")
        except Exception:  # a camera that vanished mid-run: let the source reopen it
            return None

    def close(self) -> None:
        if self.device is not None:
            self.device.stop()
            self.device.close()
            self.device = None


class LiveSource(Source):
    """Captures on a background thread and hands out only the newest frame.

    `max_reopens` attempts with exponential backoff (starting at `backoff` seconds) follow a
    failed read; after that the source ends with a SourceError. Stale frames are dropped and
    counted in ``stats.dropped``.
    """

    live = True

    def __init__(
        self, spec: str, reader: FrameReader, max_reopens: int = 5, backoff: float = 0.5, frame_timeout: float = 10.0
    ) -> None:
        super().__init__(spec)
        self.reader, self.max_reopens, self.backoff, self.frame_timeout = reader, max_reopens, backoff, frame_timeout
        self.reader.open()  # fail now, in the caller's thread, with the device named
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._capture, name=f"edgekit-capture-{reader.name}", daemon=True)
        self._thread.start()

    def _capture(self) -> None:
        index, failures = 0, 0
        try:
            while not self._stopped.is_set():
                image = self.reader.read()
                if image is None:
                    failures += 1
                    if failures > self.max_reopens:
                        raise SourceError(
                            (
                                f"{self.reader.name} stopped delivering frames; gave up after {self.max_reopens} "
                                "reopen "
                                "attempts"
                            )
                        )
                    delay = self.backoff * 2 ** (failures - 1)
                    log.warning(
                        "%s delivered no frame; reopening in %.1f s (attempt %d/%d)",
                        self.reader.name,
                        delay,
                        failures,
                        self.max_reopens,
                    )
                    if self._stopped.wait(delay):
                        return
                    self.reader.close()
                    try:
                        self.reader.open()
                        self.stats.reopened += 1
                    except SourceError as exc:
                        log.warning("%s", exc)
                    continue
                failures = 0
                frame = Frame(image, time.monotonic(), index, self.shown)
                index += 1
                with self._condition:
                    if self._latest is not None:
                        self.stats.dropped += 1  # nobody took it: inference is slower than the camera
                    self._latest = frame
                    self._condition.notify_all()
        except BaseException as exc:  # hand any failure to the consumer instead of dying silently
            self._error = exc
        finally:
            with self._condition:
                self._stopped.set()
                self._condition.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._condition:
                ready = self._condition.wait_for(
                    lambda: self._latest is not None or self._stopped.is_set(), self.frame_timeout
                )
                if self._latest is not None:
                    frame, self._latest = self._latest, None
                elif self._error is not None:
                    raise self._error
                elif self._stopped.is_set():
                    return
                elif not ready:
                    raise SourceError(f"{self.reader.name} delivered no frame within {self.frame_timeout:.0f} s")
                else:
                    continue
            self.stats.delivered += 1
            yield frame

    def close(self) -> None:
        self._stopped.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.reader.close()


def picamera_index(spec: str) -> int:
    """The camera number in ``picamera2:N`` (0 for plain ``picamera2``)."""
    _, _, index = spec.partition(":")
    return int(index) if index.isdigit() else 0
