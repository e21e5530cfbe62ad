"""What a person sees of a stream: the overlay (label, score, boxes and FPS drawn on a BGR frame), an annotated
video file and an optional window, and `present`, which feeds a stream's results to them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from runtimes.errors import InputError
from runtimes.stream import Stream, StreamResult
from runtimes.tasks import task_for


def draw_overlay(
    image: np.ndarray,
    result: Any,
    fps: float | None = None,
    threshold: float | None = 0.0,
    task: Any = None,
    labels: Sequence[str] = (),
) -> np.ndarray:
    """Return a copy of `image` with the result drawn by its task (a detector's boxes) and its summary
    line (the top label and score, or the object count) and FPS in a readable box."""
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    task = task or task_for("classification")
    lines = []
    if result is not None:
        task.draw(canvas, result, labels)
        lines.extend(task.lines(result, threshold or 0.0))
    if fps is not None:
        lines.append(f"{fps:.1f} FPS")
    scale = max(0.4, canvas.shape[0] / 480 * 0.7)
    thickness = max(1, int(round(scale * 2)))
    y = 0
    for text in lines:
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        y += height + baseline + 6
        cv2.rectangle(canvas, (0, y - height - baseline - 6), (width + 10, y + 2), (0, 0, 0), -1)
        cv2.putText(
            canvas, text, (5, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA
        )
    return canvas


_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class AnnotatedVideo:
    """Writes frames to a video; opened on the first frame, whose size and the source's fps it uses."""

    def __init__(self, path: str | Path, fps: float = 0.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _FOURCC:
            raise InputError(f"cannot write video {self.path}: use one of {', '.join(_FOURCC)}")
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray, fps_hint: float = 0.0) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fps = self.fps or fps_hint or 15.0
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, fps, (image.shape[1], image.shape[0]))
            if not self._writer.isOpened():
                raise InputError(f"OpenCV cannot write {self.path}; try an .avi file")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class Window:
    """An OpenCV window; a clear error where there is no display or no GUI support."""

    def __init__(self, title: str) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise InputError(
                "--show needs a display (DISPLAY is not set); use --save out.mp4 to write the annotated video"
            )
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise InputError(
                "this OpenCV build has no GUI support (opencv-python-headless); install opencv-python to use --show, "
                "or use --save out.mp4"
            ) from None

    def show(self, image: np.ndarray) -> bool:
        """Show a frame; False once the user pressed q or Esc."""
        cv2.imshow(self.title, image)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.title)


def present(
    stream: Stream,
    *,
    threshold: float | None = 0.0,
    window: Window | None = None,
    video: AnnotatedVideo | None = None,
) -> Iterator[StreamResult]:
    """Yield each result after drawing its overlay into `video` and `window`.

    Ends when the stream does or the user closes the window; always closes both outputs.
    """
    try:
        for item in stream:
            keep_going = True
            if window or video:
                annotated = draw_overlay(
                    item.frame.image, item.result, item.fps, threshold, stream.model.task, stream.model.labels
                )
                if stream.counter is not None:
                    stream.counter.draw(annotated)
                if video:
                    video.write(annotated, fps_hint=getattr(stream.source, "fps", 0.0))
                if window:
                    keep_going = window.show(annotated)
            yield item
            if not keep_going:
                return
    finally:
        if video:
            video.close()
        if window:
            window.close()
