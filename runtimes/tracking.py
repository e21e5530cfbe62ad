"""Object tracking and line counting for detector streams: numpy only, so it runs on the Pi.

The tracker is IoU association with constant-velocity motion, in the spirit of SORT
(Bewley et al., 2016) with two simplifications that suit small edge models: each track's
velocity is a smoothed per-frame box delta instead of a Kalman filter's state, and
detections are matched greedily by IoU against the predicted boxes (best pair first)
instead of by the Hungarian algorithm, which gives the same pairs whenever objects do not
compete for one box. Like ByteTrack, a second pass gives tracks that found no confident
detection a chance at the low-score ones, so an object that dims for a frame keeps its id;
a low-score detection must overlap more (`low_iou`), and confirmed tracks choose before
tentative ones, so a new track never takes a detection from an established one.

A track gets its id once it has been seen `min_hits` times in a row (a one-frame false
positive never gets one) and is dropped after `max_age` frames without a match; ids count
up from 1 in order of confirmation and are never reused.

Association ignores the class by default, as Ultralytics' BYTETracker does: a small model's
class for one object can flicker between frames, and the object must keep its id. A track's
label is the one most of its detections had (ties: the latest). Two detections of one object
under different classes (class-aware NMS keeps both) would otherwise start a second track:
a detection that overlaps an already matched one by `duplicate_iou` is dropped as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from runtimes.boxes import box_iou
from runtimes.boxes import passes as score_passes
from runtimes.errors import InputError

if TYPE_CHECKING:
    from runtimes.tasks.detection import Detection, Detections


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    return box_iou(a, b)


@dataclass(frozen=True)
class TrackerOptions:
    """How tracks are matched, confirmed and dropped."""

    iou_threshold: float = 0.2  # a detection continues a track when it overlaps the track's predicted box this much
    min_hits: int = 2  # frames seen in a row before a track gets an id
    max_age: int = 15  # frames a track survives without a match (occlusion, a missed detection)
    low_score: float = 0.1  # second-pass detections: at least this score, for tracks the confident pass left unmatched
    low_iou: float = 0.5  # ... and they continue a track only with this much overlap (ByteTrack's second association)
    class_aware: bool = False  # True: a track keeps its class (a circle never continues a square's track)
    duplicate_iou: float = (
        0.5  # a detection overlapping an already matched one this much is the same object (NMS's IoU)
    )
    smoothing: float = 0.5  # weight of the newest box delta in the velocity estimate

    def __post_init__(self) -> None:
        if (
            not 0 < self.iou_threshold < 1
            or not 0 < self.low_iou < 1
            or self.min_hits < 1
            or self.max_age < 0
            or not 0 < self.smoothing <= 1
            or not 0 < self.duplicate_iou <= 1
        ):
            raise InputError(
                f"invalid tracker options {self}: iou_threshold and low_iou in (0, 1), min_hits >= 1, max_age >= 0, "
                "smoothing and duplicate_iou in (0, 1]"
            )


@dataclass
class _Track:
    box: np.ndarray  # x0, y0, x1, y1 in source pixels: the last matched box
    index: int  # class index
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # box delta per frame
    hits: int = 1
    missed: int = 0
    id: int | None = None  # set once confirmed
    votes: dict[int, int] = field(default_factory=dict)  # class index -> matched detections of it

    def vote(self, index: int) -> None:
        """Count one more detection of class `index`; the track's class is the most frequent (ties: the latest)."""
        self.votes[index] = self.votes.get(index, 0) + 1
        if self.votes[index] >= self.votes.get(self.index, 0):
            self.index = index

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity * (self.missed + 1)


