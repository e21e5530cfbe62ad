"""Object detection on the device: a detector's outputs -> `Detections`, drawn, and as JSON and REST answers.

The contract's ``head`` (`runtimes.heads.detection`) says what the outputs are: box format and
coordinates, whether decoding and peak suppression ran in the graph, and the default score threshold,
IoU threshold and maximum detections. This module holds what does not run in the graph: reading the
outputs in either layout, the score rule, class-aware IoU NMS (`runtimes.boxes`) and mapping boxes
back to the source image (`runtimes.preprocess.BoxMapping`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, NoReturn, Sequence

import cv2
import numpy as np

from runtimes.boxes import above_threshold, suppress
from runtimes.errors import ContractError, InferenceError, InputError
from runtimes.heads.detection import DetectionHead, output_roles
from runtimes.preprocess import box_mapping
from runtimes.tasks.binding import ModelInfo, where
from runtimes.tasks.detection_outputs import OutputReader
from runtimes.vocabulary import predict_terms, renamed_options


@dataclass(frozen=True)
class Detection:
    """One object: its label, class index, score and box (x0, y0, x1, y1) in the original image's pixels.

    `track_id` is the object's id across a stream's frames when it is tracked (`stream(track=True)`).

    Attributes:
        label: The object's class name.
        index: The object's class index.
        score: The detector's confidence, 0..1.
        box: (x0, y0, x1, y1) in the original image's pixels.
        track_id: The object's id across a stream's frames, or None when not tracked.
    """

    label: str
    index: int
    score: float
    box: tuple[float, float, float, float]
    track_id: int | None = None

    def __str__(self) -> str:
        x0, y0, x1, y1 = self.box
        tag = f"#{self.track_id} " if self.track_id is not None else ""
        return f"{tag}{self.label} {self.score:.2f} at ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})"


class BoxedObjects:
    """What every result made of boxed objects (label, class index, score, box, track id) offers: a sequence of
    them, best first, their arrays, and the same result holding other objects (what a tracker kept)."""

    ITEMS = "detections"  # the dataclass field holding the objects

    def _items(self) -> tuple[Any, ...]:
        return getattr(self, self.ITEMS)

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, index: Any) -> Any:
        return self._items()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items())

    @property
    def boxes(self) -> np.ndarray:
        return np.array([d.box for d in self._items()], np.float32).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        return np.array([d.score for d in self._items()], np.float32)

    @property
    def classes(self) -> np.ndarray:
        return np.array([d.index for d in self._items()], np.int64)

    @property
    def track_ids(self) -> list[int | None]:
        return [d.track_id for d in self._items()]

    def with_objects(self, objects: Sequence[Any]) -> Any:
        """The same result holding `objects` (what a tracker kept, ids set)."""
        return replace(self, **{self.ITEMS: tuple(objects)})  # type: ignore[type-var]


@dataclass(frozen=True)
class Detections(BoxedObjects, Sequence[Detection]):
    """Every object found in one image, best first, plus what it cost.

    Attributes:
        detections: The objects, best score first.
        latency_ms: The model's inference alone, in milliseconds.
        preprocess_ms: Decoding, letterboxing and normalizing the image, in milliseconds.
        image_size: (height, width) of the image the boxes refer to.
    """

    detections: tuple[Detection, ...]
    latency_ms: float
    preprocess_ms: float
    image_size: tuple[int, int]  # (height, width) of the image the boxes refer to

    def __str__(self) -> str:
        return f"{len(self)} object(s)" + ("".join(f"\n  {d}" for d in self.detections) if self.detections else "")


# -- the task ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectOptions:
    """A detector's per-call options (runtimes.vocabulary's names), the contract's defaults filled in."""

    threshold: float
    iou: float
    max_detections: int
    agnostic: bool = False


