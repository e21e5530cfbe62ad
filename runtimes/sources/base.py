"""What every frame source shares: the `Frame` it yields, its counters, the `Source` protocol, `SourceError`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

log = logging.getLogger(__name__)

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def redact_credentials(text: object) -> str:
    """`text` with the user and password of every URL in it masked (rtsp://admin:pw@cam/ -> rtsp://***@cam/), for
    logs, errors and anything a server shows."""
    return _USERINFO.sub(r"\g<scheme>***@", str(text))


@dataclass(frozen=True)
class Frame:
    """One image from a source: BGR uint8 pixels, when it was captured, and where it came from.

    Attributes:
        image: (H, W, 3) BGR uint8 pixels.
        timestamp: time.monotonic() at capture.
        position: The file name, or the frame's index for videos and live sources.
        source: The file's path, or the video, camera or stream as given (credentials masked).
    """

    image: np.ndarray
    timestamp: float  # time.monotonic() at capture
    position: str | int  # file name, or frame index for videos and live sources
    source: str = ""  # the file's path, or the video, camera or stream as given (credentials masked)

    def origin(self) -> dict[str, str | int]:
        """Where the frame came from, as a JSON result says it: ``{"source": path}`` for an image file,
        ``{"source": spec, "frame": index}`` for a frame of a video, camera or stream."""
        if isinstance(self.position, int):
            return {"source": self.source, "frame": self.position}
        return {"source": self.source or self.position}


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
        self.shown = redact_credentials(spec)  # the spec as results and logs show it (a URL's password masked)
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