class Tracker:
    """Give each detected object an id that persists across the frames of one stream.

    Examples:
        >>> tracker = Tracker()
        >>> for r in model.stream("clip.mp4"):
        ...     for d in tracker.update(r.result):
        ...         print(d.track_id, d.label, d.box)
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._names: dict[int, str] = {}  # class index -> label, as detections have named them

    @property
    def confirmed(self) -> int:
        """Ids given out so far: every object that has been tracked in this stream."""
        return self._next_id - 1

    @property
    def active(self) -> int:
        """Confirmed tracks alive now (seen within `max_age` frames)."""
        return sum(t.id is not None for t in self._tracks)

    def update(self, detections: "Detections", score_threshold: float = 0.0) -> "Detections":
        """This frame's detections with `track_id` set on those that belong to a confirmed track.

        Detections scoring below `score_threshold` (at least `low_score`) only extend existing tracks
        and are returned only when they did; the others are returned unchanged, with an id or None.
        """
        o = self.options
        found = list(detections)
        boxes = np.array([d.box for d in found], np.float32).reshape(-1, 4)
        scores = np.array([d.score for d in found], np.float32)
        confident = [i for i in range(len(found)) if score_passes(scores[i], score_threshold)]
        weak = [
            i
            for i in range(len(found))
            if score_passes(scores[i], o.low_score) and not score_passes(scores[i], score_threshold)
        ]
        matched: dict[int, _Track] = {}  # detection index -> its track
        confirmed = [t for t in self._tracks if t.id is not None]
        tentative = [t for t in self._tracks if t.id is None]
        unmatched: list[_Track] = []
        # confirmed tracks first (confident, then weak detections), then tentative ones on what is left
        for tracks, passes in (
            (confirmed, ((confident, o.iou_threshold), (weak, o.low_iou))),
            (tentative, ((confident, o.iou_threshold),)),
        ):
            free = list(tracks)
            for candidates, threshold in passes:
                candidates = [c for c in candidates if c not in matched]
                pairs = self._match(free, candidates, boxes, found, threshold)
                for track_index, det_index in pairs:
                    matched[det_index] = free[track_index]
                taken = {t for t, _ in pairs}
                free = [t for i, t in enumerate(free) if i not in taken]
            unmatched.extend(free)
        free = unmatched
        for det_index, track in matched.items():
            self._continue(track, boxes[det_index], found[det_index].index)
        for track in free:
            track.missed += 1
        taken = [boxes[i] for i in matched]
        for det_index in confident:
            if det_index in matched:
                continue
            if taken and _iou(boxes[det_index][None], np.stack(taken)).max() >= o.duplicate_iou:
                continue  # the same object again under another class: not a new track
            track = _Track(boxes[det_index].copy(), found[det_index].index)
            track.vote(track.index)
            self._tracks.append(track)
            matched[det_index] = track
            taken.append(boxes[det_index])
            self._confirm(track)
        self._tracks = [t for t in self._tracks if t.missed <= o.max_age]
        self._names.update((d.index, d.label) for d in found)
        kept = [self._tracked(d, matched[i]) for i, d in enumerate(found) if i in matched]
        kept.sort(key=lambda d: -d.score)
        return detections.with_objects(kept)

    def _tracked(self, detection: "Detection", track: _Track) -> "Detection":
        """`detection` with its track's id and, for a confirmed track, the track's voted class."""
        if track.id is None or track.index == detection.index or track.index not in self._names:
            return replace(detection, track_id=track.id)
        return replace(detection, track_id=track.id, index=track.index, label=self._names[track.index])

    def _match(
        self,
        tracks: Sequence[_Track],
        candidates: Sequence[int],
        boxes: np.ndarray,
        found: Sequence["Detection"],
        threshold: float,
    ) -> list[tuple[int, int]]:
        """Greedy IoU pairs (track index, detection index), best overlap first."""
        if not tracks or not candidates:
            return []
        predicted = np.stack([t.predicted() for t in tracks])
        ious = _iou(predicted, boxes[list(candidates)])
        if self.options.class_aware:
            same = np.array([[t.index == found[c].index for c in candidates] for t in tracks])
            ious = np.where(same, ious, 0.0)
        pairs: list[tuple[int, int]] = []
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        order = np.argsort(-ious, axis=None, kind="stable")
        for flat in order:
            t, c = divmod(int(flat), len(candidates))
            if ious[t, c] < threshold:
                break
            if t in used_tracks or c in used_dets:
                continue
            used_tracks.add(t)
            used_dets.add(c)
            pairs.append((t, candidates[c]))
        return pairs

    def _continue(self, track: _Track, box: np.ndarray, index: int) -> None:
        step = (box - track.box) / (track.missed + 1)
        a = self.options.smoothing
        track.velocity = step if track.hits == 1 else a * step + (1 - a) * track.velocity
        track.box = box.copy()
        track.missed = 0
        track.hits += 1
        track.vote(index)
        self._confirm(track)

    def _confirm(self, track: _Track) -> None:
        if track.id is None and track.hits >= self.options.min_hits:
            track.id = self._next_id
            self._next_id += 1


# -- counting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineCounts:
    """Objects that crossed the counting line so far. "in" is crossing to the line's right-hand side, walking from
    its first point (x0, y0) to its second (x1, y1) with image y pointing down: for a vertical line drawn top to
    bottom, right to left is "in"; for a horizontal line drawn left to right, downwards is "in". The overlay draws an
    arrow pointing "in". `by_label` holds (label, in, out) per label."""

    inward: int = 0
    outward: int = 0
    by_label: tuple[tuple[str, int, int], ...] = ()

    @property
    def total(self) -> int:
        return self.inward + self.outward

    def to_dict(self) -> dict[str, object]:
        per_label = {label: {"in": i, "out": o, "total": i + o} for label, i, o in self.by_label}
        return {"in": self.inward, "out": self.outward, "total": self.total, "by_label": per_label}

    def __str__(self) -> str:
        return f"crossed: {self.total} (in {self.inward}, out {self.outward})"


def parse_line(text: str) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' in source pixels -> a line; InputError names the expected form."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)) or values[:2] == values[2:]:
        raise InputError(f"invalid counting line {text!r}: give x0,y0,x1,y1 in source pixels, two different points")
    return values  # type: ignore[return-value]


class LineCounter:
    """Count tracked objects whose box centre crosses a line segment; each track counts once.

    A track counts on the frame its centre's path (from its previous position) cuts the
    segment. Counting each track once keeps an object that jitters on the line from counting
    again, as Ultralytics' and Frigate's counters do.
    """

    def __init__(self, line: Sequence[float]) -> None:
        if isinstance(line, str):
            line = parse_line(line)
        if len(line) != 4:
            raise InputError(f"a counting line is x0, y0, x1, y1; got {line!r}")
        self.line = tuple(float(v) for v in line)
        self._last: dict[int, np.ndarray] = {}  # track id -> its last centre off the line
        self._counted: dict[int, tuple[str, str]] = {}  # track id -> (direction, label)

    def update(self, detections: "Detections") -> LineCounts:
        x0, y0, x1, y1 = self.line
        a, b = np.array([x0, y0]), np.array([x1, y1])
        for d in detections:
            if d.track_id is None:
                continue
            centre = np.array([(d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2])
            after = _side(a, b, centre)
            if after == 0:  # on the line: not across it yet
                continue
            previous = self._last.get(d.track_id)
            self._last[d.track_id] = centre
            if previous is None or d.track_id in self._counted:
                continue
            if _side(a, b, previous) != after and _side(previous, centre, a) != _side(previous, centre, b):
                self._counted[d.track_id] = ("in" if after > 0 else "out", d.label)
        return self.counts

    @property
    def counts(self) -> LineCounts:
        directions = [direction for direction, _ in self._counted.values()]
        labels: dict[str, list[int]] = {}
        for direction, label in self._counted.values():
            labels.setdefault(label, [0, 0])[0 if direction == "in" else 1] += 1
        per_label = tuple((label, i, o) for label, (i, o) in sorted(labels.items()))
        return LineCounts(directions.count("in"), directions.count("out"), per_label)

    def in_arrow(self, length: float) -> tuple[np.ndarray, np.ndarray]:
        """(tail, head) of an arrow `length` pixels long from the line's middle towards its "in" side."""
        x0, y0, x1, y1 = self.line
        middle = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        return middle, middle + in_direction(self.line) * length

    def draw(self, image: np.ndarray) -> None:
        """The line and an arrow pointing to its "in" side, on the BGR `image` in place (the counts go in the
        overlay's banner: `runtimes.display.draw_overlay`)."""
        import cv2

        side = min(image.shape[:2])
        thickness = max(1, round(side / 200))
        x0, y0, x1, y1 = (int(round(v)) for v in self.line)
        cv2.line(image, (x0, y0), (x1, y1), (0, 255, 255), thickness, cv2.LINE_AA)
        tail, head = self.in_arrow(max(12.0, side / 8))
        cv2.arrowedLine(
            image,
            tuple(int(round(v)) for v in tail),
            tuple(int(round(v)) for v in head),
            (0, 255, 255),
            thickness,
            cv2.LINE_AA,
            tipLength=0.35,
        )
        cv2.putText(
            image,
            "in",
            (int(round(head[0])) + 3, int(round(head[1])) + 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            max(0.35, side / 900),
            (0, 255, 255),
            max(1, thickness // 2),
            cv2.LINE_AA,
        )


def in_direction(line: Sequence[float]) -> np.ndarray:
    """The unit vector from a counting line towards its "in" side (its right-hand side, image y down)."""
    x0, y0, x1, y1 = line
    normal = np.array([-(y1 - y0), x1 - x0], np.float64)  # (dx, dy) turned a quarter clockwise on screen
    return normal / np.linalg.norm(normal)


def _side(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> int:
    """+1 when p is right of a->b (image coordinates, y down), -1 left, 0 on the line."""
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    return int(np.sign(cross))
