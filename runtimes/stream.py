"""Streaming inference: one model over a source, with latency, frame age and a rolling FPS meter."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

from runtimes.errors import InferenceError, InputError
from runtimes.sources import Frame, Source
from runtimes.tasks import Decoder
from runtimes.tasks.classification import Classification
from runtimes.tracking import LineCounter, LineCounts, Tracker
from runtimes.vocabulary import renamed_options


class Predictor(Protocol):
    """What a stream needs of a model (`runtimes.model.Model` is one): its decoder and predict()."""

    decoder: Decoder

    def predict(self, image: Any, color: str = "rgb", top_k: int | None = None, **options: Any) -> Any: ...


class RateMeter:
    """Frames per second and mean latency over the last `window` frames."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)

    def tick(self, latency_ms: float, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)
        self._latencies.append(latency_ms)

    @property
    def fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] == self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    @property
    def latency_ms(self) -> float:
        return sum(self._latencies) / len(self._latencies) if self._latencies else 0.0


@dataclass(frozen=True)
class StreamResult:
    """One frame of a stream with the model's answer and what it cost.

    Attributes:
        frame: The frame the answer is for.
        result: The task's result: a Classification, or Detections for a detector.
        latency_ms: Preprocessing and inference for this frame, in milliseconds.
        age_ms: How old the frame was when inference started, in milliseconds.
        fps: The stream's rolling throughput, frames per second.
        counts: Objects that crossed the counting line so far (count_line streams), else None.
    """

    frame: Frame
    result: Any  # the task's result: a Classification, or Detections for a detector
    latency_ms: float  # preprocessing + inference for this frame
    age_ms: float  # how old the frame was when inference started
    fps: float  # rolling throughput of the stream
    counts: LineCounts | None = None  # objects that crossed the counting line so far (count_line streams)

    @property
    def classification(self) -> Classification:
        """The result of a classifier (the name streams have had since the start)."""
        return self.result


class Stream:
    """Iterate for results; leaving a `with` block (or finishing, or an exception, or Ctrl-C) releases the source."""

    def __init__(
        self,
        model: Predictor,
        source: Source,
        every: int = 1,
        max_frames: int | None = None,
        top_k: int | None = None,
        tracker: Tracker | None = None,
        counter: LineCounter | None = None,
        **options: Any,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        self.model, self.source, self.every, self.max_frames, self.top_k = model, source, every, max_frames, top_k
        self.options = options  # the task's predict() options (a detector's thresholds)
        self.tracker, self.counter = tracker, counter
        self.meter = RateMeter()
        self._predict_options = renamed_options(options, warn=False)
        self._threshold = 0.0
        if tracker is not None:  # tracks also continue on weaker detections (ByteTrack's second pass): ask for them
            self._threshold = model.decoder.options(self._predict_options).threshold
            low = min(tracker.options.low_score, self._threshold)
            self._predict_options = {**self._predict_options, "threshold": low}

    def __iter__(self) -> Iterator[StreamResult]:
        produced = 0
        try:
            for index, frame in enumerate(self.source):
                if index % self.every:
                    continue
                started = time.monotonic()
                try:
                    result = self.model.predict(frame.image, color="bgr", top_k=self.top_k, **self._predict_options)
                except (InputError, InferenceError) as exc:  # one broken frame is counted, not fatal
                    self.source._skip(f"frame {frame.position}", str(exc))
                    continue
                counts = None
                if self.tracker is not None:
                    result = self.tracker.update(result, self._threshold)
                    counts = self.counter.update(result) if self.counter is not None else None
                latency_ms = (time.monotonic() - started) * 1000
                self.meter.tick(latency_ms)
                yield StreamResult(
                    frame, result, latency_ms, (started - frame.timestamp) * 1000, self.meter.fps, counts
                )
                produced += 1
                if self.max_frames is not None and produced >= self.max_frames:
                    return
        finally:
            self.close()

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
