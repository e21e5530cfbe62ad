"""What a person sees of a stream: the overlay (label, score, boxes and FPS drawn on a BGR frame), annotated
frames written as a video or as images (`annotated_output`), an optional window, and `present`, which feeds a
stream's results to them."""

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
    counter: Any = None,
    latency_ms: float | None = None,
) -> np.ndarray:
    """Return a copy of `image` with the result drawn by its task (a detector's boxes), a `counter`'s line and
    "in" arrow, and one banner of text (the top label and score or the object count, the line's counts, FPS and
    latency) in the corner where it covers the least of what was drawn (top left when nothing is in the way)."""
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    task = task or task_for("classification")
    lines = []
    occupied = np.zeros((0, 4), np.float32)
    if result is not None:
        task.draw(canvas, result, labels)
        lines.extend(task.lines(result, threshold or 0.0))
        occupied = task.occupied(result)
    if counter is not None:
        counter.draw(canvas)
        lines.append(str(counter.counts))
    speed = [f"{fps:.1f} FPS"] if fps is not None else []
    speed += [f"{latency_ms:.1f} ms"] if latency_ms is not None else []
    if speed:
        lines.append(", ".join(speed))
    if lines:
        _draw_banner(canvas, lines, occupied)
    return canvas


def _draw_banner(canvas: np.ndarray, lines: Sequence[str], occupied: np.ndarray) -> None:
    """White text on black, one line under another, in the corner that covers the least of `occupied`."""
    scale = max(0.4, canvas.shape[0] / 480 * 0.7)
    thickness = max(1, int(round(scale * 2)))
    widest = max(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for text in lines) + 10
    tallest = len(lines) * (cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][1] * 2 + 8)
    fit = min(1.0, 0.6 * canvas.shape[1] / widest, 0.35 * canvas.shape[0] / tallest)  # small frames: smaller text
    scale, thickness = max(0.25, scale * fit), 1 if fit < 1 else thickness
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness) for text in lines]
    pad = 8 if scale >= 0.4 else 4
    heights = [height + baseline + pad for (_, height), baseline in sizes]
    width, height = max(w for (w, _), _ in sizes) + 10, sum(heights)
    x, y = banner_corner(canvas.shape[:2], (width, height), occupied)
    for text, (_, baseline), step in zip(lines, sizes, heights):
        cv2.rectangle(canvas, (x, y), (x + width, y + step), (0, 0, 0), -1)
        cv2.putText(
            canvas,
            text,
            (x + 5, y + step - baseline - pad // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
        y += step


def banner_corner(frame: tuple[int, int], banner: tuple[int, int], occupied: np.ndarray) -> tuple[int, int]:
    """The top-left pixel of a `banner` (width, height) in the corner of a `frame` (height, width) that overlaps
    the `occupied` boxes least: top left, top right, bottom left, bottom right, the first on a tie."""
    frame_height, frame_width = frame
    width, height = banner
    corners = [
        (0, 0),
        (max(0, frame_width - width), 0),
        (0, max(0, frame_height - height)),
        (max(0, frame_width - width), max(0, frame_height - height)),
    ]
    boxes = np.asarray(occupied, np.float64).reshape(-1, 4)

    def covered(corner: tuple[int, int]) -> float:
        x, y = corner
        overlap_x = np.clip(np.minimum(boxes[:, 2], x + width) - np.maximum(boxes[:, 0], x), 0, None)
        overlap_y = np.clip(np.minimum(boxes[:, 3], y + height) - np.maximum(boxes[:, 1], y), 0, None)
        return float(np.sum(overlap_x * overlap_y))

    return min(corners, key=covered)


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

    def write(
        self,
        image: np.ndarray,
        fps_hint: float = 0.0,
        position: str | int | None = None,
        beside: dict[str, np.ndarray] | None = None,
    ) -> None:
        """One frame of the video (side images have no place in a video: `beside` is not written)."""
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


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class AnnotatedImages:
    """Writes annotated frames as image files: to `path` itself when it names one image file, else into the folder
    `path`, each under its input's file name (a video's or camera's frames as frame_000001.jpg, ...)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.single = self.path.suffix.lower() in IMAGE_SUFFIXES
        self.frames = 0
        self.written: list[Path] = []

    def write(
        self,
        image: np.ndarray,
        fps_hint: float = 0.0,
        position: str | int | None = None,
        beside: dict[str, np.ndarray] | None = None,
    ) -> None:
        """`image` under its input's name; each of `beside` (a task's side images: a segmentation's class mask)
        as a PNG next to it, named ``<stem>_<key>.png``."""
        if self.single and self.frames:
            raise InputError(
                f"--save {self.path} names one image file but the source gave more than one frame; "
                f"give a folder (--save {self.path.with_suffix('')}/) or a video (.mp4, .avi)"
            )
        target = self.path if self.single else self.path / _frame_name(position, self.frames)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), image):
            raise InputError(f"OpenCV cannot write {target}; use a .jpg or .png name")
        for key, side in (beside or {}).items():  # PNG: lossless, as class ids must be
            cv2.imwrite(str(target.with_name(f"{target.stem}_{key}.png")), side)
        self.frames += 1
        self.written.append(target)

    def close(self) -> None:
        """Nothing held open: each image is written whole."""


def _frame_name(position: str | int | None, index: int) -> str:
    """A file's own name (kept, so out/ mirrors the inputs), or frame_NNNNNN.jpg for a video's frames."""
    if isinstance(position, str) and Path(position).suffix.lower() in IMAGE_SUFFIXES:
        return Path(position).name
    return f"frame_{position if isinstance(position, int) else index:06d}.jpg"


def frames_in(source: Any) -> int | None:
    """1 when `source` is one image file, else None (a video, camera, stream, folder or glob: frames unknown)."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in IMAGE_SUFFIXES and Path(source).is_file():
        return 1
    return None


def annotated_output(
    path: str | Path, frames: int | None = None, video_ok: bool = True
) -> AnnotatedVideo | AnnotatedImages:
    """Where `--save` writes, from its name: a video (.mp4, .avi, ...), one image (.jpg, .png, ...) or a folder
    (no suffix). Checked before any work: `frames` is how many images the input has (None: a stream, a video or a
    folder), and only exactly one can go to an image file; `video_ok` is False for image files, whose sizes differ.

    Raises:
        InputError: a name that is none of these, or one that cannot hold what the input gives.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _FOURCC:
        if not video_ok:
            raise InputError(
                f"--save {path} writes a video of --source frames; for image files give a folder "
                f"(--save {path.with_suffix('')}/) or, for one image, an image file (--save {path.with_suffix('.jpg')})"
            )
        return AnnotatedVideo(path)
    if suffix in IMAGE_SUFFIXES:
        if frames != 1:
            given = f"{frames} images were given" if frames is not None else "the source gives a stream of frames"
            raise InputError(
                f"--save {path} names one image file but {given}; give a folder instead: "
                f"--save {path.with_suffix('')}/ (or a video: --save {path.with_suffix('.mp4')})"
            )
        return AnnotatedImages(path)
    if suffix and not path.is_dir():
        raise InputError(
            f"--save {path}: cannot tell what to write from {suffix!r}; give a video ({', '.join(_FOURCC)}), "
            f"an image ({', '.join(IMAGE_SUFFIXES)}) or a folder"
        )
    return AnnotatedImages(path)


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
    video: AnnotatedVideo | AnnotatedImages | None = None,
) -> Iterator[StreamResult]:
    """Yield each result after drawing its overlay into `video` and `window`.

    Ends when the stream does or the user closes the window; always closes both outputs.
    """
    try:
        for item in stream:
            keep_going = True
            if window or video:
                annotated = draw_overlay(
                    item.frame.image,
                    item.result,
                    item.fps,
                    threshold,
                    stream.model.task,
                    stream.model.labels,
                    counter=stream.counter,
                )
                if video:
                    video.write(
                        annotated,
                        fps_hint=getattr(stream.source, "fps", 0.0),
                        position=item.frame.position,
                        beside=stream.model.task.side_images(item.result),
                    )
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
