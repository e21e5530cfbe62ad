"""Keypoints on the device: objects with named points (faces and their landmarks, poses), drawn with their
skeleton, and as JSON.

The contract's ``head`` (`runtimes.heads.keypoints`) names the points and says how the outputs decode; today's
layouts are an SSD-anchor detector with keypoints (`runtimes.tasks.ssd_anchors`, MediaPipe's BlazeFace family)
and edgekit's keypoint detector's raw maps (`runtimes.tasks.keypoint_maps`).
Boxes and points come back in the source image's pixels through the contract's resize (`runtimes.preprocess`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Sequence

import cv2
import numpy as np

from runtimes.boxes import nms
from runtimes.errors import ContractError, InferenceError, InputError
from runtimes.heads.keypoints import MAPS_ROLES, KeypointHead, output_roles
from runtimes.preprocess import box_mapping
from runtimes.quantization import dequantize
from runtimes.tasks.binding import ModelInfo, where
from runtimes.tasks.detection import BoxedObjects, draw_detections
from runtimes.tasks.keypoint_maps import DecodedKeypoints, decode_keypoint_maps, per_image
from runtimes.tasks.ssd_anchors import decode_ssd, ssd_anchors, weighted_nms
from runtimes.vocabulary import predict_terms, renamed_options


@dataclass(frozen=True)
class Keypoint:
    """One named point of an object, in the source image's pixels.

    Attributes:
        name: The point's name (the contract's keypoint_names).
        x: Horizontal position in the source image's pixels.
        y: Vertical position in the source image's pixels.
        score: The point's own confidence or visibility, or None where the model gives none.
    """

    name: str
    x: float
    y: float
    score: float | None = None


@dataclass(frozen=True)
class KeypointObject:
    """One object with its points: label, class index, score, box (x0, y0, x1, y1) and keypoints, in the source
    image's pixels.

    Attributes:
        label: The object's class name.
        index: The object's class index.
        score: The model's confidence, 0..1.
        box: (x0, y0, x1, y1) in the source image's pixels.
        keypoints: The object's points, in the contract's order.
        track_id: The object's id across a stream's frames, or None when not tracked.
    """

    label: str
    index: int
    score: float
    box: tuple[float, float, float, float]
    keypoints: tuple[Keypoint, ...]
    track_id: int | None = None

    def point(self, name: str) -> Keypoint:
        """The keypoint called `name` (KeyError names the points there are)."""
        for keypoint in self.keypoints:
            if keypoint.name == name:
                return keypoint
        raise KeyError(f"no keypoint {name!r}; this object has {[k.name for k in self.keypoints]}")

    def __str__(self) -> str:
        x0, y0, x1, y1 = self.box
        where = f"({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})"
        tag = f"#{self.track_id} " if self.track_id is not None else ""
        return f"{tag}{self.label} {self.score:.2f} at {where}, {len(self.keypoints)} points"


@dataclass(frozen=True)
class KeypointObjects(BoxedObjects, Sequence[KeypointObject]):
    """Every object found in one image, best first, with its points, plus what it cost.

    Attributes:
        objects: The objects, best score first.
        latency_ms: The model's inference alone, in milliseconds.
        preprocess_ms: Decoding, resizing and normalizing the image, in milliseconds.
        image_size: (height, width) of the image the boxes and points refer to.
        skeleton: The contract's pairs of point indices joined when drawn.
    """

    objects: tuple[KeypointObject, ...]
    latency_ms: float
    preprocess_ms: float
    image_size: tuple[int, int]
    skeleton: tuple[tuple[int, int], ...] = ()

    ITEMS = "objects"

    @property
    def points(self) -> np.ndarray:
        """(objects, K, 2) x y of every point, source pixels."""
        count = len(self.objects[0].keypoints) if self.objects else 0
        return np.array([[(k.x, k.y) for k in o.keypoints] for o in self.objects], np.float32).reshape(-1, count, 2)

    def __str__(self) -> str:
        return f"{len(self)} object(s)" + "".join(f"\n  {o}" for o in self.objects)


@dataclass(frozen=True)
class KeypointOptions:
    """A keypoint model's per-call options, the contract's defaults filled in."""

    threshold: float
    iou: float
    max_detections: int


class KeypointDecoder:
    """One keypoint model's decoding, made when the model loads: its head, output roles, anchors (ssd layout) and
    default options."""

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        if model.head is None:
            raise ContractError(f"{model.name} is a keypoints model without a head: give its contract when loading")
        self.head = KeypointHead.from_dict(model.head)
        self.defaults = KeypointOptions(self.head.score_threshold, self.head.iou_threshold, self.head.max_detections)
        self.anchors = np.zeros((0, 4), np.float32)
        if self.head.layout == "ssd":
            self.decoding = self.head.decoding()
            assert self.decoding.anchors is not None  # KeypointHead checks it
            self.anchors = ssd_anchors(self.decoding.anchors)
        self.roles = output_roles(model.output_specs, self.head)
        self.quantized = {
            role: model.output_specs[i] for role, i in (self.roles or {}).items() if model.output_specs[i].quantization
        }
        self.problem = self._problem()

    def _problem(self) -> str | None:
        specs = self.model.output_specs
        outputs = ", ".join(f"{spec.name} {list(spec.shape)}" for spec in specs)
        if self.roles is None:
            count = len(self.head.keypoint_names)
            expected = (
                f"raw boxes (1, N, {self.decoding.num_coords}) and raw scores (1, N, classes)"
                if self.head.layout == "ssd"
                else f"heat (1, Gh, Gw, classes), box sides (..., 4), offsets (..., {2 * count}) and "
                f"visibilities (..., {count}) maps"
            )
            layout = self.head.layout
            return f"{self.model.name}'s outputs ({outputs}) are not {expected}, as its contract's {layout} layout says"
        if self.head.layout == "ssd" and specs[self.roles["boxes"]].shape[1] != len(self.anchors):
            count = specs[self.roles["boxes"]].shape[1]
            return f"{self.model.name} has {count} boxes but its contract's anchors make {len(self.anchors)}"
        return None

    def options(self, options: dict[str, Any]) -> KeypointOptions:
        if not options:
            return self.defaults
        options = renamed_options(options)
        unknown = set(options).difference(predict_terms("keypoints"))
        if unknown:
            raise InputError(
                f"unknown option(s) {sorted(unknown)} for a keypoint model; valid: "
                f"{', '.join(sorted(predict_terms('keypoints')))}"
            )
        chosen = {**vars(self.defaults), **{key: value for key, value in options.items() if value is not None}}
        try:
            replace(
                self.head,
                score_threshold=chosen["threshold"],
                iou_threshold=chosen["iou"],
                max_detections=chosen["max_detections"],
            )
        except ContractError as exc:
            raise InputError(str(exc)) from None
        return KeypointOptions(float(chosen["threshold"]), float(chosen["iou"]), int(chosen["max_detections"]))

    def _read(self, outputs: list[np.ndarray], role: str) -> np.ndarray:
        """One output as float: a quantized file's raw integers dequantized (run_all gives them raw)."""
        array, spec = np.asarray(outputs[self.roles[role]]), self.quantized.get(role)  # type: ignore[index]
        return dequantize(array, spec) if spec is not None and array.dtype.kind in "iu" else array

    def candidates(self, outputs: list[np.ndarray], max_detections: int) -> list[DecodedKeypoints]:
        """Per image, every candidate object before thresholds and NMS (normalized to the input); the maps layout's
        peaks are its top `max_detections` cells."""
        if self.head.layout == "maps":
            return per_image(decode_keypoint_maps(*(self._read(outputs, role) for role in MAPS_ROLES), max_detections))
        raw_boxes, raw_scores = self._read(outputs, "boxes"), self._read(outputs, "scores")
        found = []
        for i in range(len(raw_boxes)):
            boxes, points, scores, classes = decode_ssd(raw_boxes[i], raw_scores[i], self.anchors, self.decoding)
            found.append(
                DecodedKeypoints(boxes, scores, classes, points, np.full(points.shape[:2], np.nan, np.float32))
            )
        return found

    def chosen(self, found: DecodedKeypoints, options: KeypointOptions) -> DecodedKeypoints:
        """One image's candidates over the threshold, after the head's NMS, best first."""
        kept = found.scores >= options.threshold
        boxes, scores, points = found.boxes[kept], found.scores[kept], found.points[kept]
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all() and np.isfinite(points).all()):
            raise InferenceError(
                f"{self.model.name} produced non-finite boxes, scores or points; its weights are probably damaged: "
                "check the file's SHA-256 (edgekit info) and copy or export it again"
            )
        return select_objects(found, self.head.nms, options)

    def results(
        self,
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: KeypointOptions,
    ) -> list[KeypointObjects]:
        if self.problem is not None:
            raise InputError(self.problem)
        spec = self.model.require_preprocessing()
        results = []
        for found, size in zip(self.candidates(outputs, options.max_detections), sizes):
            size = (int(size[0]), int(size[1]))
            kept = self.chosen(found, options)
            mapping = box_mapping(size, spec)
            source_boxes = mapping.normalized_to_source(spec.input_size, size)(kept.boxes)
            source_points = mapping.points_to_source(kept.points, spec.input_size)
            objects = self._objects(source_boxes, source_points, kept.point_scores, kept.scores, kept.classes)
            results.append(KeypointObjects(objects, latency_ms, preprocess_ms, size, self.head.skeleton))
        return results

    def _objects(
        self, boxes: np.ndarray, points: np.ndarray, seen: np.ndarray, scores: np.ndarray, classes: np.ndarray
    ) -> tuple[KeypointObject, ...]:
        labels, names = self.model.labels, self.head.keypoint_names
        return tuple(
            KeypointObject(
                labels[k] if 0 <= k < len(labels) else str(k),
                int(k),
                float(score),
                tuple(box),
                tuple(
                    Keypoint(name, float(x), float(y), None if np.isnan(v) else float(v))
                    for name, (x, y), v in zip(names, object_points, object_seen)
                ),
            )
            for box, object_points, object_seen, score, k in zip(
                boxes.tolist(), points.tolist(), seen.tolist(), scores, classes
            )
        )


