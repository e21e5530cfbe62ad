"""Tracking and line counting: the tracker on synthetic detections with known paths (misses, crossings,
false positives), then end to end on a generated video through a trained detector."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.errors import InputError
from runtimes.tasks.detection import Detection, Detections
from runtimes.tracking import LineCounter, Tracker, TrackerOptions, parse_line


def _frame(objects: list[tuple[str, int, float, tuple[float, float, float, float]]]) -> Detections:
    return Detections(
        tuple(Detection(label, index, score, box) for label, index, score, box in objects), 1.0, 0.1, (200, 300)
    )


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
            lane = (
                "a"
                if abs((d.box[1] + d.box[3]) / 2 - 80) < 5
                else "b"
                if abs((d.box[1] + d.box[3]) / 2 - 112) < 5
                else "fp"
            )
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
    dim = tracker.update(
        _frame([("circle", 0, 0.2, _box(65, 50)), ("circle", 0, 0.2, _box(200, 150))]), score_threshold=0.5
    )
    assert [(d.track_id, d.box[0]) for d in dim] == [(1, 50.0)]  # the stray weak one is dropped, not a new track


def test_a_flickering_class_keeps_its_id_and_the_voted_label():
    tracker = Tracker()
    for _ in range(3):
        tracker.update(_frame([("circle", 0, 0.9, _box(50, 50))]))
    flicker = tracker.update(_frame([("square", 1, 0.9, _box(52, 50))]))
    assert [(d.track_id, d.label, d.index) for d in flicker] == [(1, "circle", 0)]  # 3 circle votes to 1 square
    for _ in range(3):
        flipped = tracker.update(_frame([("square", 1, 0.9, _box(54, 50))]))
    assert [(d.track_id, d.label) for d in flipped] == [(1, "square")]  # the majority moved: 4 square, 3 circle


def test_class_aware_tracks_keep_their_class():
    tracker = Tracker(TrackerOptions(class_aware=True))
    for _ in range(3):
        tracker.update(_frame([("circle", 0, 0.9, _box(50, 50))]))
    swapped = tracker.update(_frame([("square", 1, 0.9, _box(50, 50))]))
    assert swapped.track_ids == [None]  # same place, other class: a new (unconfirmed) track


def test_one_object_found_under_two_classes_is_one_track():
    """Class-aware NMS keeps a circle and a square box on the same object: only the better one is tracked."""
    tracker = Tracker()
    for f in range(4):
        result = tracker.update(
            _frame(
                [
                    ("circle", 0, 0.8, _box(50 + 3 * f, 50)),
                    ("square", 1, 0.6, _box(51 + 3 * f, 50)),
                    ("square", 1, 0.7, _box(150, 150)),
                ]
            )
        )
    assert sorted(d.label for d in result) == ["circle", "square"] and sorted(result.track_ids) == [1, 2]
    assert tracker.active == 2


def test_line_counter_counts_each_crossing_track_once_with_its_direction():
    counter = LineCounter((150, 0, 150, 200))  # drawn top to bottom: "in" is the left-hand half of the frame
    frames = []
    for f in range(30):
        jitter = 150 + (3 if f % 2 else -3)  # a third object dithers on the line: it counts once
        frames.append(
            _frame(
                [
                    ("circle", 0, 0.9, _box(20 + 10 * f, 40)),
                    ("square", 1, 0.9, _box(290 - 10 * f, 100)),
                    ("triangle", 2, 0.9, _box(jitter if f > 15 else 20 + 8 * f, 160)),
                ]
            )
        )
    for frame in frames:
        frame = Detections(
            tuple(Detection(d.label, d.index, d.score, d.box, track_id=i + 1) for i, d in enumerate(frame)),
            1.0,
            0.1,
            (200, 300),
        )
        counts = counter.update(frame)
    assert counts.to_dict() == {
        "in": 1,
        "out": 2,
        "total": 3,
        "by_label": {  # the square walked right to left, into the left half: "in"; the others out
            "circle": {"in": 0, "out": 1, "total": 1},
            "square": {"in": 1, "out": 0, "total": 1},
            "triangle": {"in": 0, "out": 1, "total": 1},
        },
    }
    assert str(counts) == "crossed: 3 (in 1, out 2)"


@pytest.mark.parametrize(
    "line, inward",
    [
        ((150, 0, 150, 200), (-1, 0)),  # down the screen: "in" is to the left
        ((0, 50, 300, 50), (0, 1)),  # left to right: "in" is below
        ((300, 50, 0, 50), (0, -1)),
    ],
)
def test_the_in_side_is_the_right_hand_side_and_the_overlay_points_to_it(line, inward):
    from runtimes.tracking import in_direction

    assert np.allclose(in_direction(line), inward)
    counter = LineCounter(line)
    image = np.zeros((200, 300, 3), np.uint8)
    counter.draw(image)
    tail, head = counter.in_arrow(30)
    assert np.allclose(head - tail, np.array(inward) * 30)
    x, y = (int(round(v)) for v in tail + np.array(inward) * 22)  # along the arrow's shaft, off the line
    blue, green, red = image[y, x].tolist()
    assert blue == 0 and green == red > 150  # the arrow is drawn (antialiased), in the line's yellow
    middle = (np.array(line[:2]) + np.array(line[2:])) / 2

    def car_at(centre):
        return Detections((Detection("car", 0, 0.9, _box(*centre), track_id=1),), 1.0, 0.1, (200, 300))

    before, after = car_at(middle - np.array(inward) * 20), car_at(middle + np.array(inward) * 20)
    counter.update(before)
    assert counter.update(after).to_dict()["by_label"] == {"car": {"in": 1, "out": 0, "total": 1}}


@pytest.mark.parametrize("text", ["1,2,3", "1,2,x,4", "5,5,5,5", "nan,0,1,1"])
def test_a_bad_counting_line_is_a_clear_error(text):
    with pytest.raises(InputError, match="give x0,y0,x1,y1 in source pixels"):
        parse_line(text)


def test_invalid_tracker_options_are_refused():
    with pytest.raises(InputError, match="iou_threshold and low_iou in"):
        TrackerOptions(iou_threshold=1.5)
    with pytest.raises(InputError, match="smoothing and duplicate_iou in"):
        TrackerOptions(duplicate_iou=0.0)


# -- end to end: a trained detector on a generated video with known paths ------------------------


def _ids_per_object(results, clip, settle: int = 3) -> tuple[list[set], list[int]]:
    """For each true object: the track ids of the detections that overlap its box (IoU >= 0.3) after the first
    `settle` frames, and on how many frames it was found."""
    from runtimes.boxes import box_iou

    ids: list[set] = [set() for _ in clip.classes]
    found = [0] * len(clip.classes)
    for frame, result in enumerate(results):
        if frame < settle or not len(result):
            continue
        ious = box_iou(clip.boxes[frame], result.boxes)
        for obj in range(len(clip.classes)):
            best = int(np.argmax(ious[obj]))
            if ious[obj, best] >= 0.3:
                ids[obj].add(result[best].track_id)
                found[obj] += 1
    return ids, found


@pytest.mark.parametrize("target", ["tflite:fp32", "onnx:int8"])
def test_ids_stay_stable_and_the_count_is_exact_on_a_generated_video(detector_exported, tracking_clip, target):
    import edgekit

    clip = tracking_clip
    with edgekit.load(detector_exported.result(target).path) as model:
        with model.stream(str(clip.path), track=True, count_line=clip.count_line) as stream:
            items = list(stream)
    results = [item.result for item in items]
    assert len(results) == len(clip.boxes) == 48
    ids, found = _ids_per_object(results, clip)
    print(target, "ids per object", ids, "found on", found, "of", len(results) - 3, "frames;", items[-1].counts)
    assert all(n >= 0.8 * (len(results) - 3) for n in found)  # each object found on most frames
    assert all(len(s) == 1 and None not in s for s in ids)  # one id per object, never lost
    assert len(set.union(*ids)) == 3  # and no two objects share one
    assert items[-1].counts.to_dict()["in"] == clip.expected_counts["in"] == 1
    assert items[-1].counts.to_dict()["out"] == clip.expected_counts["out"] == 1
    assert stream.tracker.confirmed == 3  # no spurious object ever got an id
