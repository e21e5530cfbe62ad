"""File sources: image files, folders and globs, video files, and numpy frames, each delivered in order."""

from __future__ import annotations

import glob
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from runtimes.errors import InputError, SourceError
from runtimes.preprocess import read_image
from runtimes.sources.base import Frame, Source, frame_problem

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


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
            yield Frame(image, time.monotonic(), path.name, str(path))


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
                yield Frame(image, time.monotonic(), index, self.shown)
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
            yield Frame(image, time.monotonic(), index, self.shown)


def folder_files(spec: str | Path) -> list[Path]:
    """The image files of a folder or a glob, sorted by name."""
    text = str(spec)
    paths = (
        [Path(p) for p in sorted(glob.glob(text))] if any(c in text for c in "*?[") else sorted(Path(spec).iterdir())
    )
    return [p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def open_image_file(spec: Any) -> Source:
    """One image file, as a source of one frame."""
    path = Path(spec)
    if not path.is_file():
        raise SourceError(f"image file not found: {path}")
    return FileSource(str(spec), [path])


def open_image_folder(spec: Any) -> Source:
    """Every image in a folder or matching a glob, in name order."""
    files = folder_files(spec)
    if not files:
        raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {spec}")
    return FileSource(str(spec), files)


def open_video_file(spec: Any) -> Source:
    """Every frame of a video file."""
    if not Path(spec).is_file():
        raise SourceError(f"video file not found: {spec}")
    return VideoSource(str(spec), Path(spec))