def _colour(index: int) -> tuple[int, int, int]:
    """A distinct, bright BGR colour per class."""
    hue = (index * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[str],
    scores: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    thickness: int | None = None,
    track_ids: Sequence[int | None] | None = None,
) -> None:
    """Boxes with label (and score, and track id) tags on the BGR `image`, in place; line and text sizes follow the
    frame size."""
    side = min(image.shape[:2])
    thickness = thickness or max(1, round(side / 240))
    font = max(0.35, side / 900)
    for i, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
        cls = int(classes[i]) if classes is not None else 0
        colour = _colour(cls)
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        text = labels[cls] if cls < len(labels) else str(cls)
        if track_ids is not None and track_ids[i] is not None:
            text = f"#{track_ids[i]} {text}"
        if scores is not None:
            text += f" {float(scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, thickness // 2))
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else y0  # inside the box when there is no room above
        cv2.rectangle(image, (x0, top), (x0 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(
            image,
            text,
            (x0 + 2, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            (0, 0, 0),
            max(1, thickness // 2),
            cv2.LINE_AA,
        )


class DetectionDecoder:
    """One detector's decoding, made when the model loads: its parsed head, default options, output reader
    and box mappings per frame size are kept here, not read back from the model every frame."""

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        self.head = DetectionHead.from_dict(model.head) if model.head is not None else DetectionHead()
        self.defaults = DetectOptions(self.head.score_threshold, self.head.iou_threshold, self.head.max_detections)
        self.names = predict_terms("detection")
        self.problem = self._problem()
        self._reader = OutputReader(model.output_specs, self.head) if self.problem is None else None
        self._to_source: dict[tuple[int, int], Callable[[np.ndarray], np.ndarray]] = {}

    def _problem(self) -> str | None:
        """Why predict() cannot read these outputs as detections (None when it can)."""
        specs = self.model.output_specs
        if output_roles(specs, self.head.layout) is not None:
            return None
        outputs = ", ".join(f"{spec.name} {list(spec.shape)} {np.dtype(spec.dtype).name}" for spec in specs)
        expected = {
            "edgekit": "boxes (N, K, 4), scores (N, K) and integer classes (N, K)",
            "maps": "a heat map (N, Gh, Gw, classes) then box sides (N, Gh, Gw, 4)",
        }.get(self.head.layout, "boxes (N, K, 4), classes (N, K), scores (N, K) and a count (N,)")
        return (
            f"{self.model.name} is a detection model but its outputs ({outputs}) are not {expected}; "
            "export it again with edgekit, or use run_all(batch)"
        )

    def options(self, options: dict[str, Any]) -> DetectOptions:
        """predict()'s keyword options, checked (InputError names the valid ones); none: the contract's defaults."""
        if not options:  # the usual frame: the contract's defaults, kept
            return self.defaults
        options = renamed_options(options)
        unknown = set(options).difference(self.names)
        if unknown:
            raise InputError(
                f"unknown option(s) {sorted(unknown)} for a detector; valid: {', '.join(sorted(self.names))}"
            )
        given = {key: value for key, value in options.items() if value is not None}
        if not given:
            return self.defaults
        chosen = {**vars(self.defaults), **given}
        try:
            DetectionHead(
                score_threshold=chosen["threshold"],
                iou_threshold=chosen["iou"],
                max_detections=chosen["max_detections"],
            )
        except ContractError as exc:
            raise InputError(str(exc)) from None
        if not isinstance(chosen["agnostic"], bool):
            raise InputError(f"agnostic must be true or false, got {chosen['agnostic']!r}")
        return DetectOptions(
            float(chosen["threshold"]), float(chosen["iou"]), int(chosen["max_detections"]), chosen["agnostic"]
        )

    def results(
        self,
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: DetectOptions,
    ) -> list[Detections]:
        """The backend's raw outputs for a batch -> one `Detections` per image (sizes: each source's height, width)."""
        if self._reader is None:  # predict() and stream() raise it first; run here directly, say it too
            raise InputError(self.problem)
        # a frame reads its scores; boxes and classes only once a candidate passes the threshold. After an
        # inference each distinct numpy call costs its cold caches, and most frames have nothing to report.
        reader = self._reader
        scores, boxes, classes = reader.scores(outputs), None, None
        labels = self.model.labels
        results = []
        for i, size in enumerate(sizes):
            size = (int(size[0]), int(size[1]))
            above = above_threshold(scores[i], options.threshold)
            found: tuple[Detection, ...] = ()
            if len(above):
                if not np.isfinite(scores[i][above]).all():
                    self._damaged()
                if boxes is None:
                    boxes, classes = reader.boxes(outputs), reader.classes(outputs)
                b, s, c = suppress(
                    boxes[i], scores[i], classes[i], above, options.iou, options.max_detections, options.agnostic
                )
                if not np.isfinite(b).all():
                    self._damaged()
                found = tuple(
                    Detection(labels[k] if 0 <= k < len(labels) else str(k), k, score, tuple(box))
                    for box, score, k in zip(self._source_mapping(size)(b).tolist(), s.tolist(), c.tolist())
                )
            results.append(Detections(found, latency_ms, preprocess_ms, size))
        return results

    def _damaged(self) -> NoReturn:
        raise InferenceError(
            f"{self.model.name} produced non-finite boxes or scores; its weights are probably damaged: "
            "check the file's SHA-256 (edgekit info) and copy or export it again"
        )

    def _source_mapping(self, size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
        """Normalized input boxes -> the source image's pixels, clipped to it; one function per frame size, kept."""
        plan = self._to_source.get(size)
        if plan is None:
            spec = self.model.require_preprocessing()
            plan = box_mapping(size, spec).normalized_to_source(spec.input_size, size)
            if len(self._to_source) >= 8:  # frames of many sizes: keep memory bounded
                self._to_source.clear()
            self._to_source[size] = plan
        return plan


class DetectionTask:
    """The detection task's device side: binds a model to a `DetectionDecoder`; draws, prints and serves results."""

    name = "detection"
    role = "detector"
    record_help = (
        "source (and frame) and its detections (label, class index, score, box x0,y0,x1,y1 in the source's "
        "pixels, and the track id with --track), latency and frame age; with --count-line the objects "
        "that crossed the line so far"
    )
    trackable = True  # results have boxes a tracker can follow across frames

    def bind(self, model: ModelInfo) -> DetectionDecoder:
        return DetectionDecoder(model)

    def serving_prediction(self, result: Detections, labels: Sequence[str], head: dict[str, Any]) -> dict[str, Any]:
        """Padded to max_detections with zeros past `count`, as the SavedModel's signature is."""
        size = max(DetectionHead.from_dict(head).max_detections, len(result))
        pad = size - len(result)
        return {
            "boxes": [[round(v, 3) for v in d.box] for d in result] + [[0.0] * 4] * pad,
            "scores": [round(d.score, 6) for d in result] + [0.0] * pad,
            "classes": [d.index for d in result] + [0] * pad,
            "labels": [d.label for d in result] + [labels[0] if labels else ""] * pad,
            "count": len(result),
        }

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        return {}

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        k = DetectionHead.from_dict(head).max_detections
        return {
            "boxes": ("DT_FLOAT", [-1, k, 4]),
            "scores": ("DT_FLOAT", [-1, k]),
            "classes": ("DT_INT32", [-1, k]),
            "labels": ("DT_STRING", [-1, k]),
            "count": ("DT_INT32", [-1]),
        }

    def side_images(self, result: Any) -> dict[str, np.ndarray]:
        return {}

    def draw(self, image: np.ndarray, result: Detections, labels: Sequence[str]) -> None:
        draw_detections(image, result.boxes, labels, result.scores, result.classes, track_ids=result.track_ids)

    def lines(self, result: Detections, threshold: float = 0.0) -> list[str]:
        return [f"{len(result)} object(s)"]

    def occupied(self, result: Detections) -> np.ndarray:
        """The boxes (their tags sit on their edges)."""
        return result.boxes

    command_line_defaults: dict[str, Any] = {}  # the model's own defaults stand

    def record(
        self, origin: dict[str, Any], result: Detections, threshold: float | None, **extra: float
    ) -> dict[str, Any]:
        """One image's detections as a JSON-ready dict after its `origin` (``source``, and ``frame`` for a
        stream's), boxes in source pixels."""
        return {
            **origin,
            **self.summary(result),
            **{key: round(value, 3) for key, value in extra.items()},
        }

    def line(self, record: dict[str, Any]) -> str:
        def one(d: dict[str, Any]) -> str:
            tag = f"#{d['id']} " if d.get("id") is not None else ""
            return f"{tag}{d['label']} {d['score']:.3f} [{', '.join(f'{v:.1f}' for v in d['box'])}]"

        found = "; ".join(one(d) for d in record["detections"])
        counted = (
            f"  {record['count']['total']} crossed (in {record['count']['in']}, out {record['count']['out']})"
            if "count" in record
            else ""
        )
        timing = "".join(f"  {key}={record[key]:.1f}" for key in ("latency_ms", "age_ms") if key in record)
        return (
            f"{where(record)}: {len(record['detections'])} object(s)"
            + (f": {found}" if found else "")
            + counted
            + timing
        )

    def summary(self, result: Detections) -> dict[str, Any]:
        return {
            "detections": [
                {
                    "label": d.label,
                    "index": d.index,
                    "score": round(d.score, 6),
                    "box": [round(v, 3) for v in d.box],
                    **({"id": d.track_id} if d.track_id is not None else {}),
                }
                for d in result
            ]
        }
