"""Frame sources: image files, folders, videos, webcams, streams, the Pi camera, numpy frames.

`open_source(spec)` picks the kind. File sources deliver every frame in order. Live sources
(webcam, RTSP/HTTP stream, picamera2) capture on a background thread that keeps only the
newest frame, so inference always gets the freshest one; frames it replaces unseen are
counted as dropped. A live source that stops delivering is reopened with backoff a bounded
number of times, then ends with a clear error.
"""

from __future__ import annotations

import glob
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import cv2
import numpy as np

from runtimes.errors import EdgekitError, InputError
from runtimes.preprocess import read_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://")


class SourceError(EdgekitError):
    """A source cannot be opened, or a live source stopped and could not be reopened."""


@dataclass(frozen=True)
class Frame:
    """One image from a source: BGR uint8 pixels, when it was captured, and where it came from."""

    image: np.ndarray
    timestamp: float  # time.monotonic() at capture
    position: str | int  # file name, or frame index for videos and live sources


@dataclass
class SourceStats:
    delivered: int = 0
    dropped: int = 0  # live frames replaced by a newer one before anyone read them
    skipped: int = 0  # unreadable files or frames
    reopened: int = 0
    skipped_items: list[str] = field(default_factory=list)


class Source:
    """Iterate to get `Frame`s; always close (or use `with`) to release cameras and threads."""

    live = False

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.stats = SourceStats()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _skip(self, item: str, reason: str) -> None:
        self.stats.skipped += 1
        self.stats.skipped_items.append(item)
        log.warning("skipped %s: %s", item, reason)


def frame_problem(image: Any) -> str | None:
    """Why `image` is not a usable BGR frame (None when it is): checked before it reaches a model."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        return f"not a uint8 image array ({type(image).__name__}, {getattr(image, 'dtype', '-')})"
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        return f"shape {image.shape} is not HxW, HxWx1, HxWx3 or HxWx4"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return f"empty frame of shape {image.shape}"
    return None


class FileSource(Source):
    """Image files in order; an unreadable one is skipped and counted."""

    def __init__(self, spec: str, files: list[Path]) -> None:
        super().__init__(spec)
        self.files = files

    def __iter__(self) -> Iterator[Frame]:
        for path in self.files:
            try:
                image = read_image(path)
            except InputError as exc:
                self._skip(str(path), str(exc))
                continue
            self.stats.delivered += 1
            yield Frame(image, time.monotonic(), path.name)


class VideoSource(Source):
    """Every frame of a video file in order; ends cleanly at EOF.

    A frame the decoder cannot read before the container's frame count is reached is not an
    end of file: it is skipped and counted, and reading goes on. When `max_bad_run` reads in a
    row fail (a truncated file, a demuxer that lost sync), the source ends with a SourceError
    that says how far it got, never quietly.
    """

    def __init__(self, spec: str, path: Path, max_bad_run: int = 25) -> None:
        super().__init__(spec)
        self.path, self.max_bad_run = path, max_bad_run
        self._reading = threading.Lock()  # close() from another thread (a server stopping) waits for the read in flight
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise SourceError(f"cannot open video {path}: the file is corrupt or its codec is not supported by OpenCV")
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and count > 0 else None  # what the container says it holds

    def __iter__(self) -> Iterator[Frame]:
        index, bad_run = 0, 0
        while True:
            with self._reading:  # releasing the decoder under a read aborts the process
                if self.capture is None:
                    return
                ok, image = self.capture.read()
            if ok and image is not None and image.size:
                for missing in range(index - bad_run, index):  # the failed reads before this one were frames
                    self._skip(f"frame {missing}", "the decoder could not read it")
                bad_run = 0
                self.stats.delivered += 1
                yield Frame(image, time.monotonic(), index)
                index += 1
                continue
            if self.frame_count is None or index >= self.frame_count:
                return  # the end the container announced (or none announced): a clean end of file
            bad_run += 1
            index += 1
            if bad_run >= self.max_bad_run:
                read = index - bad_run
                if read >= self.frame_count - max(2, self.frame_count // 50):  # counts estimated from the duration
                    return
                raise SourceError(
                    f"video {self.path} stopped decoding after {read} of {self.frame_count} frames "
                    f"({self.stats.skipped} unreadable frame(s) skipped before): the file is truncated or damaged"
                )

    def close(self) -> None:
        with self._reading:
            if self.capture is not None:
                self.capture.release()
                self.capture = None


class ArraySource(Source):
    """Frames from any iterable of numpy images (BGR, as OpenCV gives them)."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        super().__init__("<arrays>")
        self.frames = frames

    def __iter__(self) -> Iterator[Frame]:
        for index, image in enumerate(self.frames):
            problem = frame_problem(image)
            if problem:
                self._skip(f"frame {index}", problem)
                continue
            self.stats.delivered += 1
            yield Frame(image, time.monotonic(), index)


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
        self.name = f"camera {target}" if isinstance(target, int) else f"stream {target}"
        self.capture: Any = None

    def open(self) -> None:
        self.capture = cv2.VideoCapture(self.target)
        if not self.capture.isOpened():
            self.capture.release()
            self.capture = None
            hint = "check the index (ls /dev/video*) and that no other program holds it" if isinstance(self.target, int) \
                else "check the URL, credentials and that the stream is up"
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

    def __init__(self, spec: str, reader: FrameReader, max_reopens: int = 5, backoff: float = 0.5,
                 frame_timeout: float = 10.0) -> None:
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
                        raise SourceError(f"{self.reader.name} stopped delivering frames; gave up after {self.max_reopens} reopen attempts")
                    delay = self.backoff * 2 ** (failures - 1)
                    log.warning("%s delivered no frame; reopening in %.1f s (attempt %d/%d)", self.reader.name, delay, failures, self.max_reopens)
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
                frame = Frame(image, time.monotonic(), index)
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
                ready = self._condition.wait_for(lambda: self._latest is not None or self._stopped.is_set(), self.frame_timeout)
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


