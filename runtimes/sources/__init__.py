"""Frame sources: image files, folders, videos, webcams, streams, the Pi camera, numpy frames.

`open_source(spec)` picks the kind. File sources deliver every frame in order. Live sources
(webcam, RTSP/HTTP stream, picamera2) capture on a background thread that keeps only the
newest frame, so inference always gets the freshest one; frames it replaces unseen are
counted as dropped. A live source that stops delivering is reopened with backoff a bounded
number of times, then ends with a clear error.

Modules: `base` (Frame, Source, SourceError), `files` (images, folders, videos, numpy frames),
`live` (webcams, streams, the Pi camera); the kinds `open_source` tries are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from runtimes.errors import SourceError
from runtimes.sources.base import Frame, Source, SourceStats, frame_problem, redact_credentials
from runtimes.sources.files import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ArraySource,
    FileSource,
    VideoSource,
    open_image_file,
    open_image_folder,
    open_video_file,
)
from runtimes.sources.live import (
    STREAM_PREFIXES,
    FrameReader,
    LiveSource,
    OpenCVReader,
    Picamera2Reader,
    picamera_index,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "STREAM_PREFIXES",
    "SOURCE_KINDS",
    "VIDEO_SUFFIXES",
    "ArraySource",
    "FileSource",
    "Frame",
    "FrameReader",
    "LiveSource",
    "OpenCVReader",
    "Picamera2Reader",
    "Source",
    "SourceError",
    "SourceKind",
    "SourceStats",
    "VideoSource",
    "frame_problem",
    "open_source",
    "redact_credentials",
]


@dataclass(frozen=True)
class SourceKind:
    """One way to read a spec: `matches(spec)` decides, `open(spec)` builds the source."""

    name: str
    matches: Callable[[Any], bool]
    open: Callable[[Any], Source]


def _is_path_with(spec: Any, suffixes: tuple[str, ...]) -> bool:
    return (
        isinstance(spec, (str, Path))
        and Path(spec).suffix.lower() in suffixes
        and not str(spec).startswith(STREAM_PREFIXES)
    )


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("frames", lambda s: not isinstance(s, (str, Path, int)) and isinstance(s, Iterable), ArraySource),
    SourceKind(
        "webcam",
        lambda s: isinstance(s, int) or (isinstance(s, str) and s.isdigit()),
        lambda s: LiveSource(str(s), OpenCVReader(int(s))),
    ),
    SourceKind(
        "picamera2",
        lambda s: isinstance(s, str) and s.split(":")[0] == "picamera2",
        lambda s: LiveSource(s, Picamera2Reader(picamera_index(s))),
    ),
    SourceKind(
        "stream",
        lambda s: isinstance(s, str) and s.startswith(STREAM_PREFIXES),
        lambda s: LiveSource(s, OpenCVReader(s)),
    ),
    SourceKind(
        "image", lambda s: _is_path_with(s, IMAGE_SUFFIXES) and not any(c in str(s) for c in "*?["), open_image_file
    ),
    SourceKind("video", lambda s: _is_path_with(s, VIDEO_SUFFIXES), open_video_file),
    SourceKind(
        "folder",
        lambda s: isinstance(s, (str, Path)) and (Path(s).is_dir() or any(c in str(s) for c in "*?[")),
        open_image_folder,
    ),
)


def open_source(spec: Any) -> Source:
    """Open `spec`: a path to an image, folder, glob or video; a webcam index (0); an RTSP/HTTP
    URL; ``picamera2`` (or ``picamera2:1``); or an iterable of numpy BGR frames.

    Args:
        spec: what to read frames from (above); a number as a string ("0") is a webcam index too.

    Returns:
        A `Source`: iterate for `Frame`s (BGR pixels, capture time, position, origin); live sources keep only the
        newest frame. Close it, or use `with`.

    Raises:
        SourceError: nothing matches `spec`, or the file, camera or stream cannot be opened.

    Examples:
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