def select_objects(found: DecodedKeypoints, nms_kind: str, options: KeypointOptions) -> DecodedKeypoints:
    """One image's candidates scoring at least the threshold, after `nms_kind` NMS ("weighted": MediaPipe's, a
    cluster averaged by score; "plain": class-aware greedy), at most max_detections, best first."""
    kept = np.flatnonzero(found.scores >= options.threshold)
    boxes, scores, classes, points, seen = (part[kept] for part in astuple_shallow(found))
    if nms_kind == "weighted":
        boxes, points, scores = weighted_nms(boxes, points, scores, options.iou, options.max_detections)
        return DecodedKeypoints(boxes, scores, np.zeros(len(scores), np.int64), points, seen[: len(scores)])
    keep = nms(boxes, scores, classes, options.iou)[: options.max_detections]
    return DecodedKeypoints(boxes[keep], scores[keep], classes[keep], points[keep], seen[keep])


def astuple_shallow(found: DecodedKeypoints) -> tuple[np.ndarray, ...]:
    """The arrays of `found`, in field order (dataclasses.astuple would copy them)."""
    return tuple(getattr(found, f.name) for f in fields(found))


def draw_keypoints(image: np.ndarray, result: KeypointObjects) -> None:
    """Each object's skeleton and points on the BGR `image`, in place; sizes follow the frame."""
    side = min(image.shape[:2])
    thickness, radius = max(1, round(side / 320)), max(2, round(side / 160))
    for object_points in result.points:
        for a, b in result.skeleton:
            start, end = (tuple(int(round(v)) for v in object_points[i]) for i in (a, b))
            cv2.line(image, start, end, (255, 200, 0), thickness, cv2.LINE_AA)
        for x, y in object_points:
            cv2.circle(image, (int(round(x)), int(round(y))), radius, (0, 0, 255), -1, cv2.LINE_AA)