@dataclass(frozen=True)
class SourceKind:
    """One way to read a spec: `matches(spec)` decides, `open(spec)` builds the source."""

    name: str
    matches: Callable[[Any], bool]
    open: Callable[[Any], Source]


def _is_path_with(spec: Any, suffixes: tuple[str, ...]) -> bool:
    return isinstance(spec, (str, Path)) and Path(spec).suffix.lower() in suffixes and not str(spec).startswith(STREAM_PREFIXES)


def _folder_files(spec: str | Path) -> list[Path]:
    text = str(spec)
    paths = [Path(p) for p in sorted(glob.glob(text))] if any(c in text for c in "*?[") else sorted(Path(spec).iterdir())
    return [p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _open_image(spec: Any) -> Source:
    path = Path(spec)
    if not path.is_file():
        raise SourceError(f"image file not found: {path}")
    return FileSource(str(spec), [path])


def _open_folder(spec: Any) -> Source:
    files = _folder_files(spec)
    if not files:
        raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {spec}")
    return FileSource(str(spec), files)


def _open_video(spec: Any) -> Source:
    if not Path(spec).is_file():
        raise SourceError(f"video file not found: {spec}")
    return VideoSource(str(spec), Path(spec))


def _picamera_index(spec: str) -> int:
    _, _, index = spec.partition(":")
    return int(index) if index.isdigit() else 0


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("frames", lambda s: not isinstance(s, (str, Path, int)) and isinstance(s, Iterable), ArraySource),
    SourceKind("webcam", lambda s: isinstance(s, int) or (isinstance(s, str) and s.isdigit()),
               lambda s: LiveSource(str(s), OpenCVReader(int(s)))),
    SourceKind("picamera2", lambda s: isinstance(s, str) and s.split(":")[0] == "picamera2",
               lambda s: LiveSource(s, Picamera2Reader(_picamera_index(s)))),
    SourceKind("stream", lambda s: isinstance(s, str) and s.startswith(STREAM_PREFIXES),
               lambda s: LiveSource(s, OpenCVReader(s))),
    SourceKind("image", lambda s: _is_path_with(s, IMAGE_SUFFIXES) and not any(c in str(s) for c in "*?["), _open_image),
    SourceKind("video", lambda s: _is_path_with(s, VIDEO_SUFFIXES), _open_video),
    SourceKind("folder", lambda s: isinstance(s, (str, Path)) and (Path(s).is_dir() or any(c in str(s) for c in "*?[")), _open_folder),
)


def open_source(spec: Any) -> Source:
    """Open `spec`: a path to an image, folder, glob or video; a webcam index (0); an RTSP/HTTP
    URL; ``picamera2`` (or ``picamera2:1``); or an iterable of numpy BGR frames.

    Example:
        >>> with open_source("clip.mp4") as frames:
        ...     for frame in frames:
        ...         print(frame.position, frame.image.shape)
    """
    for kind in SOURCE_KINDS:
        if kind.matches(spec):
            return kind.open(spec)
    raise SourceError(
        f"cannot open source {spec!r}: not an existing image, folder, glob or video "
        f"({', '.join(VIDEO_SUFFIXES)}), a webcam index like 0, an rtsp:// or http:// URL, "
        "'picamera2', or an iterable of frames"
    )
