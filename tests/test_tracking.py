"""Tracking and line counting: the tracker on synthetic detections with known paths (misses, crossings,
false positives), then end to end on a generated video through a trained detector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtimes.errors import InputError
from runtimes.tasks.detection import Detection, Detections
from runtimes.tracking import LineCounter, Tracker, TrackerOptions, parse_line


def _frame(objects: list[tuple[str, int, float, tuple[float, float, float, float]]]) -> Detections:
    return Detections(tuple(Detection(label, index, score, box) for label, index, score, box in objects), 1.0, 0.1, (200, 300))


def _box(cx: float, cy: float, side: float = 30.0) -> tuple[float, float, float, float]:
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def test_ids_persist_through_motion_misses_and_a_crossing():
    """Two squares pass each other in neighbouring lanes at 12 px per frame (IoU of consecutive boxes 0.43),
    one is missed for three frames; a one-frame false positive never gets an id."""
    tracker = Tracker(TrackerOptions(min_hits=2, max_age=5))
    seen: dict[str, set] = {"a": set(), "b": set()}
    for f in range(25):
        objects = []
        if not 10 <= f <= 12:  # a missed for three frames
            objects.append(("square", 1, 0.9, _box(20 + 12 * f, 80)))
        objects.append(("square", 1, 0.8, _box(280 - 12 * f, 112)))
        if f == 7:
            objects.append(("square", 1, 0.7, _box(150, 180)))  # a one-frame false positive
        result = tracker.update(_frame(objects), score_threshold=0.3)
        for d in result:
            lane = "a" if abs((d.box[1] + d.box[3]) / 2 - 80) < 5 else "b" if abs((d.box[1] + d.box[3]) / 2 - 112) < 5 else "fp"
            if f == 0:
                assert d.track_id is None  # not confirmed yet
            elif lane != "fp":
                seen[lane].add(d.track_id)
            else:
                assert d.track_id is None
    assert seen == {"a": {1}, "b": {2}}
    assert tracker.active == 2


def test_a_weak_detection_continues_a_track_but_never_starts_one():
    tracker = Tracker(TrackerOptions(low_score=0.1))
    for f in range(3):
        result = tracker.update(_frame([("circle", 0, 0.9, _box(50 + 5 * f, 50))]), score_threshold=0.5)
    assert result.track_ids == [1]
    dim = tracker.update(_frame([("circle", 0, 0.2, _box(65, 50)), ("circle", 0, 0.2, _box(200, 150))]), score_threshold=0.5)
    assert [(d.track_id, d.box[0]) for d in dim] == [(1, 50.0)]  # the stray weak one is dropped, not a new track


def test_classes_keep_their_tracks():
    tracker = Tracker()
    for _ in range(3):
        tracker.update(_frame([("circle", 0, 0.9, _box(50, 50))]))
    swapped = tracker.update(_frame([("square", 1, 0.9, _box(50, 50))]))
    assert swapped.track_ids == [None]  # same place, other class: a new (unconfirmed) track
    assert Tracker(TrackerOptions(class_aware=False)).update(_frame([])).detections == ()


def test_line_counter_counts_each_crossing_track_once_with_its_direction():
    counter = LineCounter((150, 0, 150, 200))  # drawn top to bottom: "in" is the left-hand half of the frame
    frames = []
    for f in range(30):
        jitter = 150 + (3 if f % 2 else -3)  # a third object dithers on the line: it counts once
        frames.append(_frame([("circle", 0, 0.9, _box(20 + 10 * f, 40)), ("square", 1, 0.9, _box(290 - 10 * f, 100)),
                              ("triangle", 2, 0.9, _box(jitter if f > 15 else 20 + 8 * f, 160))]))
    for f, frame in enumerate(frames):
        frame = Detections(tuple(Detection(d.label, d.index, d.score, d.box, track_id=i + 1) for i, d in enumerate(frame)),
                           1.0, 0.1, (200, 300))
        counts = counter.update(frame)
    assert counts.to_dict() == {"in": 1, "out": 2, "total": 3, "by_label": {"circle": 1, "square": 1, "triangle": 1}}
    assert str(counts) == "crossed: 3 (in 1, out 2)"


@pytest.mark.parametrize("text", ["1,2,3", "1,2,x,4", "5,5,5,5", "nan,0,1,1"])
def test_a_bad_counting_line_is_a_clear_error(text):
    with pytest.raises(InputError, match="give x0,y0,x1,y1 in source pixels"):
        parse_line(text)


def test_invalid_tracker_options_are_refused():
    with pytest.raises(InputError, match="iou_threshold in"):
        TrackerOptions(iou_threshold=1.5)