class KeypointsTask:
    """The keypoints task's device side: binds a model to a `KeypointDecoder`; draws, prints and serves results."""

    name = "keypoints"
    role = "keypoint model"
    record_help = (
        "source (and frame) and its objects (label, class index, score, box x0,y0,x1,y1 and each keypoint's name, "
        "x, y in the source's pixels), latency and frame age"
    )
    trackable = True  # boxes a tracker follows; each object keeps its points
    command_line_defaults: dict[str, Any] = {}

    def bind(self, model: ModelInfo) -> KeypointDecoder:
        return KeypointDecoder(model)

    def serving_prediction(
        self, result: KeypointObjects, labels: Sequence[str], head: dict[str, Any]
    ) -> dict[str, Any]:
        """The SavedModel serving signature's answer: padded to max_detections with zeros past `count`."""
        parsed = KeypointHead.from_dict(head)
        size, count = max(parsed.max_detections, len(result)), len(parsed.keypoint_names)
        pad = size - len(result)
        return {
            "boxes": [[round(v, 3) for v in o.box] for o in result] + [[0.0] * 4] * pad,
            "scores": [round(o.score, 6) for o in result] + [0.0] * pad,
            "classes": [o.index for o in result] + [0] * pad,
            "labels": [o.label for o in result] + [labels[0] if labels else ""] * pad,
            "keypoints": [[[round(k.x, 3), round(k.y, 3)] for k in o.keypoints] for o in result]
            + [[[0.0, 0.0]] * count] * pad,
            "keypoint_scores": [[round(k.score or 0.0, 6) for k in o.keypoints] for o in result]
            + [[0.0] * count] * pad,
            "count": len(result),
        }

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        return {}

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        parsed = KeypointHead.from_dict(head)
        k, count = parsed.max_detections, len(parsed.keypoint_names)
        return {
            "boxes": ("DT_FLOAT", [-1, k, 4]),
            "scores": ("DT_FLOAT", [-1, k]),
            "classes": ("DT_INT32", [-1, k]),
            "labels": ("DT_STRING", [-1, k]),
            "keypoints": ("DT_FLOAT", [-1, k, count, 2]),
            "keypoint_scores": ("DT_FLOAT", [-1, k, count]),
            "count": ("DT_INT32", [-1]),
        }

    def side_images(self, result: Any) -> dict[str, np.ndarray]:
        return {}

    def draw(self, image: np.ndarray, result: KeypointObjects, labels: Sequence[str]) -> None:
        draw_detections(image, result.boxes, labels, result.scores, result.classes, track_ids=result.track_ids)
        draw_keypoints(image, result)

    def lines(self, result: KeypointObjects, threshold: float = 0.0) -> list[str]:
        return [f"{len(result)} object(s)"]

    def occupied(self, result: KeypointObjects) -> np.ndarray:
        return result.boxes

    def summary(self, result: KeypointObjects) -> dict[str, Any]:
        return {
            "objects": [
                {
                    "label": o.label,
                    "index": o.index,
                    "score": round(o.score, 6),
                    "box": [round(v, 3) for v in o.box],
                    **({"id": o.track_id} if o.track_id is not None else {}),
                    "keypoints": [
                        {"name": k.name, "x": round(k.x, 3), "y": round(k.y, 3)}
                        | ({"score": round(k.score, 6)} if k.score is not None else {})
                        for k in o.keypoints
                    ],
                }
                for o in result
            ]
        }

    def record(
        self, origin: dict[str, Any], result: KeypointObjects, threshold: float | None, **extra: float
    ) -> dict[str, Any]:
        return {**origin, **self.summary(result), **{key: round(value, 3) for key, value in extra.items()}}

    def line(self, record: dict[str, Any]) -> str:
        def one(o: dict[str, Any]) -> str:
            tag = f"#{o['id']} " if o.get("id") is not None else ""
            box = ", ".join(f"{v:.1f}" for v in o["box"])
            return f"{tag}{o['label']} {o['score']:.3f} [{box}] {len(o['keypoints'])} points"

        found = "; ".join(one(o) for o in record["objects"])
        timing = "".join(f"  {key}={record[key]:.1f}" for key in ("latency_ms", "age_ms") if key in record)
        return f"{where(record)}: {len(record['objects'])} object(s)" + (f": {found}" if found else "") + timing
